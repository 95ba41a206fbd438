"""The conversation controller without widgets: intents in on the bus, outcomes out; prompts go over real HTTP to
a test server speaking the TL-FIF API (its recorded /infer bodies show what the app sent) or the OpenAI protocol;
the history is a real SQLite file. The test thread plays the Tk thread and drains the outbox itself."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest

from app.bus import Bus, Outbox
from app.controllers.backend_base import BackendContext, Timings
from app.controllers.backends import create_all
from app.controllers.conversation_controller import BUSY_HINT, ConversationController
from app.controllers.job_controller import JobController
from app.controllers.settings_controller import SettingsStore
from app.models.conversation import Conversation
from app.models.settings import Settings
from app.services import chat_export
from app.services.auth import TokenProvider
from app.services.endpoints import AwsEndpoint, FixedEndpoint
from support.app_harness import Recorder, drain_until
from support.fake_openai import FakeOpenAI
from support.fake_tlfif_api import FakeTlfifApi

pytestmark = pytest.mark.timeout(60)

TIMINGS = Timings(retry_delays=(0.05,), result_poll_start_s=0.01, result_poll_cap_s=0.05,
                  progress_min_interval_s=0.0)
TOPICS = ["job.submitted", "job.done", "job.failed", "job.rejected", "chat.listed", "chat.opened", "chat.notice",
          "chat.warning", "chat.settings_saved", "chat.settings_invalid", "chat.exported", "chat.store_ready"]


class Stack:
    def __init__(self, api: FakeTlfifApi, history, settings: Settings | None = None, env=None):
        self.bus, self.outbox = Bus(), Outbox()
        self.recorder = Recorder(self.bus, TOPICS)
        self.store = SettingsStore(settings or Settings())
        endpoints = FixedEndpoint(AwsEndpoint.from_local_info(api.info))
        ctx = BackendContext(settings=lambda: self.store.current, endpoints=endpoints,
                             tokens=TokenProvider(endpoints, notify=self.outbox.post), timings=TIMINGS,
                             env=env or {})
        self.backends = create_all(ctx)
        self.executor = ThreadPoolExecutor(4)
        self.ledger = Conversation()
        self.chats = ConversationController(self.bus, self.outbox, self.ledger, history_path=history,
                                            settings=lambda: self.store.current, busy=lambda: self.jobs.busy)
        self.jobs = JobController(self.bus, self.outbox, self.backends, self.store, self.ledger, self.executor,
                                  TIMINGS, context=self.chats.context_for)
        self.chats.start()
        self.until(lambda: self.chats.ready)

    def until(self, predicate, timeout=10.0):
        drain_until(self.bus, self.outbox, predicate, timeout)

    def of(self, topic):
        return self.recorder.of(topic)

    def ask(self, prompt: str) -> dict:
        before = len(self.of("job.done")) + len(self.of("job.failed"))
        self.bus.send("ui.send", prompt=prompt)
        self.until(lambda: len(self.of("job.done")) + len(self.of("job.failed")) > before)
        assert not self.of("job.failed"), self.of("job.failed")
        self.until(lambda: not self.chats._unsaved)  # chat.persist_due published
        return self.of("job.done")[-1]

    def close(self):
        self.chats.close()
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.bus.close()


@pytest.fixture
def api():
    with FakeTlfifApi(word_delay=0.0) as server:
        yield server


@pytest.fixture
def history(tmp_path):
    return tmp_path / "data" / "history.sqlite3"


@pytest.fixture
def stack(api, history):
    s = Stack(api, history)
    yield s
    s.close()


def test_the_second_prompt_carries_the_first_exchange_and_the_chat_params(stack, api):
    first = stack.ask("What is TL-FIF?")
    stack.bus.send("ui.chat_settings", conversation_id=stack.chats.current.id, system="Be brief.",
                   temperature="0.2", max_tokens="128")
    assert stack.of("chat.settings_saved")[-1]["max_tokens"] == 128
    stack.ask("And who pays for the GPU?")
    bodies = [c.body for c in api.calls_to("POST", "/infer")]
    assert "messages" not in bodies[0], "a first prompt has no history"
    assert bodies[0]["params"] == {"temperature": 0.7, "max_tokens": 512}
    assert bodies[1]["messages"] == [{"role": "user", "content": "What is TL-FIF?"},
                                     {"role": "assistant", "content": first["text"]}]
    assert bodies[1]["params"] == {"system": "Be brief.", "temperature": 0.2, "max_tokens": 128}
    assert bodies[1]["prompt"] == "And who pays for the GPU?"


def test_a_small_context_drops_the_oldest_turns_and_says_so(api, history):
    s = Stack(api, history, replace(Settings(), context_tokens=512))
    try:
        s.bus.send("ui.chat_settings", conversation_id=s.chats.current.id, system="", temperature="0.7",
                   max_tokens="200")
        for n in range(4):
            s.ask(f"question {n} " + "x" * 300)
        body = api.calls_to("POST", "/infer")[-1].body
        contents = [m["content"] for m in body.get("messages", [])]
        assert contents and not any(c.startswith("question 0") for c in contents), "the oldest turn went first"
        assert contents[-2].startswith("question 2"), "the newest turns stay"
        assert "left out of the context" in s.of("chat.notice")[-1]["message"]
    finally:
        s.close()


def test_the_openai_backend_gets_the_same_history_as_chat_messages(api, history):
    with FakeOpenAI(reply="Paris is the capital.") as srv:
        settings = replace(Settings(), backend="openai", openai_base_url=srv.base_url, openai_model="m")
        s = Stack(api, history, settings, env={"OPENAI_API_KEY": "sk-x"})
        try:
            s.ask("Capital of France?")
            s.ask("And its population?")
            body = srv.chat_requests[-1].body
            assert body["messages"] == [
                {"role": "user", "content": "Capital of France?"},
                {"role": "assistant", "content": "Paris is the capital."},
                {"role": "user", "content": "And its population?"}]
            assert body["temperature"] == 0.7 and body["max_tokens"] == 512
        finally:
            s.close()


def test_history_survives_a_restart_and_the_latest_chat_opens(api, history):
    s = Stack(api, history)
    s.ask("first chat, first prompt")
    s.bus.send("ui.new_chat")
    s.ask("second chat prompt")
    second_id = s.chats.current.id
    s.close()

    again = Stack(api, history)
    try:
        again.until(lambda: again.chats.current.id == second_id)
        opened = again.of("chat.opened")[-1]
        assert [x["prompt"] for x in opened["exchanges"]] == ["second chat prompt"]
        assert opened["exchanges"][0]["status"] == "done" and opened["exchanges"][0]["answer"]
        assert [c.title for c in again.of("chat.listed")[-1]["chats"]] == ["second chat prompt",
                                                                           "first chat, first prompt"]
        again.ask("continuing after the restart")
        assert api.calls_to("POST", "/infer")[-1].body["messages"][0] == {"role": "user",
                                                                          "content": "second chat prompt"}
    finally:
        again.close()


def test_new_open_rename_delete(stack):
    stack.ask("alpha")
    alpha = stack.chats.current.id
    stack.bus.send("ui.new_chat")
    draft = stack.chats.current
    assert draft.id != alpha and draft.empty
    assert stack.of("chat.opened")[-1]["exchanges"] == []
    stack.bus.send("ui.new_chat")
    assert stack.chats.current is draft, "a second Ctrl+N keeps the one new chat"
    stack.ask("beta")
    beta = stack.chats.current.id
    assert [c.id for c in stack.of("chat.listed")[-1]["chats"]] == [beta, alpha]

    stack.bus.send("ui.open_chat", conversation_id=alpha)
    stack.until(lambda: stack.chats.current.id == alpha)
    assert [x["prompt"] for x in stack.of("chat.opened")[-1]["exchanges"]] == ["alpha"]

    stack.bus.send("ui.rename_chat", conversation_id=beta, title="  ")
    assert "needs a title" in stack.of("chat.notice")[-1]["message"]
    stack.bus.send("ui.rename_chat", conversation_id=beta, title="Beta, renamed")
    assert {c.id: c.title for c in stack.of("chat.listed")[-1]["chats"]}[beta] == "Beta, renamed"

    stack.bus.send("ui.delete_chat", conversation_id=alpha)
    stack.until(lambda: stack.chats.current.id == beta)
    assert [c.id for c in stack.of("chat.listed")[-1]["chats"]] == [beta]
    assert stack.of("chat.opened")[-1]["title"] == "Beta, renamed"


def test_leaving_a_chat_is_refused_while_an_answer_is_coming(api, history):
    api.word_delay = 0.05
    s = Stack(api, history)
    try:
        s.ask("first")
        first = s.chats.current.id
        s.bus.send("ui.new_chat")
        s.bus.send("ui.send", prompt="a slow one in the new chat")
        s.bus.send("ui.open_chat", conversation_id=first)
        s.bus.send("ui.new_chat")
        s.bus.send("ui.delete_chat", conversation_id=s.chats.current.id)
        assert [n["message"] for n in s.of("chat.notice")][-3:] == [BUSY_HINT] * 3
        s.until(lambda: len(s.of("job.done")) == 2)
        assert s.chats.current.id != first and [e.prompt for e in s.chats.current.exchanges] == [
            "a slow one in the new chat"]
    finally:
        s.close()


def test_chat_settings_are_validated_with_the_api_limits(stack):
    cid = stack.chats.current.id
    stack.bus.send("ui.chat_settings", conversation_id=cid, system="", temperature="3", max_tokens="100")
    assert stack.of("chat.settings_invalid")[-1]["field"] == "temperature"
    stack.bus.send("ui.chat_settings", conversation_id=cid, system="", temperature="1", max_tokens="5000")
    invalid = stack.of("chat.settings_invalid")[-1]
    assert invalid["field"] == "max_tokens" and "from 1 to 1792" in invalid["message"]
    assert not stack.of("chat.settings_saved")


def test_export_writes_what_the_chat_holds(stack, tmp_path):
    stack.ask("export me")
    cid = stack.chats.current.id
    target = tmp_path / "out" / "chat.json"
    target.parent.mkdir()
    stack.bus.send("ui.export_chat", conversation_id=cid, path=str(target))
    stack.until(lambda: stack.of("chat.exported"))
    assert stack.of("chat.exported")[-1] == {"path": str(target), "error": ""}
    back = chat_export.import_json(target.read_text(encoding="utf-8"))
    assert back == stack.chats.current
    stack.bus.send("ui.export_chat", conversation_id=cid, path=str(tmp_path / "missing-dir" / "x.md"))
    stack.until(lambda: len(stack.of("chat.exported")) == 2)
    assert stack.of("chat.exported")[-1]["error"], "a failed export says why"
