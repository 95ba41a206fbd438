"""The OpenAI backend: the official SDK streaming chat completions from a local server speaking OpenAI's wire format."""
from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from app.backends.base import BackendContext, PromptRequest
from app.backends.openai import ENV_API_KEY, KeyNeeded, OpenAiApiClient
from app.timings import Timings
from app.models.settings import Settings
from support.fake_openai import FakeOpenAI

pytestmark = pytest.mark.timeout(30)


class Events:
    def __init__(self):
        self.log = []

    def queued(self, status, eta_s, job_id):
        self.log.append(("queued", status))

    def retrying(self, message, attempt, delay_s):
        self.log.append(("retrying", message))

    def progress(self, text, tokens):
        self.log.append(("progress", text, tokens))


def make_client(srv, env=None, model="gpt-test"):
    settings = replace(Settings(), openai_base_url=srv.base_url, openai_model=model)
    ctx = BackendContext(settings=lambda: settings, session=None, timings=Timings(http_timeout_s=5),
                         env=env if env is not None else {ENV_API_KEY: "sk-test"})
    return OpenAiApiClient(ctx)


def run(client, prompt="hi", events=None):
    events = events or Events()
    return client.run(PromptRequest("r1", prompt, 5), events), events


def test_streams_the_answer_piece_by_piece_with_the_configured_model():
    with FakeOpenAI(reply="The quick brown fox jumps over the lazy dog", api_key="sk-test") as srv:
        client = make_client(srv)
        reply, events = run(client, "tell me")
        assert reply.text == "The quick brown fox jumps over the lazy dog"
        progress = [e[1] for e in events.log if e[0] == "progress"]
        assert progress[0] == "The" and progress[-1] == reply.text and len(progress) == 9
        assert reply.tokens == 9 and reply.ttft_ms is not None
        body = srv.chat_requests[-1].body
        assert body["model"] == "gpt-test" and body["stream"] is True
        assert body["messages"] == [{"role": "user", "content": "tell me"}]
        assert srv.chat_requests[-1].headers["authorization"] == "Bearer sk-test"


def test_without_a_key_it_asks_and_a_dialog_key_is_used_from_memory():
    with FakeOpenAI(reply="ok then", api_key="sk-dialog") as srv:
        client = make_client(srv, env={})
        assert client.needs_key()
        with pytest.raises(KeyNeeded):
            client.run(PromptRequest("r1", "hi", 5), Events())
        client.set_key("sk-dialog")
        assert not client.needs_key()
        assert run(client)[0].text == "ok then"


def test_a_refused_key_is_forgotten_and_the_error_names_the_backend():
    with FakeOpenAI(api_key="sk-right") as srv:
        client = make_client(srv, env={ENV_API_KEY: "sk-wrong"})
        with pytest.raises(Exception) as err:
            run(client)
        assert client.error_message(err.value) == \
            "[openai] the API key was refused (HTTP 401); you will be asked for another"
        assert client.needs_key()


def test_a_broken_stream_is_an_error_naming_the_backend():
    with FakeOpenAI(reply="one two three four", fail_after=2, fail_mode="drop") as srv:
        client = make_client(srv)
        with pytest.raises(Exception) as err:
            run(client)
        assert client.error_message(err.value).startswith("[openai] ")


def test_server_errors_and_unreachable_servers_name_the_backend():
    with FakeOpenAI(status=500) as srv:
        client = make_client(srv)
        with pytest.raises(Exception) as err:
            run(client)
        assert client.error_message(err.value).startswith("[openai] HTTP 500")
    with pytest.raises(Exception) as err:
        run(client)  # the server is gone
    assert client.error_message(err.value).startswith("[openai] cannot reach http://127.0.0.1:")


def test_cancel_closes_the_stream_at_the_server():
    with FakeOpenAI(reply="a b c d e f g h", pause_after=2) as srv:
        client = make_client(srv)
        events = Events()

        def stop_once_streaming():
            srv.wait_for_streams(1)
            threading.Timer(0.3, client.cancel, args=("r1",)).start()

        threading.Thread(target=stop_once_streaming).start()
        reply = client.run(PromptRequest("r1", "hi", 5), events)
        record = srv.wait_closed()
        assert record.client_closed and not record.completed
        assert reply.stopped and reply.text == "a b" and reply.tokens == 2 and reply.prompt_tokens is None


def test_cancel_before_the_stream_opened_closes_it_at_once():
    with FakeOpenAI(reply="a b c d e f g h", chunk_delay=0.2) as srv:
        client = make_client(srv)
        client.cancel("r1")  # Stop pressed while the request was on its way
        reply, _ = run(client)
        assert reply.stopped and reply.tokens < 8
        record = srv.wait_closed()
        assert record.client_closed and not record.completed


def test_usage_and_timings_come_back_for_the_cost_and_stats():
    with FakeOpenAI(reply="one two three four", chunk_delay=0.01) as srv:
        reply, _ = run(make_client(srv, model="gpt-4o-mini"), "count to four please")
        body = srv.chat_requests[-1].body
        assert body["stream_options"] == {"include_usage": True}
        assert reply.tokens == 4 and reply.prompt_tokens == 4 and reply.cached_tokens == 0
        assert reply.model == "gpt-4o-mini" and not reply.stopped
        assert 0 < reply.ttft_ms <= reply.generation_ms
