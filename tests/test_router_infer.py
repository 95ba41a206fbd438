"""Router POST /infer against moto EC2/S3/CloudWatch/DynamoDB and the real redis-server; throttle; 502/503."""
from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from tlfif_common import api, names
from tlfif_common.jobs import JOB_TTL_SECONDS, Job
from tlfif_common.workqueue import WorkQueue
from tlfif_common import redis_keys as keys
from tlfif_local.redis_server import RedisServer

from support.router_cloud import SUB, aws_cloud_fixture, cloud_fixture, invoke, load_event  # noqa: F401

ETA = names.BOOT_ETA_SECONDS  # /ping's cold-start ETA while no boot has been recorded

pytestmark = pytest.mark.timeout(60)
GOOD = {"prompt": "Name three prime numbers.", "idle": 7}


def _job(redis_client, job_id: str) -> Job:
    return WorkQueue(redis_client).load_job(job_id)


def test_stopped_gpu_is_started_and_the_job_queued(cloud, redis_client):
    cloud.set_state("stopped")
    before = int(time.time() * 1000)
    answer = invoke(load_event("infer", body=GOOD))
    assert answer.status == 202, answer
    assert set(answer.body) == {"status", "id", "eta", "result_url"}
    assert answer.body["status"] == "starting" and answer.body["eta"] == names.BOOT_ETA_SECONDS
    assert cloud.state() == "running" and cloud.calls == ["StartInstances"]
    job = _job(redis_client, answer.body["id"])
    assert redis_client.lrange(keys.PENDING, 0, -1) == [job.id.encode()]
    assert 0 < redis_client.ttl(keys.job(job.id)) <= 300
    assert (job.prompt, job.idle, job.user) == (GOOD["prompt"], GOOD["idle"], SUB)
    assert job.reply_s3 == f"s3://{names.LOCAL_RESPONSES_BUCKET}/{job.id}.json"
    assert int(redis_client.get(keys.GPU_STARTED_AT)) == job.timestamp >= before
    assert cloud.metric(names.METRIC_REQUESTS) == 1 and cloud.metric(names.METRIC_COLD_STARTS) == 1
    assert cloud.metric(names.METRIC_ERRORS) == 0
    item = cloud.session_item()
    assert item["instance_id"] == {"S": cloud.instance_id} and int(item["last_seen"]["N"]) == job.timestamp


@pytest.mark.parametrize("state", ["running", "pending"])
def test_running_or_pending_gpu_is_not_started_again(cloud, redis_client, state):
    cloud.set_state(state)
    first = invoke(load_event("infer", body=GOOD))
    second = invoke(load_event("infer", body={"prompt": "and two more", "idle": 1}))
    for answer in (first, second):
        assert answer.status == 202 and set(answer.body) == {"status", "id", "result_url"}
        assert answer.body["status"] == "queued"
    assert cloud.calls == [] and cloud.state() == state
    assert redis_client.lrange(keys.PENDING, 0, -1) == [second.body["id"].encode(), first.body["id"].encode()]
    assert redis_client.get(keys.GPU_STARTED_AT) is None
    assert cloud.metric(names.METRIC_REQUESTS) == 2 and cloud.metric(names.METRIC_COLD_STARTS) == 0


def test_second_request_after_a_start_is_queued(cloud):
    cloud.set_state("stopped")
    assert invoke(load_event("infer", body=GOOD)).body["status"] == "starting"
    assert invoke(load_event("infer", body=GOOD)).body["status"] == "queued"
    assert cloud.calls == ["StartInstances"]


def test_stopping_gpu_answers_starting_and_the_next_ping_starts_it(cloud, redis_client):
    """EC2 refuses StartInstances while stopping; the job waits and /ping starts the GPU once it is stopped."""
    cloud.set_state("stopping")
    answer = invoke(load_event("infer", body=GOOD))
    assert answer.status == 202 and answer.body["status"] == "starting"
    assert answer.body["eta"] == names.BOOT_ETA_SECONDS
    assert cloud.calls == ["StartInstances"] and cloud.state() == "stopping"  # refused: IncorrectInstanceState
    assert redis_client.llen(keys.PENDING) == 1 and redis_client.exists(keys.START_WANTED)
    assert cloud.metric(names.METRIC_COLD_STARTS) == 0 and cloud.metric(names.METRIC_ERRORS) == 0

    ping = invoke(load_event("ping"))  # still stopping: nothing to do yet
    assert ping.body == {"status": "ok", "gpu": "stopping", "queue_depth": 1, "eta": ETA}
    cloud.set_state("stopped")  # EC2 finished stopping
    ping = invoke(load_event("ping"))
    assert ping.status == 200 and ping.body["gpu"] in ("pending", "running")
    assert cloud.state() == "running" and cloud.calls == ["StartInstances", "StartInstances"]
    assert not redis_client.exists(keys.START_WANTED) and redis_client.get(keys.GPU_STARTED_AT) is not None
    assert cloud.metric(names.METRIC_COLD_STARTS) == 1
    assert invoke(load_event("ping")).body["gpu"] == "running"  # the mark was consumed: no third start
    assert cloud.calls == ["StartInstances", "StartInstances"]


def test_stop_cancels_a_start_wanted_while_stopping(cloud, redis_client):
    cloud.set_state("stopping")
    invoke(load_event("infer", body=GOOD))
    assert invoke(load_event("stop")).status == 200
    assert not redis_client.exists(keys.START_WANTED)
    assert invoke(load_event("ping")).body["gpu"] == "stopped"
    assert "StartInstances" not in cloud.calls[1:]


def test_terminated_gpu_is_502_and_nothing_is_queued(cloud, redis_client):
    cloud.set_state("terminated")
    answer = invoke(load_event("infer", body=GOOD))
    assert answer.status == 502 and answer.body == {"error": "ec2:StartInstances: IncorrectInstanceState"}
    assert redis_client.llen(keys.PENDING) == 0 and cloud.metric(names.METRIC_ERRORS) == 1


def test_optional_fields_travel_with_the_job(cloud, redis_client):
    body = {**GOOD, "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
            "params": {"temperature": 0.2, "max_tokens": 64, "system": "be brief"},
            "adapter_uri": f"s3://{names.LOCAL_MODELS_BUCKET}/adapters/pirate"}
    answer = invoke(load_event("infer", body=body))
    assert answer.status == 202
    job = _job(redis_client, answer.body["id"])
    assert job.messages == body["messages"] and job.params == body["params"]
    assert job.adapter_uri == body["adapter_uri"]


def test_result_url_is_a_300_s_presigned_get_that_fetches_the_result(cloud):
    answer = invoke(load_event("infer", body=GOOD))
    url = answer.body["result_url"]
    parsed = urlparse(url)
    assert parsed.hostname == f"{names.LOCAL_RESPONSES_BUCKET}.s3.{names.DEFAULT_REGION}.amazonaws.com"
    assert parsed.path == f"/{answer.body['id']}.json"
    query = parse_qs(parsed.query)
    assert query["X-Amz-Expires"] == ["300"] and query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert requests.get(url, timeout=5).status_code == 404  # not written yet
    result = {"id": answer.body["id"], "status": "done", "text": "2, 3, 5"}
    cloud.clients["s3"].put_object(Bucket=names.LOCAL_RESPONSES_BUCKET, Key=f"{answer.body['id']}.json",
                                   Body=json.dumps(result).encode())
    fetched = requests.get(url, timeout=5)  # moto's in-process mock answers requests to S3 URLs
    assert fetched.status_code == 200 and fetched.json() == result


def test_sixth_request_in_a_second_is_429_with_retry_after(cloud, monkeypatch):
    monkeypatch.delenv(names.ENV_RATE_LIMIT_RPS)  # the default: 5 requests/s per user (RQL 2.2)
    cloud.rebuild()

    def bad_infer():  # the limiter runs before parsing: 400s count too, and cost no AWS call
        return invoke(load_event("infer", raw_body="{"))

    time.sleep(1.02 - time.time() % 1)  # start at the beginning of a one-second window
    statuses = [bad_infer().status for _ in range(5)]
    sixth = bad_infer()
    assert statuses == [400] * 5
    assert sixth.status == 429 and sixth.headers["Retry-After"] == "1"
    assert sixth.error.startswith("too many requests")
    assert invoke(load_event("ping")).status == 429  # every route, keyed by the user
    other = invoke(load_event("ping", claims={"sub": "another-user"}))
    assert other.status == 200
    time.sleep(1.02 - time.time() % 1)
    assert bad_infer().status == 400  # a new window


def test_rate_limit_is_configurable(cloud, monkeypatch):
    monkeypatch.setenv(names.ENV_RATE_LIMIT_RPS, "2")
    monkeypatch.setenv(names.ENV_BOOT_ETA_SECONDS, "120")
    cloud.rebuild()
    cloud.set_state("stopped")
    time.sleep(1.02 - time.time() % 1)
    first = invoke(load_event("infer", body=GOOD))
    assert first.body["eta"] == 120
    assert invoke(load_event("ping")).status == 200
    third = invoke(load_event("ping"))
    assert third.status == 429 and "at most 2 requests per second" in third.error


def test_redis_down_is_503_for_infer_and_stop_still_works(cloud, monkeypatch, capsys):
    with RedisServer() as doomed:
        monkeypatch.setenv(names.ENV_REDIS_URL, doomed.url)
        cloud.rebuild()
        assert invoke(load_event("ping")).body["queue_depth"] == 0  # the connection is live and pooled
    cloud.set_state("stopped")
    capsys.readouterr()
    answer = invoke(load_event("infer", body=GOOD))
    assert answer.status == 503 and answer.body == {"error": "queue unavailable"}
    assert cloud.state() == "stopped" and cloud.calls == []  # no GPU started for a job that was not queued
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["status"] == 503 and line["request_id"] == "ZKXq1hRvliAEMcw=" and "redis" in line["error"]

    ping = invoke(load_event("ping"))
    assert ping.status == 200 and ping.body == {"status": "ok", "gpu": "stopped", "queue_depth": None, "eta": ETA}
    cloud.set_state("running")
    assert invoke(load_event("ping")).body == {"status": "ok", "gpu": "running", "queue_depth": None, "eta": ETA}
    stop = invoke(load_event("stop"))
    assert stop.status == 200 and stop.body == {"status": "stopping"} and cloud.state() == "stopped"
    assert cloud.metric(names.METRIC_ERRORS) == 1 and cloud.metric(names.METRIC_MANUAL_STOPS) == 1


def test_nothing_listening_on_the_redis_port_is_503(cloud, monkeypatch):
    from tlfif_local.ports import free_port

    monkeypatch.setenv(names.ENV_REDIS_URL, f"redis://127.0.0.1:{free_port()}/0")
    cloud.rebuild()
    assert invoke(load_event("infer", body=GOOD)).status == 503


@pytest.mark.parametrize("event", ["infer", "stop", "ping"])
def test_aws_error_is_502_naming_the_call(cloud, monkeypatch, redis_client, capsys, event):
    monkeypatch.setenv(names.ENV_GPU_INSTANCE_ID, "i-0123456789abcdef0")  # no such instance
    cloud.rebuild()
    capsys.readouterr()
    answer = invoke(load_event(event, body=GOOD) if event == "infer" else load_event(event))
    assert answer.status == 502
    call = "ec2:StopInstances" if event == "stop" else "ec2:DescribeInstances"
    assert answer.body == {"error": f"{call}: InvalidInstanceID.NotFound"}
    assert redis_client.llen(keys.PENDING) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["level"] == "error" and line["aws_call"] == call and line["component"] == "router"
    assert line["request_id"] and line["aws_request_id"]
    assert cloud.metric(names.METRIC_ERRORS) == 1


def test_metrics_and_session_failures_do_not_fail_an_accepted_job(cloud, monkeypatch, redis_client, capsys):
    monkeypatch.setenv(names.ENV_SESSIONS_TABLE, "NoSuchTable")
    cloud.rebuild()
    answer = invoke(load_event("infer", body=GOOD))
    assert answer.status == 202 and redis_client.llen(keys.PENDING) == 1
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    failure = next(line for line in lines if line.get("aws_call") == "dynamodb:PutItem")
    assert failure["level"] == "error" and failure["aws_code"] == "ResourceNotFoundException"
    assert cloud.metric(names.METRIC_ERRORS) == 1 and cloud.metric(names.METRIC_REQUESTS) == 1


def test_unreachable_cloudwatch_is_logged_and_never_changes_the_answer(cloud, monkeypatch, capsys):
    import boto3
    from botocore.config import Config

    from tlfif_local.ports import free_port

    dead = boto3.client("cloudwatch", region_name=names.DEFAULT_REGION,
                        endpoint_url=f"http://127.0.0.1:{free_port()}",
                        config=Config(retries={"max_attempts": 1}, connect_timeout=1))
    monkeypatch.setenv(names.ENV_GPU_INSTANCE_ID, "i-0123456789abcdef0")
    cloud.rebuild(cloudwatch=dead)
    capsys.readouterr()
    answer = invoke(load_event("ping"))  # 502 → an Errors metric to send, and sending it fails too
    assert answer.status == 502 and answer.body == {"error": "ec2:DescribeInstances: InvalidInstanceID.NotFound"}
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [line["message"] for line in lines] == ["could not send metrics", "AWS call failed"]
    assert lines[0]["aws_call"] == "cloudwatch:PutMetricData" and lines[0]["aws_code"] == "EndpointConnectionError"
    assert lines[1]["aws_call"] == "ec2:DescribeInstances"


def _with_key(event: dict, key: str) -> dict:
    event["headers"][api.IDEMPOTENCY_HEADER.lower()] = key
    return event


def test_a_repeated_idempotency_key_answers_the_job_it_queued_and_queues_nothing(cloud, redis_client):
    cloud.set_state("running")
    first = invoke(_with_key(load_event("infer", body=GOOD), "retry-of-prompt-1"))
    again = invoke(_with_key(load_event("infer", body=GOOD), "retry-of-prompt-1"))
    other = invoke(_with_key(load_event("infer", body=GOOD, claims={"sub": "someone-else"}), "retry-of-prompt-1"))
    fresh = invoke(_with_key(load_event("infer", body=GOOD), "retry-of-prompt-2"))
    assert [a.status for a in (first, again, other, fresh)] == [202] * 4
    assert again.body["id"] == first.body["id"] and again.body["result_url"]
    assert len({first.body["id"], other.body["id"], fresh.body["id"]}) == 3  # a key is its user's own
    assert redis_client.llen(keys.PENDING) == 3
    assert 0 < redis_client.ttl(keys.idempotency(SUB, "retry-of-prompt-1")) <= JOB_TTL_SECONDS


@pytest.mark.parametrize("key", ["short", "x" * 129, "has space in it", "semi;colon;key"])
def test_a_malformed_idempotency_key_is_a_400_naming_the_header(cloud, redis_client, key):
    cloud.set_state("running")
    answer = invoke(_with_key(load_event("infer", body=GOOD), key))
    assert answer.status == 400 and answer.body["field"] == api.IDEMPOTENCY_HEADER, answer.body
    assert redis_client.llen(keys.PENDING) == 0
