"""Lean profile: the in-VPC queue function on the real redis-server, `LambdaQueuePort` through `lambda:Invoke`,
and the whole router with its queue behind that function.

Lambda functions cannot run here (moto's Lambda needs Docker), so `support.lambda_invoke` answers the real boto3
client's Invoke in-process by calling `tlfif_router.queue_handler.handler` with the JSON payload.
"""
from __future__ import annotations

import json
import time
import uuid

import pytest

from tlfif_common import names
from tlfif_common.jobs import Job
from tlfif_common.workqueue import WorkQueue
from tlfif_common import redis_keys as keys
from tlfif_local.ports import free_port
from tlfif_local.redis_server import RedisServer
from tlfif_router import queue_handler
from tlfif_router.errors import QueueUnavailable
from tlfif_router.queue_port import LambdaQueuePort, RedisQueuePort

from support.lambda_context import FakeLambdaContext
from support.lambda_invoke import lambda_client_calling
from support.router_cloud import aws_cloud_fixture, cloud_fixture, invoke, load_event  # noqa: F401

ETA = names.BOOT_ETA_SECONDS  # /ping's cold-start ETA while no boot has been recorded

pytestmark = pytest.mark.timeout(60)
FUNCTION = "tl-fif-queue"


@pytest.fixture
def queue_env(redis_url, monkeypatch):
    monkeypatch.setenv(names.ENV_REDIS_URL, redis_url)
    queue_handler.reset_port()
    yield redis_url
    queue_handler.reset_port()


def _call(payload):
    return queue_handler.handler(payload, FakeLambdaContext(function_name=FUNCTION))


def _job(**overrides) -> Job:
    fields = {"prompt": "hello", "idle": 4, "params": {"temperature": 0.5}, **overrides}
    return Job.create(fields, bucket=names.LOCAL_RESPONSES_BUCKET, user="u-1", now_ms=int(time.time() * 1000))


def test_queue_function_performs_every_operation_on_redis(queue_env, redis_client):
    job = _job()
    payload = {"op": "enqueue", "job": job.to_dict()}
    assert _call(payload) == {"ok": True, "result": job.id}
    assert WorkQueue(redis_client).load_job(job.id) == job
    assert _call({"op": "depth"}) == {"ok": True, "result": 1}
    assert [_call({"op": "allow", "user": "u-1", "limit": 2})["result"] for _ in range(2)] == [[True, 0]] * 2
    allowed, retry_after = _call({"op": "allow", "user": "u-1", "limit": 2})["result"]
    assert allowed is False and retry_after >= 1
    assert _call({"op": "gpu_started_at"}) == {"ok": True, "result": None}
    assert _call({"op": "want_start"})["ok"] and redis_client.exists(keys.START_WANTED)
    assert _call({"op": "mark_gpu_started", "now_ms": 1234})["ok"]
    assert _call({"op": "gpu_started_at"})["result"] == 1234
    assert not redis_client.exists(keys.START_WANTED)  # a start satisfies a wanted start
    _call({"op": "want_start"})
    assert _call({"op": "take_start_wanted"})["result"] is True
    assert _call({"op": "take_start_wanted"})["result"] is False
    _call({"op": "want_start"})
    _call({"op": "clear_start_wanted"})
    assert _call({"op": "take_start_wanted"})["result"] is False
    assert _call({"op": "mark_user_stop"})["ok"] and int(redis_client.get(keys.USER_STOP)) > 0
    assert _call(json.dumps({"op": "depth"}))["result"] == 1  # a payload may also arrive as a JSON string


@pytest.mark.parametrize("payload, message", [
    ([], "JSON object"),
    ("{nope", "not JSON"),
    ({}, "unknown op None"),
    ({"op": "flushall"}, "unknown op 'flushall'"),
    ({"op": "depth", "key": "x"}, "unknown field key"),
    ({"op": "allow"}, "user must be"),
    ({"op": "allow", "user": "u" * 300}, "user must be"),
    ({"op": "allow", "user": "u", "limit": 0}, "limit must be a positive integer"),
    ({"op": "allow", "user": "u", "limit": True}, "limit must be"),
    ({"op": "mark_gpu_started"}, "now_ms must be"),
    ({"op": "mark_gpu_started", "now_ms": "soon"}, "now_ms must be"),
    ({"op": "enqueue"}, "job must be an object"),
    ({"op": "enqueue", "job": {"id": "job-1"}}, "job: a job's id must be a UUID"),
    ({"op": "enqueue", "job": {"id": 7}}, "id must be a UUID"),
    ({"op": "enqueue", "job": {"id": str(uuid.uuid4()), "prompt": "hi", "idle": 1}}, "job: a job needs"),
    ({"op": "enqueue", "job": {"id": str(uuid.uuid4()), "prompt": "hi", "idle": 1, "reply_s3": "s3://b/k"}},
     "a job needs prompt, idle, reply_s3 and timestamp"),
    ({"op": "enqueue", "job": [1]}, "job must be an object"),
    ({"op": "enqueue", "job": {"id": str(uuid.uuid4()), "evil": 1}}, "job: unknown job field evil"),
])
def test_queue_function_refuses_bad_payloads(queue_env, redis_client, payload, message):
    answer = _call(payload)
    assert answer["ok"] is False and message in answer["error"] and "unavailable" not in answer
    assert redis_client.dbsize() == 0


def test_queue_function_stores_the_routers_job_as_given(queue_env, redis_client):
    """The router validated the request; the queue function checks the job's shape only, and stores it once."""
    job = _job(params={"temperature": 0.5, "max_tokens": 12}, messages=[{"role": "user", "content": "x"}])
    assert _call({"op": "enqueue", "job": job.to_dict()}) == {"ok": True, "result": job.id}
    assert json.loads(redis_client.get(keys.job(job.id))) == json.loads(job.to_json())
    assert redis_client.lrange(keys.PENDING, 0, -1) == [job.id.encode()]


def test_queue_function_reports_redis_unavailable(monkeypatch):
    monkeypatch.setenv(names.ENV_REDIS_URL, f"redis://127.0.0.1:{free_port()}/0")
    queue_handler.reset_port()
    try:
        assert _call({"op": "depth"}) == {"ok": False, "error": "queue unavailable", "unavailable": True}
        monkeypatch.delenv(names.ENV_REDIS_URL)
        queue_handler.reset_port()
        assert _call({"op": "depth"})["unavailable"] is True
    finally:
        queue_handler.reset_port()


def test_lambda_port_round_trips_through_invoke(queue_env, redis_client):
    client = lambda_client_calling({FUNCTION: queue_handler.handler})
    port = LambdaQueuePort(client, FUNCTION)
    direct = RedisQueuePort(redis_client)
    job = _job(messages=[{"role": "user", "content": "earlier"}], adapter_uri="s3://m/a")
    assert port.enqueue(job, "key-of-one-prompt") == job.id
    assert port.enqueue(_job(), "key-of-one-prompt") == job.id  # a retry: the job the key queued, nothing new
    assert direct.depth() == port.depth() == 1
    assert WorkQueue(redis_client).load_job(job.id) == job
    assert [port.allow("u-2", 1)[0], port.allow("u-2", 1)[0]] == [True, False]
    assert port.allow("u-3") == (True, 0)  # no limit given: the shared default applies
    assert port.gpu_started_at() is None
    port.mark_gpu_started(42)
    assert port.gpu_started_at() == 42 == int(redis_client.get(keys.GPU_STARTED_AT))
    port.want_start()
    assert port.take_start_wanted() is True and port.take_start_wanted() is False
    port.want_start()
    port.clear_start_wanted()
    assert direct.take_start_wanted() is False
    ops = [payload["op"] for name, payload in client.invocations]
    assert ops[:4] == ["enqueue", "enqueue", "depth", "allow"]
    assert {name for name, _ in client.invocations} == {FUNCTION}


def test_lambda_port_failures_are_queue_unavailable_or_a_bug(queue_env):
    def crashing(event, context):
        raise MemoryError("out of memory")

    client = lambda_client_calling({FUNCTION: queue_handler.handler, "crashing": crashing})
    with pytest.raises(QueueUnavailable, match="ResourceNotFoundException"):
        LambdaQueuePort(client, "missing-function").depth()
    with pytest.raises(QueueUnavailable, match="Unhandled"):
        LambdaQueuePort(client, "crashing").depth()
    with pytest.raises(RuntimeError, match="refused op allow"):
        LambdaQueuePort(client, FUNCTION).allow("")  # our own malformed request: a bug, not an outage


def test_router_in_the_lean_profile_reaches_redis_only_through_the_function(cloud, monkeypatch, redis_url,
                                                                           redis_client):
    # The queue function (its own execution environment in AWS) has the Redis URL; the router has none.
    queue_handler.reset_port(RedisQueuePort.from_url(redis_url))
    monkeypatch.delenv(names.ENV_REDIS_URL)
    monkeypatch.setenv(names.ENV_QUEUE_FUNCTION, FUNCTION)
    lambda_client = lambda_client_calling({FUNCTION: queue_handler.handler})
    cloud.rebuild(**{"lambda": lambda_client})
    cloud.set_state("stopped")
    try:
        answer = invoke(load_event("infer", body={"prompt": "hi", "idle": 3}))
        assert answer.status == 202 and answer.body["status"] == "starting" and cloud.state() == "running"
        assert redis_client.lrange(keys.PENDING, 0, -1) == [answer.body["id"].encode()]
        assert redis_client.get(keys.GPU_STARTED_AT) is not None
        assert invoke(load_event("ping")).body == {"status": "ok", "gpu": "running", "queue_depth": 1, "eta": ETA}
        ops = [payload["op"] for _, payload in lambda_client.invocations]
        assert ops[:4] == ["allow", "enqueue", "mark_gpu_started", "allow"] and "depth" in ops
    finally:
        queue_handler.reset_port()


def test_lean_router_with_redis_down_is_503_and_stop_still_works(cloud, monkeypatch):
    queue_handler.reset_port()
    with RedisServer() as doomed:
        monkeypatch.setenv(names.ENV_REDIS_URL, doomed.url)
        monkeypatch.setenv(names.ENV_QUEUE_FUNCTION, FUNCTION)
        cloud.rebuild(**{"lambda": lambda_client_calling({FUNCTION: queue_handler.handler})})
        assert invoke(load_event("ping")).body["queue_depth"] == 0
    try:
        assert invoke(load_event("infer", body={"prompt": "hi", "idle": 3})).body == {"error": "queue unavailable"}
        assert invoke(load_event("ping")).body == {"status": "ok", "gpu": "running", "queue_depth": None, "eta": ETA}
        assert invoke(load_event("stop")).status == 200 and cloud.state() == "stopped"
    finally:
        queue_handler.reset_port()
