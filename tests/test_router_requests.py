"""Router: routing, JWT claims (defence in depth), /infer request validation, configuration and error shaping."""
from __future__ import annotations

import json
import time

import pytest

from tlfif_common import names
from tlfif_common.jobs import MAX_PROMPT_BYTES
from tlfif_common import redis_keys as keys
from tlfif_router import handler as router
from tlfif_router.config import RouterConfig
from tlfif_router.deps import Deps

from support.lambda_context import FakeLambdaContext
from support.router_cloud import (AUDIENCE, ISSUER, SUB, aws_cloud_fixture, cloud_fixture,  # noqa: F401
                                  invoke, load_event)

pytestmark = pytest.mark.timeout(60)
GOOD = {"prompt": "hello", "idle": 5}


def test_sample_events_are_api_gateway_v2_with_string_claims():
    for name, route in (("infer", "POST /infer"), ("stop", "POST /stop"), ("ping", "GET /ping")):
        event = json.loads((load_event.__globals__["EVENTS"] / f"{name}.json").read_text())
        assert event["version"] == "2.0" and event["routeKey"] == route
        claims = event["requestContext"]["authorizer"]["jwt"]["claims"]
        assert all(isinstance(v, str) for v in claims.values())  # API Gateway passes every claim as a string
        assert claims["token_use"] == "id" and claims["iss"] == ISSUER and claims["aud"] == AUDIENCE


def test_unknown_route_is_404_json(cloud):
    event = load_event("ping")
    event["routeKey"] = "GET /nope"
    answer = invoke(event)
    assert answer.status == 404 and answer.error == "no such route: GET /nope"


def test_default_route_falls_back_to_method_and_path(cloud):
    event = load_event("ping")
    event["routeKey"] = "$default"
    assert invoke(event).status == 200
    event["requestContext"]["http"]["path"] = "/elsewhere"
    assert invoke(event).status == 404


@pytest.mark.parametrize("claims, status, message", [
    ({"sub": None}, 401, "no sub claim"),
    ({"sub": ""}, 401, "no sub claim"),
    ({"exp": None}, 401, "no valid exp"),
    ({"exp": "soon"}, 401, "no valid exp"),
    ({"exp": str(int(time.time()) - 5)}, 401, "expired"),
    ({"iss": "https://cognito-idp.eu-central-1.amazonaws.com/eu-central-1_Other"}, 403, "another issuer"),
    ({"iss": None}, 403, "another issuer"),
    ({"aud": "some-other-client"}, 403, "aud is not this app's client"),
    ({"aud": None}, 403, "aud is not this app's client"),
    ({"token_use": "refresh"}, 403, "token_use"),
    ({"token_use": None}, 403, "token_use"),
    ({"token_use": "access", "client_id": "some-other-client"}, 403, "client_id is not this app's client"),
    ({"token_use": "access"}, 403, "client_id"),  # an access token has no aud; its client_id is checked
])
def test_bad_claims_are_refused_before_anything_happens(cloud, redis_client, claims, status, message):
    cloud.set_state("stopped")
    answer = invoke(load_event("infer", body=GOOD, claims=claims))
    assert answer.status == status and message in answer.error
    assert cloud.state() == "stopped" and cloud.calls == []
    assert redis_client.llen(keys.PENDING) == 0 and redis_client.keys(keys.RATE_LIMIT_PATTERN) == []


def test_no_claims_at_all_is_401(cloud):
    answer = invoke(load_event("ping", no_claims=True))
    assert answer.status == 401 and answer.error == "unauthorized: no JWT claims on the request"


@pytest.mark.parametrize("claims", [
    {"exp": int(time.time()) + 86_400},  # a number, not a string (a day ahead: parametrised at collection)
    {"token_use": "access", "aud": None, "client_id": AUDIENCE},
    {"aud": f"[other-client {AUDIENCE}]"},  # API Gateway's flattening of an array claim
])
def test_good_claim_variants_are_accepted(cloud, claims):
    assert invoke(load_event("ping", claims=claims)).status == 200


TOO_LONG = "x" * (MAX_PROMPT_BYTES + 1)
MULTIBYTE_TOO_LONG = "é" * (MAX_PROMPT_BYTES // 2 + 1)  # fewer characters than bytes


@pytest.mark.parametrize("body, field, message", [
    ({"idle": 5}, "prompt", "prompt is required"),
    ({"prompt": "", "idle": 5}, "prompt", "non-empty string"),
    ({"prompt": "   ", "idle": 5}, "prompt", "non-empty string"),
    ({"prompt": 42, "idle": 5}, "prompt", "non-empty string"),
    ({"prompt": ["hi"], "idle": 5}, "prompt", "non-empty string"),
    ({"prompt": TOO_LONG, "idle": 5}, "prompt", "32 KiB"),
    ({"prompt": MULTIBYTE_TOO_LONG, "idle": 5}, "prompt", "32 KiB"),
    ({"prompt": "hi"}, "idle", "idle is required"),
    ({"prompt": "hi", "idle": True}, "idle", "integer from 1 to 30"),
    ({"prompt": "hi", "idle": 0}, "idle", "integer from 1 to 30"),
    ({"prompt": "hi", "idle": 31}, "idle", "integer from 1 to 30"),
    ({"prompt": "hi", "idle": "5"}, "idle", "integer from 1 to 30"),
    ({"prompt": "hi", "idle": 2.5}, "idle", "integer from 1 to 30"),
    ({"prompt": "hi", "idle": None}, "idle", "integer from 1 to 30"),
    ({"prompt": "hi", "idle": 5, "model": "gpt-4"}, "model", "unknown field model"),
    ({"prompt": "hi", "idle": 5, "messages": "earlier"}, "messages", "list"),
    ({"prompt": "hi", "idle": 5, "messages": [{"role": "robot", "content": "x"}]}, "messages", "role"),
    ({"prompt": "hi", "idle": 5, "messages": [{"role": "user"}]}, "messages", "role and content"),
    ({"prompt": "hi", "idle": 5, "params": []}, "params", "object"),
    ({"prompt": "hi", "idle": 5, "params": {"top_k": 3}}, "params.top_k", "unknown field"),
    ({"prompt": "hi", "idle": 5, "params": {"temperature": 3}}, "params.temperature", "0 to 2"),
    ({"prompt": "hi", "idle": 5, "params": {"max_tokens": 0}}, "params.max_tokens", "integer"),
    ({"prompt": "hi", "idle": 5, "adapter_uri": f"s3://{names.LOCAL_RESPONSES_BUCKET}/a"}, "adapter_uri",
     "inside the models bucket"),
    ({"prompt": "hi", "idle": 5, "adapter_uri": f"s3://{names.LOCAL_MODELS_BUCKET}/../x"}, "adapter_uri",
     "under adapters/"),
    ({"prompt": "hi", "idle": 5, "adapter_uri": f"s3://{names.LOCAL_MODELS_BUCKET}/adapters/../base"}, "adapter_uri",
     "not '.' or '..'"),
    ({"prompt": "hi", "idle": 5, "adapter_uri": "https://example.com/lora"}, "adapter_uri", "s3://"),
    ({"prompt": "hi", "idle": 5, "adapter_uri": 7}, "adapter_uri", "s3://"),
    (["hello", 5], "body", "JSON object"),
])
def test_invalid_infer_body_is_400_naming_the_field(cloud, redis_client, body, field, message):
    cloud.set_state("stopped")
    answer = invoke(load_event("infer", body=body))
    assert answer.status == 400, answer
    assert answer.body["field"] == field and message in answer.error
    assert set(answer.body) == {"error", "field"}
    # Nothing happened: no job, no start.
    assert redis_client.llen(keys.PENDING) == 0 and cloud.calls == [] and cloud.state() == "stopped"


@pytest.mark.parametrize("raw, base64_body, message", [
    ('{"prompt": "hi", "idle": 5', False, "malformed JSON body"),
    ("prompt=hi&idle=5", False, "malformed JSON body"),
    ("", False, "the body must be a JSON object"),
    ("[" * 100_000 + "]" * 100_000, False, "malformed JSON body"),
    ('{"prompt": "hi", "idle": 5', True, "malformed JSON body"),
])
def test_malformed_body_is_400(cloud, redis_client, raw, base64_body, message):
    answer = invoke(load_event("infer", raw_body=raw, base64_body=base64_body))
    assert answer.status == 400 and answer.body["field"] == "body" and message in answer.error
    assert redis_client.llen(keys.PENDING) == 0


def test_missing_body_and_broken_base64_are_400(cloud):
    event = load_event("infer")
    del event["body"]
    assert invoke(event).body == {"error": "the body must be a JSON object", "field": "body"}
    event = load_event("infer", raw_body="not base64!")
    event["isBase64Encoded"] = True
    assert "not valid base64" in invoke(event).error
    event = load_event("infer")
    event.update(body="//79", isBase64Encoded=True)  # bytes ff fe fd
    assert invoke(event).error == "the body is not UTF-8 text"


def test_base64_body_is_decoded(cloud, redis_client):
    answer = invoke(load_event("infer", body={"prompt": "grüß dich", "idle": 3}, base64_body=True))
    assert answer.status == 202, answer
    job = json.loads(redis_client.get(keys.job(answer.body['id'])))
    assert job["prompt"] == "grüß dich" and job["idle"] == 3 and job["user"] == SUB


def test_prompt_of_exactly_32_kib_is_accepted(cloud):
    assert invoke(load_event("infer", body={"prompt": "x" * MAX_PROMPT_BYTES, "idle": 1})).status == 202


def test_missing_configuration_is_500_naming_the_variable(cloud, monkeypatch, capsys):
    monkeypatch.delenv(names.ENV_GPU_INSTANCE_ID)
    router.reset_deps()
    context = FakeLambdaContext()
    answer = invoke(load_event("ping"), context)
    assert answer.status == 500
    assert answer.error == f"router misconfigured: {names.ENV_GPU_INSTANCE_ID} is not set"
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["aws_request_id"] == context.aws_request_id and line["component"] == "router"


@pytest.mark.parametrize("env, message", [
    ({names.ENV_REDIS_URL: ""}, names.ENV_QUEUE_FUNCTION),
    ({names.ENV_RATE_LIMIT_RPS: "fast"}, "must be an integer"),
    ({names.ENV_BOOT_ETA_SECONDS: "0"}, "at least 1"),
])
def test_config_errors(env, message):
    base = {names.ENV_REDIS_URL: "redis://x", names.ENV_RESPONSES_BUCKET: "r", names.ENV_GPU_INSTANCE_ID: "i-1",
            names.ENV_JWT_ISSUER: ISSUER, names.ENV_JWT_AUDIENCE: AUDIENCE}
    from tlfif_router.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        RouterConfig.from_env({**base, **env})
    config = RouterConfig.from_env(base)
    assert config.rate_limit_rps is None and config.boot_eta_seconds == names.BOOT_ETA_SECONDS
    assert config.sessions_table == names.SESSIONS_TABLE and config.queue_function is None


class _BuggyQueue:
    """A queue port with a programming error in it: the router must answer 500 without details."""

    def allow(self, user, limit=None):
        return True, 0

    def enqueue(self, job, idempotency_key=None):
        raise KeyError("reply_s3")


def test_a_bug_is_500_without_internals_and_logged_with_the_traceback(cloud, capsys):
    router.reset_deps(Deps(RouterConfig.from_env(), queue=_BuggyQueue(), **cloud.clients))
    event = load_event("infer", body=GOOD)
    context = FakeLambdaContext()
    answer = invoke(event, context)
    assert answer.status == 500
    assert answer.body == {"error": "internal error", "request_id": event["requestContext"]["requestId"]}
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["level"] == "error" and line["status"] == 500 and "KeyError" in line["exception"]
    assert line["request_id"] == event["requestContext"]["requestId"]
    assert line["aws_request_id"] == context.aws_request_id
    assert cloud.metric(names.METRIC_ERRORS) == 1


def test_every_answer_is_logged_as_one_json_line(cloud, capsys):
    capsys.readouterr()
    event = load_event("infer", body={"prompt": "hi", "idle": 99})
    context = FakeLambdaContext()
    invoke(event, context)
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert len(lines) == 1
    line = lines[0]
    assert line["component"] == "router" and line["status"] == 400 and line["level"] == "warning"
    assert line["request_id"] == "ZKXq1hRvliAEMcw=" and line["aws_request_id"] == context.aws_request_id
    assert line["route"] == "POST /infer" and line["user"] == SUB and line["field"] == "idle"
