"""Throughput of one GPU watcher with the echo engine at zero delay: what the watcher itself costs per job.

Real redis-server (a throwaway one), moto S3/CloudWatch in-process (`mock_aws`), one watcher in a thread. All N jobs
are enqueued first; the clock runs from the watcher's start until the N-th job is acknowledged. Every result object
is then checked to be `done`. Prints:

    N jobs/s
    per-job overhead X ms

plus a breakdown (one S3 put, one Redis claim+ack) so a regression can be placed. Target: >= 200 jobs/s.

    .venv/bin/python bench/watcher_throughput.py [--jobs 500]
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time

for _var, _value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                     "AWS_DEFAULT_REGION": "eu-central-1"}.items():
    os.environ.setdefault(_var, _value)
os.environ.pop("AWS_ENDPOINT_URL", None)

import boto3  # noqa: E402
import redis  # noqa: E402
from moto import mock_aws  # noqa: E402

from tlfif_common import names, redis_keys  # noqa: E402
from tlfif_common.jobs import Job  # noqa: E402
from tlfif_common.workqueue import WorkQueue  # noqa: E402
from tlfif_local.redis_server import RedisServer  # noqa: E402
from tlfif_watcher.config import WatcherConfig  # noqa: E402
from tlfif_watcher.engines.echo import EchoEngine  # noqa: E402
from tlfif_watcher.metrics import Metrics  # noqa: E402
from tlfif_watcher.watcher import Watcher  # noqa: E402

BUCKET = "tlfif-bench-responses"
TARGET_JOBS_PER_S = 200


def micro(s3, client: redis.Redis, samples: int = 200) -> tuple[float, float]:
    """Mean ms of one S3 put of a result-sized object, and of one claim+ack on an empty-ish queue."""
    body = json.dumps({"id": "x", "status": "done", "text": "[echo engine: no model loaded] You said: hi"}).encode()
    t0 = time.perf_counter()
    for i in range(samples):
        s3.put_object(Bucket=BUCKET, Key=f"micro/{i}.json", Body=body, ContentType="application/json")
    put_ms = (time.perf_counter() - t0) * 1000 / samples
    queue = WorkQueue(client)
    jobs = [Job.create({"prompt": "hi", "idle": 5}, bucket=BUCKET, user=None, now_ms=0) for _ in range(samples)]
    for job in jobs:
        queue.enqueue(job)
    t0 = time.perf_counter()
    for _ in range(samples):
        claim = queue.claim("micro", timeout=0.1)
        queue.ack(claim.job_id)
    redis_ms = (time.perf_counter() - t0) * 1000 / samples
    return put_ms, redis_ms


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=500)
    args = parser.parse_args()
    n = args.jobs
    logging.getLogger("tlfif_watcher").setLevel(logging.WARNING)

    with RedisServer() as server, mock_aws():
        s3 = boto3.client("s3", region_name=names.DEFAULT_REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": names.DEFAULT_REGION})
        client = redis.Redis.from_url(server.url)
        queue = WorkQueue(client)
        jobs = [Job.create({"prompt": f"benchmark prompt number {i}", "idle": 5}, bucket=BUCKET, user="bench",
                           now_ms=int(time.time() * 1000)) for i in range(n)]
        for job in jobs:
            queue.enqueue(job)

        config = WatcherConfig(redis_url=server.url, responses_bucket=BUCKET, engine="echo", echo_delay_ms=0)
        watcher = Watcher(config, redis_client=client, engine=EchoEngine(0), s3=s3,
                          metrics=Metrics(boto3.client("cloudwatch", region_name=names.DEFAULT_REGION)))
        thread = threading.Thread(target=watcher.run, daemon=True)
        started = time.perf_counter()
        thread.start()
        while watcher.jobs_done < n:
            if not thread.is_alive():
                print("watcher died", file=sys.stderr)
                return 1
            time.sleep(0.01)
        elapsed = time.perf_counter() - started
        watcher.request_stop("bench over")
        thread.join(10)

        statuses = {json.loads(s3.get_object(Bucket=BUCKET, Key=f"{job.id}.json")["Body"].read())["status"]
                    for job in jobs}
        assert statuses == {"done"}, statuses
        assert client.llen(redis_keys.PROCESSING) == 0 and queue.depth() == 0
        put_ms, redis_ms = micro(s3, client)

    rate = n / elapsed
    print(f"{rate:.0f} jobs/s")
    print(f"per-job overhead {elapsed * 1000 / n:.2f} ms")
    print(f"  ({n} jobs in {elapsed:.2f} s; one S3 put (moto in-process) {put_ms:.2f} ms, "
          f"one Redis claim+ack {redis_ms:.2f} ms; target >= {TARGET_JOBS_PER_S} jobs/s: "
          f"{'met' if rate >= TARGET_JOBS_PER_S else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
