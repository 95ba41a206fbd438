"""`python -m tlfif_watcher.dr_selftest`: the DR test's proof that a node answers (TL-FIF-DR-Test in ops.yaml runs
it on the DR node through SSM). One job goes the whole way a user's job goes — the node's own queue, the watcher,
the engine, a final result object in S3 — and the answer must hold text. Exit 0 and a JSON summary on success,
1 with the reason otherwise.

The DR node runs in its own mode (its user data): a Redis on the node instead of the production queue, metrics
under a namespace of their own; results go under `dr-test/` in the responses bucket.
"""
from __future__ import annotations

import json
import os
import sys
import time
from typing import Mapping

import boto3
import redis

from tlfif_common import api, names
from tlfif_common.jobs import Job, s3_uri
from tlfif_common.workqueue import WorkQueue

RESULT_PREFIX = "dr-test/"
DR_METRICS_NAMESPACE = "TL-FIF-DR"  # the DR node's TLFIF_METRICS_NAMESPACE (its user data in ops.yaml)
PROMPT = "Reply with one short sentence."
TIMEOUT_S = 240.0


def run_selftest(queue: WorkQueue, s3, bucket: str, *, prompt: str = PROMPT, timeout_s: float = TIMEOUT_S,
                 poll_s: float = 1.0) -> dict:
    """Enqueue one job and wait for its final result; the summary, or RuntimeError naming what went wrong."""
    job = Job.create({"prompt": prompt, "idle": 1}, bucket=bucket, user="dr-test", now_ms=int(time.time() * 1000))
    key = f"{RESULT_PREFIX}{job.id}.json"
    job = Job(**{**job.__dict__, "reply_s3": s3_uri(bucket, key)})
    started = time.monotonic()
    queue.enqueue(job)
    while time.monotonic() - started < timeout_s:
        try:
            doc = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except s3.exceptions.NoSuchKey:
            doc = None
        if api.is_final(doc):
            if doc["status"] != api.STATUS_DONE or not (doc.get("text") or "").strip():
                raise RuntimeError(f"the job ended {doc['status']} without an answer: {doc}")
            return {"job_id": job.id, "seconds": round(time.monotonic() - started, 1), "answer": doc["text"].strip(),
                    "result": s3_uri(bucket, key)}
        time.sleep(poll_s)
    raise RuntimeError(f"no final result for job {job.id} within {timeout_s:.0f} s (is the watcher running?)")


def main(env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    client = redis.Redis.from_url(env[names.ENV_REDIS_URL], socket_timeout=10)
    try:
        summary = run_selftest(WorkQueue(client), boto3.client("s3"), env[names.ENV_RESPONSES_BUCKET])
    except (RuntimeError, redis.RedisError) as err:
        print(json.dumps({"ok": False, "error": str(err)}))
        return 1
    finally:
        client.close()
    print(json.dumps({"ok": True, **summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
