"""Helpers for the GPU watcher tests: run a watcher in a thread or as `python -m tlfif_watcher`, enqueue jobs,
read result objects, wait for conditions without fixed sleeps."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable

import pytest

from tlfif_common import api, names
from tlfif_common.jobs import Job
from tlfif_common.workqueue import WorkQueue
from tlfif_local.imds import ImdsEmulator
from tlfif_watcher.config import WatcherConfig
from tlfif_watcher.watcher import Watcher

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUCKET = "tlfif-test-responses"
MODELS_BUCKET = "tlfif-test-models"
UNREACHABLE_IMDS = "http://127.0.0.1:9"  # discard port: connection refused at once, like a laptop without IMDS


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def make_bucket(s3, bucket: str = BUCKET) -> str:
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": names.DEFAULT_REGION})
    return bucket


def read_result(s3, job_id: str, bucket: str = BUCKET) -> dict | None:
    try:
        return json.loads(s3.get_object(Bucket=bucket, Key=f"{job_id}.json")["Body"].read())
    except s3.exceptions.NoSuchKey:
        return None


def poll_until_final(s3, job_id: str, timeout: float = 15.0, bucket: str = BUCKET) -> list[dict]:
    """Every distinct version of the result object a client polling every 20 ms would see, ending final."""
    seen: list[dict] = []

    def step():
        doc = read_result(s3, job_id, bucket)
        if doc is not None and (not seen or seen[-1] != doc):
            seen.append(doc)
        return doc is not None and doc["status"] in api.FINAL_STATUSES

    wait_for(step, timeout, what=f"a final result for {job_id}")
    return seen


def running_instance(moto_clients) -> str:
    """A running instance in moto (any AMI id will do there) for the watcher to stop."""
    return moto_clients("ec2").run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1,
                                             InstanceType="g4dn.xlarge")["Instances"][0]["InstanceId"]


def instance_state(moto_clients, instance_id: str) -> str:
    reservations = moto_clients("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"]
    return reservations[0]["Instances"][0]["State"]["Name"]


def ssm_value(ssm, name: str) -> str | None:
    try:
        return ssm.get_parameter(Name=name)["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        return None


def enqueue(queue: WorkQueue, prompt: str = "hello there", idle: int = 5, **fields) -> Job:
    job = Job.create({"prompt": prompt, "idle": idle, **fields}, bucket=BUCKET, user="tester",
                     now_ms=int(time.time() * 1000))
    queue.enqueue(job)
    return job


def make_config(redis_url: str, **overrides) -> WatcherConfig:
    settings = dict(redis_url=redis_url, responses_bucket=BUCKET, engine="echo", echo_delay_ms=0,
                    imds_url=UNREACHABLE_IMDS, lease_seconds=2, minute_seconds=60.0, default_idle_minutes=5)
    settings.update(overrides)
    return WatcherConfig(**settings)


class ThreadedWatcher:
    """A Watcher running `run()` in a thread; `stop()` asks it to stop and returns its exit code."""

    def __init__(self, watcher: Watcher):
        self.watcher = watcher
        self.exit_code: int | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="test-watcher", daemon=True)

    def _run(self) -> None:
        try:
            self.exit_code = self.watcher.run()
        except BaseException as err:  # surfaced by stop()/join()
            self.error = err

    def start(self) -> ThreadedWatcher:
        self.thread.start()
        return self

    def join(self, timeout: float = 10.0) -> int | None:
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise AssertionError("the watcher thread did not end")
        if self.error is not None:
            raise self.error
        return self.exit_code

    def stop(self, timeout: float = 10.0) -> int | None:
        self.watcher.request_stop("test over")
        return self.join(timeout)


@contextmanager
def running(watcher: Watcher):
    handle = ThreadedWatcher(watcher).start()
    try:
        yield handle
    finally:
        if handle.thread.is_alive():
            handle.stop()


def watcher_env(redis_url: str, moto_endpoint: str, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TLFIF_")}
    env.update({
        names.ENV_REDIS_URL: redis_url,
        names.ENV_RESPONSES_BUCKET: BUCKET,
        names.ENV_ENGINE: "echo",
        names.ENV_ECHO_DELAY_MS: "0",
        names.ENV_IMDS_URL: UNREACHABLE_IMDS,
        names.ENV_LEASE_SECONDS: "1",
        names.ENV_AWS_ENDPOINT_URL: moto_endpoint,
        names.ENV_AWS_REGION: names.DEFAULT_REGION,
        "PYTHONUNBUFFERED": "1",
    })
    env.update(overrides)
    return env


class WatcherProcess:
    """`python -m tlfif_watcher` as a child process; its JSON log lines go to a temporary file."""

    def __init__(self, env: dict[str, str]):
        self._log = tempfile.NamedTemporaryFile(prefix="tlfif-watcher-", suffix=".log", delete=False)
        self.proc = subprocess.Popen([sys.executable, "-m", "tlfif_watcher"], env=env, cwd=REPO,
                                     stdout=self._log, stderr=subprocess.STDOUT)

    def log_lines(self) -> list[dict]:
        with open(self._log.name, encoding="utf-8") as fh:
            out = []
            for line in fh:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    out.append({"raw": line.rstrip()})
            return out

    def logged(self, msg: str) -> bool:
        return any(line.get("msg") == msg for line in self.log_lines())

    def wait(self, timeout: float = 15.0) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"watcher did not exit; log:\n{self.dump()}") from None

    def dump(self) -> str:
        with open(self._log.name, encoding="utf-8") as fh:
            return fh.read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self._log.close()
        os.unlink(self._log.name)

    def __enter__(self) -> WatcherProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def run_until_idle_exit(instance_id: str, *, redis_url: str, moto_endpoint: str, ssm, s3, queue: WorkQueue,
                        logged: str, **env: str) -> None:
    """A watcher process on `instance_id` (its IMDSv2 emulated, a "minute" of 0.5 s) becomes ready, answers one
    quick job, then exits 0 by itself once idle, having logged `logged`."""
    with ImdsEmulator(instance_id) as imds:
        env = watcher_env(redis_url, moto_endpoint, **{names.ENV_IMDS_URL: imds.url, names.ENV_MINUTE_SECONDS: "0.5",
                                                       **env})
        job = enqueue(queue, "a quick one", idle=2)  # 2 "minutes" = 1 s after this job
        with WatcherProcess(env) as proc:
            wait_for(lambda: ssm_value(ssm, names.ssm_ready_param(instance_id)), timeout=20, what="readiness")
            assert poll_until_final(s3, job.id)[-1]["status"] == "done"
            assert proc.wait(timeout=20) == 0
            assert proc.logged(logged), proc.dump()


# Fixtures the watcher test modules share (registered in conftest.py).
@pytest.fixture
def s3(moto_clients):
    """An S3 client on the moto server with the responses bucket made."""
    client = moto_clients("s3")
    make_bucket(client)
    return client


@pytest.fixture
def queue(redis_client) -> WorkQueue:
    return WorkQueue(redis_client)
