"""The fake OpenAI/vLLM server speaks the real wire protocol (raw HTTP checks) and the real SDK accepts it."""
from __future__ import annotations

import json

import openai
import pytest
import requests
from support.fake_openai import FakeOpenAI

pytestmark = pytest.mark.timeout(30)

MESSAGES = [{"role": "user", "content": "hi"}]


def sse_events(response: requests.Response) -> list[str]:
    return [line[len("data: "):] for line in response.iter_lines(decode_unicode=True) if line.startswith("data: ")]


def test_raw_stream_is_server_sent_events_ending_with_done_and_usage():
    with FakeOpenAI(reply="Hello big world") as srv:
        response = requests.post(f"{srv.base_url}/chat/completions", timeout=5, stream=True, json={
            "model": "m", "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}})
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        assert response.headers["Transfer-Encoding"] == "chunked"
        events = sse_events(response)

    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "m" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]) == "Hello big world"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 1, "completion_tokens": 3, "total_tokens": 4}


def test_raw_stream_without_include_usage_has_no_usage_chunk():
    with FakeOpenAI(reply="a b") as srv:
        response = requests.post(f"{srv.base_url}/chat/completions", timeout=5, stream=True,
                                 json={"model": "m", "messages": MESSAGES, "stream": True})
        chunks = [json.loads(e) for e in sse_events(response)[:-1]]
    assert all("usage" not in c and c["choices"] for c in chunks)


def test_sdk_non_streaming_respects_max_tokens():
    with FakeOpenAI(reply="one two three") as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="x", max_retries=0)
        reply = client.chat.completions.create(model="m", messages=MESSAGES, max_tokens=2)
    assert reply.choices[0].message.content == "one two"
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage.completion_tokens == 2


def test_sdk_lists_models_and_loaded_loras():
    with FakeOpenAI(model="base") as srv:
        requests.post(f"{srv.base_url}/load_lora_adapter", json={"lora_name": "mine", "lora_path": "/a"}, timeout=5)
        again = requests.post(f"{srv.base_url}/load_lora_adapter", json={"lora_name": "mine", "lora_path": "/a"},
                              timeout=5)
        models = openai.OpenAI(base_url=srv.base_url, api_key="x").models.list().data
    assert again.status_code == 400 and "already been loaded" in again.json()["error"]["message"]
    assert [(m.id, m.parent) for m in models] == [("base", None), ("mine", "base")]


def test_wrong_api_key_is_401_with_an_openai_error_body():
    with FakeOpenAI(api_key="right") as srv:
        with pytest.raises(openai.AuthenticationError) as info:
            openai.OpenAI(base_url=srv.base_url, api_key="wrong", max_retries=0).models.list()
        assert srv.requests[-1].headers["authorization"] == "Bearer wrong"
    assert info.value.code == "invalid_api_key"


def test_status_errors_carry_retry_after_and_can_be_limited_to_the_first_requests():
    with FakeOpenAI(status=429, status_times=1, retry_after=3) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="x", max_retries=0)
        with pytest.raises(openai.RateLimitError) as info:
            client.chat.completions.create(model="m", messages=MESSAGES)
        assert client.chat.completions.create(model="m", messages=MESSAGES).choices[0].message.content
    assert info.value.response.headers["retry-after"] == "3"


def test_strict_model_refuses_unknown_models_like_vllm():
    with FakeOpenAI(strict_model=True) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="x", max_retries=0)
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="nope", messages=MESSAGES)


def test_records_when_the_client_hangs_up_early():
    with FakeOpenAI(reply="a b c d e f g h", chunk_delay=0.05) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="x")
        stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
        next(iter(stream))
        next(iter(stream))
        stream.close()
        record = srv.wait_closed()
    assert record.client_closed and not record.completed
    assert record.chunks_sent < 8
