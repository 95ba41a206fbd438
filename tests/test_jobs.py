"""The job message and the /infer request schema (tlfif_common.jobs)."""
import json

import pytest

from tlfif_common import redis_keys
from tlfif_common.jobs import (JOB_FIELDS, JOB_TTL_SECONDS, MAX_PROMPT_BYTES, TEMPERATURE_MAX, Job, RequestError,
                               chat_messages, is_job_id, parse_s3_uri, validate_infer_request)

MODELS = "tl-fif-models"


def check(body):
    return validate_infer_request(body, models_bucket=MODELS)


def refused(body) -> RequestError:
    with pytest.raises(RequestError) as info:
        check(body)
    return info.value


def test_minimal_request_is_accepted_as_is():
    assert check({"prompt": "hi", "idle": 5}) == {"prompt": "hi", "idle": 5}


def test_optional_fields_pass_through():
    body = {"prompt": "hi", "idle": 1, "messages": [{"role": "user", "content": "a"},
                                                    {"role": "assistant", "content": "b"}],
            "params": {"temperature": 0.2, "max_tokens": 64, "system": "be brief"},
            "adapter_uri": f"s3://{MODELS}/adapters/me"}
    assert check(body) == body


@pytest.mark.parametrize("body, field", [
    ([], "body"),
    ({"idle": 5}, "prompt"),
    ({"prompt": "", "idle": 5}, "prompt"),
    ({"prompt": "   ", "idle": 5}, "prompt"),
    ({"prompt": 3, "idle": 5}, "prompt"),
    ({"prompt": "x" * (MAX_PROMPT_BYTES + 1), "idle": 5}, "prompt"),
    ({"prompt": "hi"}, "idle"),
    ({"prompt": "hi", "idle": 0}, "idle"),
    ({"prompt": "hi", "idle": 31}, "idle"),
    ({"prompt": "hi", "idle": "5"}, "idle"),
    ({"prompt": "hi", "idle": True}, "idle"),
    ({"prompt": "hi", "idle": 2.5}, "idle"),
    ({"prompt": "hi", "idle": 5, "user": "me"}, "user"),
    ({"prompt": "hi", "idle": 5, "messages": "no"}, "messages"),
    ({"prompt": "hi", "idle": 5, "messages": [{"role": "robot", "content": "x"}]}, "messages"),
    ({"prompt": "hi", "idle": 5, "messages": [{"role": "user"}]}, "messages"),
    ({"prompt": "hi", "idle": 5, "params": {"temperature": 3}}, "params.temperature"),
    ({"prompt": "hi", "idle": 5, "params": {"max_tokens": 0}}, "params.max_tokens"),
    ({"prompt": "hi", "idle": 5, "params": {"top_k": 3}}, "params.top_k"),
    ({"prompt": "hi", "idle": 5, "adapter_uri": "https://x/y"}, "adapter_uri"),
    ({"prompt": "hi", "idle": 5, "adapter_uri": "s3://other-bucket/lora"}, "adapter_uri"),
    ({"prompt": "hi", "idle": 5, "adapter_uri": f"s3://{MODELS}/../x"}, "adapter_uri"),
    ({"prompt": "hi", "idle": 5, "adapter_uri": f"s3://{MODELS}/loras/me"}, "adapter_uri"),
    ({"prompt": "hi", "idle": 5, "adapter_uri": f"s3://{MODELS}/adapters/"}, "adapter_uri"),
    ({"prompt": "hi", "idle": 5, "adapter_uri": f"s3://{MODELS}/adapters/../base-model"}, "adapter_uri"),
    ({"prompt": "hi", "idle": 5, "adapter_uri": f"s3://{MODELS}/adapters/./me"}, "adapter_uri"),
    ({"prompt": "hi", "idle": 5, "adapter_uri": f"s3://{MODELS}/adapters/m\u00e9"}, "adapter_uri"),
])
def test_bad_requests_name_the_field(body, field):
    err = refused(body)
    assert err.field == field
    assert str(err)


def test_prompt_limit_counts_utf8_bytes():
    assert refused({"prompt": "é" * (MAX_PROMPT_BYTES // 2 + 1), "idle": 5}).field == "prompt"
    assert check({"prompt": "é" * (MAX_PROMPT_BYTES // 2), "idle": 5})


def test_job_round_trips_through_json_with_rql_shape():
    job = Job.create({"prompt": "hi", "idle": 7}, bucket="b", user="sub-1", now_ms=123)
    data = json.loads(job.to_json())
    assert data == {"prompt": "hi", "idle": 7, "reply_s3": f"s3://b/{job.id}.json", "timestamp": 123, "user": "sub-1"}
    assert Job.from_json(job.id, job.to_json()) == job
    assert is_job_id(job.id) and redis_keys.job(job.id) == f"job:{job.id}"
    assert JOB_TTL_SECONDS == 300


def test_chat_messages_put_system_history_then_prompt():
    job = Job.create({"prompt": "now", "idle": 5, "messages": [{"role": "user", "content": "before"}],
                      "params": {"system": "sys"}}, bucket="b", user=None, now_ms=1)
    assert job.chat_messages() == [{"role": "system", "content": "sys"}, {"role": "user", "content": "before"},
                                   {"role": "user", "content": "now"}]


def test_parse_s3_uri():
    assert parse_s3_uri("s3://b/k/x.json") == ("b", "k/x.json")
    for bad in ("b/k", "s3://b", "s3:///k", None):
        with pytest.raises(ValueError):
            parse_s3_uri(bad)


def test_job_round_trips_through_its_dict_with_one_field_list():
    job = Job.create({"prompt": "hi", "idle": 7, "messages": [{"role": "user", "content": "a"}],
                      "params": {"max_tokens": 9}}, bucket="b", user="sub-1", now_ms=5)
    data = job.to_dict()
    assert set(data) == {"id", *JOB_FIELDS} - {"adapter_uri"}  # unset optional fields are left out
    assert Job.from_dict(data) == job
    assert json.loads(job.to_json()) == {k: v for k, v in data.items() if k != "id"}


@pytest.mark.parametrize("data, words", [
    ([], "object"),
    ({"id": "job-1", "prompt": "hi", "idle": 1, "reply_s3": "s3://b/k", "timestamp": 1}, "UUID"),
    ({"id": "6f1c2a4e-3b7d-4c1e-9a0b-2d3e4f5a6b7c", "prompt": "hi", "idle": 1}, "needs"),
    ({"id": "6f1c2a4e-3b7d-4c1e-9a0b-2d3e4f5a6b7c", "evil": 1}, "unknown job field evil"),
])
def test_job_from_dict_refuses_what_is_not_a_job(data, words):
    with pytest.raises(ValueError, match=words):
        Job.from_dict(data)


def test_a_stored_message_with_a_field_this_version_does_not_know_still_reads():
    job = Job.create({"prompt": "hi", "idle": 2}, bucket="b", user=None, now_ms=1)
    raw = json.dumps({**json.loads(job.to_json()), "priority": 3})
    assert Job.from_json(job.id, raw) == job


def test_chat_messages_without_system_or_history_is_the_prompt_alone():
    assert chat_messages("hi") == [{"role": "user", "content": "hi"}]
    assert chat_messages("hi", [], {"system": ""}) == [{"role": "user", "content": "hi"}]


def test_temperature_range_is_the_one_the_request_check_applies():
    assert check({"prompt": "hi", "idle": 1, "params": {"temperature": TEMPERATURE_MAX}})
    assert refused({"prompt": "hi", "idle": 1, "params": {"temperature": TEMPERATURE_MAX + 0.01}}).field == \
        "params.temperature"


@pytest.mark.parametrize("spelling", ["adapters/me", "adapters/me/", "adapters//me", "/adapters/me//"])
def test_every_spelling_of_an_adapter_is_one_uri(spelling):
    clean = check({"prompt": "hi", "idle": 1, "adapter_uri": f"s3://{MODELS}/{spelling}"})
    assert clean["adapter_uri"] == f"s3://{MODELS}/adapters/me"
