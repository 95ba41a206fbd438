"""Reads and writes the result objects `s3://<bucket>/{id}.json` (schema: `tlfif_common.api.Result`)."""
from __future__ import annotations

import json
import logging
import threading
import time

from botocore.exceptions import BotoCoreError, ClientError

from tlfif_common.api import Result
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

    def put(self, where: tuple[str, str], result: Result) -> None:
        bucket, key = where
        self.s3.put_object(Bucket=bucket, Key=key, Body=result.encode(), ContentType="application/json",
                           CacheControl="no-store")

    def try_put(self, where: tuple[str, str], result: Result) -> bool:
        """A progress write: best effort, a failure is logged and generation goes on."""
        try:
            self.put(where, result)
            return True
        except (BotoCoreError, ClientError) as err:
            log.warning("progress write failed", extra={"job_id": result.id, "error": str(err)})
            return False

    def put_final(self, where: tuple[str, str], result: Result) -> bool:
        """The final write, retried a little; False when S3 kept refusing."""
        for attempt in range(1, FINAL_PUT_ATTEMPTS + 1):
            try:
                self.put(where, result)
                return True
            except (BotoCoreError, ClientError) as err:
                log.error("final result write failed", extra={"job_id": result.id, "attempt": attempt,
                                                              "error": str(err)})
                time.sleep(0.2 * attempt)
        return False

    def get(self, where: tuple[str, str]) -> Result | None:
        """The result object there, or None when there is none or it is not one."""
        bucket, key = where
        try:
            body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None
            raise
        try:
            return Result.from_dict(json.loads(body))
        except ValueError:
            return None


class ProgressWriter:
    """Writes a job's progress snapshots on a thread of its own, so a slow S3 PUT never holds up the engine stream.

    Only the newest snapshot is written (older ones are superseded). `close()` drops what is not written yet and
    waits for a write in flight: the final result, written after it, is always the object's last write.
    The thread starts with the first snapshot, so a job that finishes within one progress interval costs nothing.
    """

    def __init__(self, store: ResultStore, where: tuple[str, str]):
        self._store = store
        self._where = where
        self._cond = threading.Condition()
        self._pending: Result | None = None
        self._closed = False
        self._thread: threading.Thread | None = None

    def submit(self, result: Result) -> None:
        with self._cond:
            if self._closed:
                return
            self._pending = result
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="progress-writer", daemon=True)
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                result, self._pending = self._pending, None
            self._store.try_put(self._where, result)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._pending = None
            self._cond.notify()
        if self._thread is not None:
            self._thread.join()
