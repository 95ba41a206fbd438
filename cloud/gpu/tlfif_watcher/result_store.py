"""Reads and writes the result objects `s3://<bucket>/{id}.json` (schema: `tlfif_common.results`)."""
from __future__ import annotations

import json
import logging
import time

from botocore.exceptions import BotoCoreError, ClientError

from tlfif_common import results
from tlfif_common.jobs import Job, parse_s3_uri, result_object_key

log = logging.getLogger("tlfif_watcher")

FINAL_PUT_ATTEMPTS = 3


class ResultStore:
    def __init__(self, s3, bucket: str):
        self.s3 = s3
        self.bucket = bucket

    def location(self, job_id: str, job: Job | None = None) -> tuple[str, str]:
        """Where the job's result goes: its `reply_s3` when it has a usable one, else `{id}.json` in our bucket."""
        if job is not None and job.reply_s3:
            try:
                return parse_s3_uri(job.reply_s3)
            except ValueError:
                log.warning("job has an unusable reply_s3; using the responses bucket",
                            extra={"job_id": job_id, "reply_s3": job.reply_s3})
        return self.bucket, result_object_key(job_id)

    def put(self, where: tuple[str, str], doc: dict) -> None:
        bucket, key = where
        self.s3.put_object(Bucket=bucket, Key=key, Body=results.encode(doc), ContentType="application/json",
                           CacheControl="no-store")

    def try_put(self, where: tuple[str, str], doc: dict) -> bool:
        """A progress write: best effort, a failure is logged and generation goes on."""
        try:
            self.put(where, doc)
            return True
        except (BotoCoreError, ClientError) as err:
            log.warning("progress write failed", extra={"job_id": doc.get("id"), "error": str(err)})
            return False

    def put_final(self, where: tuple[str, str], doc: dict) -> bool:
        """The final write, retried a little; False when S3 kept refusing."""
        for attempt in range(1, FINAL_PUT_ATTEMPTS + 1):
            try:
                self.put(where, doc)
                return True
            except (BotoCoreError, ClientError) as err:
                log.error("final result write failed", extra={"job_id": doc.get("id"), "attempt": attempt,
                                                              "error": str(err)})
                time.sleep(0.2 * attempt)
        return False

    def get(self, where: tuple[str, str]) -> dict | None:
        bucket, key = where
        try:
            body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None
            raise
        try:
            return json.loads(body)
        except ValueError:
            return None
