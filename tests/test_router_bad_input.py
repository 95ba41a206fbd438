"""Router: nothing a client can put in a body, a header or a path is ever a 500 — every refusal is a JSON 4xx that
names the field. The same bodies are sent over HTTP by test_faults_api_bad_input.py and fuzzed there too.
"""
from __future__ import annotations

import json

import pytest

from tlfif_common.json_body import MAX_DEPTH
from tlfif_common.redis_keys import KEEP_WARM, PENDING
from tlfif_router.request import MAX_BODY_BYTES

from support.router_cloud import aws_cloud_fixture, cloud_fixture, invoke, load_event  # noqa: F401

pytestmark = pytest.mark.timeout(60)
HUGE_INT = "9" * 4301  # one digit more than Python converts between int and str
NESTED = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)


def refused(answer, status: int, field: str) -> None:
    assert answer.status == status, answer
    assert set(answer.body) == {"error", "field"} and answer.body["field"] == field, answer.body
    assert isinstance(answer.error, str) and answer.error


@pytest.mark.parametrize("raw, field", [
    (f'{{"prompt": "hi", "idle": {HUGE_INT}}}', "idle"),
    (f'{{"prompt": "hi", "idle": -{HUGE_INT}}}', "idle"),
    (f'{{"prompt": "hi", "idle": 5, "params": {{"max_tokens": {HUGE_INT}}}}}', "params.max_tokens"),
    (f'{{"prompt": "hi", "idle": 5, "params": {{"temperature": {HUGE_INT}.5}}}}', "params.temperature"),
    ('{"prompt": "hi", "idle": 5, "params": {"temperature": 1e999}}', "params.temperature"),
    ('{"prompt": "hi", "idle": NaN}', "idle"),
    ('{"prompt": "hi", "idle": Infinity}', "idle"),
    ('{"prompt": "hi", "idle": 5, "params": {"temperature": -Infinity}}', "params.temperature"),
    ('{"prompt": "\\ud800", "idle": 5}', "prompt"),
    ('{"prompt": "ok \\udfff", "idle": 5}', "prompt"),
    ('{"prompt": "hi", "idle": 5, "messages": [{"role": "user", "content": "\\ud800"}]}', "messages[0].content"),
    ('{"prompt": "hi", "idle": 5, "params": {"system": "\\udbff"}}', "params.system"),
    ('{"prompt": "hi", "idle": 5, "\\ud800": 1}', "body"),
    ('{"prompt": "hi", "idle": 5, "idle": 30}', "idle"),
    ('{"prompt": "hi", "idle": 5, "params": {"max_tokens": 5, "max_tokens": 9}}', "params.max_tokens"),
    (f'{{"prompt": "hi", "idle": 5, "messages": {NESTED}}}', "messages" + "[0]" * (MAX_DEPTH - 1)),
    ("[" * 50_000 + "]" * 50_000, "body"),
    ('"a string"', "body"),
    ("42", "body"),
    ("null", "body"),
    ("true", "body"),
    ('{"prompt": "hi", "idle": true}', "idle"),
    ('{"prompt": "hi", "idle": 5.0}', "idle"),
])
def test_hostile_infer_bodies_are_400_naming_the_field(cloud, redis_client, raw, field):
    cloud.set_state("stopped")
    refused(invoke(load_event("infer", raw_body=raw)), 400, field)
    assert redis_client.llen(PENDING) == 0 and cloud.calls == [] and cloud.state() == "stopped"


@pytest.mark.parametrize("raw, field", [
    (f'{{"on": true, "max_minutes": {HUGE_INT}}}', "max_minutes"),
    ('{"on": true, "max_minutes": NaN}', "max_minutes"),
    ('{"on": true, "max_minutes": 1e400}', "max_minutes"),
    ('{"on": true, "on": false}', "on"),
    ('{"on": true, "max_minutes": 5, "\\udc00": 1}', "body"),
    ('{"on": "\\ud800"}', "on"),
    ('{"on": 1}', "on"),
    ("[true]", "body"),
])
def test_hostile_keepwarm_bodies_are_400_naming_the_field(cloud, redis_client, raw, field):
    refused(invoke(load_event("keepwarm", raw_body=raw)), 400, field)
    assert not redis_client.exists(KEEP_WARM)


def test_a_body_larger_than_any_valid_request_is_413(cloud, redis_client):
    raw = json.dumps({"prompt": "x" * MAX_BODY_BYTES, "idle": 5})
    refused(invoke(load_event("infer", raw_body=raw)), 413, "body")
    refused(invoke(load_event("infer", raw_body=raw, base64_body=True)), 413, "body")
    assert redis_client.llen(PENDING) == 0


def test_the_largest_valid_request_fits_under_the_size_limit(cloud):
    """Every text field at its limit, written in the costliest escapes: still accepted (the limit is not a guess)."""
    from tlfif_common.jobs import MAX_MESSAGES, MAX_MESSAGES_BYTES, MAX_PROMPT_BYTES

    per_turn = MAX_MESSAGES_BYTES // MAX_MESSAGES
    body = {"prompt": "\x01" * MAX_PROMPT_BYTES, "idle": 30,
            "messages": [{"role": "assistant", "content": "\x01" * per_turn}] * MAX_MESSAGES,
            "params": {"system": "\x01" * MAX_PROMPT_BYTES, "temperature": 0.7, "max_tokens": 4096}}
    raw = json.dumps(body, indent=8)
    assert len(raw) <= MAX_BODY_BYTES
    assert invoke(load_event("infer", raw_body=raw)).status == 202


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "application/json; charset=latin-1",
                                          "application/jsonx", "\udcff"])
def test_a_body_that_is_not_declared_json_is_400_naming_the_content_type(cloud, redis_client, content_type):
    event = load_event("infer", body={"prompt": "hi", "idle": 5})
    event["headers"]["content-type"] = content_type
    refused(invoke(event), 400, "content-type")
    assert redis_client.llen(PENDING) == 0


@pytest.mark.parametrize("content_type", [None, "application/json", "Application/JSON; charset=UTF-8"])
def test_json_with_or_without_a_content_type_is_accepted(cloud, content_type):
    event = load_event("infer", body={"prompt": "hi", "idle": 5})
    if content_type is None:
        del event["headers"]["content-type"]
    else:
        event["headers"]["content-type"] = content_type
    assert invoke(event).status == 202


def test_an_unknown_key_is_named_but_not_echoed_in_full(cloud):
    key = "k" * 100_000
    answer = invoke(load_event("infer", body={"prompt": "hi", "idle": 5, key: 1}))
    assert answer.status == 400 and len(answer.body["field"]) < 100 and len(answer.error) < 400


@pytest.mark.parametrize("exp", ["NaN", "nan", "Infinity", "inf", "1e999", "9" * 5000])
def test_a_non_finite_exp_claim_is_401(cloud, exp):
    answer = invoke(load_event("ping", claims={"exp": exp}))
    assert answer.status == 401 and "exp" in answer.error


def test_a_huge_integer_exp_claim_is_401(cloud):
    event = load_event("ping")
    event["requestContext"]["authorizer"]["jwt"]["claims"]["exp"] = 10 ** 400
    answer = invoke(event)
    assert answer.status == 401 and "exp" in answer.error
