"""The conversation controller without widgets: intents in on the bus, outcomes out; prompts go over real HTTP to
the local cloud (the fault proxy's record of the /infer bodies shows what the app sent) or the OpenAI test server;
the history is a real SQLite file. The test thread plays the Tk thread and drains the outbox itself. The last
tests: regenerate, edit and branch (the /infer bodies show the context each alternative was sent with)."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from app.controllers.chat_controller import BUSY_HINT, BUSY_SWITCH_HINT, GONE_HINT, NOTHING_TO_REGENERATE
from app.controllers.job_controller import REGENERATE_BUSY_HINT
from app.models.settings import Settings
from app.services import chat_export
from app.timings import Timings
from support.fake_openai import FakeOpenAI

pytestmark = pytest.mark.timeout(60)

TIMINGS = Timings(retry_delays=(0.05,), result_poll_start_s=0.01, result_poll_cap_s=0.05,
                  progress_min_interval_s=0.0)
SLOW = "a slow one in the new chat " + " ".join(f"w{i}" for i in range(50))  # the echo engine: 20 ms a word


@pytest.fixture
def history(tmp_path):
    return tmp_path / "data" / "history.sqlite3"


@pytest.fixture
def new_stack(api, make_stack, history):
    """`new_stack(settings=None, env=None)`: the controllers on this test's history file (again: a restart)."""
    return lambda settings=None, env=None: make_stack(api.endpoints(), TIMINGS, settings=settings, env=env,
                                                      history=history)


@pytest.fixture
def stack(new_stack):
    return new_stack()


def test_the_second_prompt_carries_the_first_exchange_and_the_chat_params(stack, api):
    first = stack.ask("What is TL-FIF?")
    stack.bus.send("ui.chat_settings", chat_id=stack.chats.current.id, system="Be brief.",
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


def test_on_openai_a_small_context_drops_the_oldest_turns_and_says_so(new_stack):
    """An OpenAI-compatible server does not trim: the app estimates the tokens against its context setting."""
    with FakeOpenAI(reply="Noted.") as srv:
        settings = replace(Settings(), backend="openai", openai_base_url=srv.base_url, openai_model="m",
                           context_tokens=512)
        s = new_stack(settings, env={"OPENAI_API_KEY": "sk-x"})
        try:
            s.bus.send("ui.chat_settings", chat_id=s.chats.current.id, system="", temperature="0.7",
                       max_tokens="200")
            for n in range(4):
                s.ask(f"question {n} " + "x" * 300)
            contents = [m["content"] for m in srv.chat_requests[-1].body["messages"][:-1]]
            assert contents and not any(c.startswith("question 0") for c in contents), "the oldest turn went first"
            assert contents[-2].startswith("question 2"), "the newest turns stay"
            assert "left out of the context" in s.of("chat.notice")[-1]["message"]
        finally:
            s.close()


def test_on_aws_the_app_sends_the_whole_history_the_watcher_trims_it(api, new_stack):
    """The watcher trims with the model's own tokenizer: the app's context setting does not cut the history."""
    s = new_stack(replace(Settings(), context_tokens=512))
    try:
        for n in range(4):
            s.ask(f"question {n} " + "x" * 300)
        contents = [m["content"] for m in api.calls_to("POST", "/infer")[-1].body["messages"]]
        assert [c.split()[1] for c in contents[::2]] == ["0", "1", "2"], "every earlier turn is sent"
        assert not any("left out" in n["message"] for n in s.of("chat.notice"))
    finally:
        s.close()


def test_turns_the_watcher_left_out_are_shown_as_a_notice(api, new_stack):
    from tlfif_common.api import Result

    api.stop_gpu()  # the job waits for the GPU: its result is written here, as the watcher would after trimming
    s = new_stack()
    try:
        s.bus.send("ui.send", prompt="with a long history")
        s.until(lambda: s.of("job.queued"))
        api.put_result(Result(s.of("job.queued")[0]["job_id"], "done", text="short answer", tokens=2,
                              turns_dropped=3))
        s.until(lambda: s.of("job.done") or s.of("job.failed"))
        assert s.of("job.done")[0]["text"] == "short answer"
        assert s.of("chat.notice")[-1]["message"].startswith("3 earlier exchange(s) left out of the context")
    finally:
        s.close()


def test_the_openai_backend_gets_the_same_history_as_chat_messages(api, new_stack):
    with FakeOpenAI(reply="Paris is the capital.") as srv:
        settings = replace(Settings(), backend="openai", openai_base_url=srv.base_url, openai_model="m")
        s = new_stack(settings, env={"OPENAI_API_KEY": "sk-x"})
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


def test_history_survives_a_restart_and_the_latest_chat_opens(api, new_stack):
    s = new_stack()
    s.ask("first chat, first prompt")
    s.bus.send("ui.new_chat")
    s.ask("second chat prompt")
    second_id = s.chats.current.id
    s.close()

    again = new_stack()
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

    stack.bus.send("ui.open_chat", chat_id=alpha)
    stack.until(lambda: stack.chats.current.id == alpha)
    assert [x["prompt"] for x in stack.of("chat.opened")[-1]["exchanges"]] == ["alpha"]

    stack.bus.send("ui.rename_chat", chat_id=beta, title="  ")
    assert "needs a title" in stack.of("chat.notice")[-1]["message"]
    stack.bus.send("ui.rename_chat", chat_id=beta, title="Beta, renamed")
    assert {c.id: c.title for c in stack.of("chat.listed")[-1]["chats"]}[beta] == "Beta, renamed"

    stack.bus.send("ui.delete_chat", chat_id=alpha)
    stack.until(lambda: stack.chats.current.id == beta)
    assert [c.id for c in stack.of("chat.listed")[-1]["chats"]] == [beta]
    assert stack.of("chat.opened")[-1]["title"] == "Beta, renamed"


def test_leaving_a_chat_is_refused_while_an_answer_is_coming(api, new_stack):
    s = new_stack()
    try:
        s.ask("first")
        first = s.chats.current.id
        s.bus.send("ui.new_chat")
        s.bus.send("ui.send", prompt=SLOW)
        s.bus.send("ui.open_chat", chat_id=first)
        s.bus.send("ui.new_chat")
        s.bus.send("ui.delete_chat", chat_id=s.chats.current.id)
        assert [n["message"] for n in s.of("chat.notice")][-3:] == [BUSY_HINT] * 3
        s.until(lambda: len(s.of("job.done")) == 2)
        assert s.chats.current.id != first and [e.prompt for e in s.chats.current.exchanges] == [SLOW]
    finally:
        s.close()


def test_chat_settings_are_validated_with_the_api_limits(stack):
    cid = stack.chats.current.id
    stack.bus.send("ui.chat_settings", chat_id=cid, system="", temperature="3", max_tokens="100")
    assert stack.of("chat.settings_invalid")[-1]["field"] == "temperature"
    stack.bus.send("ui.chat_settings", chat_id=cid, system="", temperature="1", max_tokens="5000")
    invalid = stack.of("chat.settings_invalid")[-1]
    assert invalid["field"] == "max_tokens" and "from 1 to 1792" in invalid["message"]
    assert not stack.of("chat.settings_saved")


def test_export_writes_what_the_chat_holds(stack, tmp_path):
    stack.ask("export me")
    cid = stack.chats.current.id
    target = tmp_path / "out" / "chat.json"
    target.parent.mkdir()
    stack.bus.send("ui.export_chat", chat_id=cid, path=str(target))
    stack.until(lambda: stack.of("chat.exported"))
    assert stack.of("chat.exported")[-1] == {"path": str(target), "error": ""}
    back = chat_export.import_json(target.read_text(encoding="utf-8"))
    assert back == stack.chats.current
    stack.bus.send("ui.export_chat", chat_id=cid, path=str(tmp_path / "missing-dir" / "x.md"))
    stack.until(lambda: len(stack.of("chat.exported")) == 2)
    assert stack.of("chat.exported")[-1]["error"], "a failed export says why"


# --- regenerate, edit, branch ------------------------------------------------------------------------------------
def turns(*pairs: tuple[str, str]) -> list[dict]:
    messages = []
    for user, assistant in pairs:
        messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    return messages


def shown(stack) -> list[tuple[str, int, int]]:
    """The branch the window was last told to show: (prompt, n, m) of each exchange."""
    return [(x["prompt"], x["alternative"], x["alternatives"]) for x in stack.of("chat.opened")[-1]["exchanges"]]


def regenerate(stack) -> dict:
    before = stack.ended()
    stack.bus.send("ui.regenerate")
    stack.until(lambda: stack.ended() > before)
    return stack.of("job.done")[-1]


def test_regenerate_keeps_both_answers_and_the_chosen_one_is_the_context(api, new_stack, tmp_path):
    s = new_stack()
    try:
        s.ask("one")
        two = s.ask("two")
        again = regenerate(s)
        infers = api.calls_to("POST", "/infer")
        assert infers[-1].body["prompt"] == "two"
        assert infers[-1].body["messages"] == turns(("one", api.reply("one"))), \
            "an alternative is sent with the turns before the exchange it replaces, not with that exchange"
        assert again["request_id"] != two["request_id"]
        assert shown(s) == [("one", 1, 1), ("two", 2, 2)], "the new answer is shown, as alternative 2 of 2"

        s.bus.send("ui.show_alternative", request_id=again["request_id"], step=-1)
        assert shown(s) == [("one", 1, 1), ("two", 1, 2)]
        assert s.of("chat.opened")[-1]["exchanges"][-1]["request_id"] == two["request_id"]
        s.ask("three")
        assert api.calls_to("POST", "/infer")[-1].body["messages"] == turns(("one", api.reply("one")),
                                                                             ("two", api.reply("two")))
        three_parent = s.chats.current.branch()[-1].parent_id
        assert three_parent == two["request_id"], "what follows, follows the alternative shown"
        chat_id = s.chats.current.id
        target = tmp_path / "chat.json"
        s.bus.send("ui.export_chat", chat_id=chat_id, path=str(target))
        s.until(lambda: s.of("chat.exported"))
        markdown = tmp_path / "chat.md"
        s.bus.send("ui.export_chat", chat_id=chat_id, path=str(markdown))
        s.until(lambda: len(s.of("chat.exported")) == 2)
    finally:
        s.close()

    doc = json.loads(target.read_text(encoding="utf-8"))
    assert [(x["prompt"], x["parent_id"] == two["request_id"]) for x in doc["exchanges"]] == \
        [("one", False), ("two", False), ("two", False), ("three", True)], "JSON: every branch"
    assert doc["shown"] == doc["exchanges"][-1]["request_id"]
    text = markdown.read_text(encoding="utf-8")
    assert text.count("\ntwo\n") == 1 and "\nthree\n" in text, "Markdown: the branch shown, once"
    assert "1 alternative(s) are in the JSON export" in text

    restarted = new_stack()
    try:
        restarted.until(lambda: restarted.chats.current.id == chat_id)
        assert shown(restarted) == [("one", 1, 1), ("two", 1, 2), ("three", 1, 1)], \
            "the tree and the branch shown survive a restart"
        restarted.bus.send("ui.show_alternative", request_id=two["request_id"], step=+1)
        assert shown(restarted) == [("one", 1, 1), ("two", 2, 2)]
    finally:
        restarted.close()


def test_editing_an_earlier_prompt_starts_a_branch_and_the_old_one_stays_reachable(api, stack):
    a, b = stack.ask("a"), stack.ask("b")
    stack.ask("c")
    before = stack.ended()
    stack.bus.send("ui.send", prompt="b, edited", branch_of=b["request_id"])
    stack.until(lambda: stack.ended() > before)
    assert api.calls_to("POST", "/infer")[-1].body["messages"] == turns(("a", api.reply("a")))
    assert shown(stack) == [("a", 1, 1), ("b, edited", 2, 2)], "the branch from the edit on; c is not in it"
    stack.ask("d")
    assert api.calls_to("POST", "/infer")[-1].body["messages"] == turns(("a", api.reply("a")),
                                                                         ("b, edited", api.reply("b, edited")))
    stack.bus.send("ui.show_alternative", request_id=stack.chats.current.branch()[1].request_id, step=-1)
    assert shown(stack) == [("a", 1, 1), ("b", 1, 2), ("c", 1, 1)], "the old branch, with its own later turns"

    before = stack.ended()
    stack.bus.send("ui.send", prompt="a, edited", branch_of=a["request_id"])
    stack.until(lambda: stack.ended() > before)
    assert "messages" not in api.calls_to("POST", "/infer")[-1].body, "an edited first prompt has no history"
    assert shown(stack) == [("a, edited", 2, 2)]
    assert len(stack.chats.current.exchanges) == 6


def test_regenerate_and_edit_say_why_when_they_cannot(api, stack):
    stack.bus.send("ui.regenerate")
    assert stack.of("job.rejected")[-1]["message"] == NOTHING_TO_REGENERATE
    stack.bus.send("ui.send", prompt="edited", branch_of="no-such-exchange")
    assert stack.of("job.rejected")[-1]["message"] == GONE_HINT
    assert not api.calls_to("POST", "/infer") and not stack.of("job.submitted")

    first = stack.ask("first")
    stack.bus.send("ui.send", prompt=SLOW)
    stack.bus.send("ui.regenerate")
    assert stack.of("job.rejected")[-1]["message"] == REGENERATE_BUSY_HINT
    stack.bus.send("ui.send", prompt="first, edited", branch_of=first["request_id"])
    assert stack.of("job.waiting")[-1]["prompt"] == "first, edited", "an edit sent while an answer comes waits"
    stack.until(lambda: len(stack.of("job.done")) == 2)
    stack.bus.send("ui.show_alternative", request_id=first["request_id"], step=+1)
    assert stack.of("chat.notice")[-1]["message"] == BUSY_SWITCH_HINT, "no switching while the edit's answer comes"
    stack.until(lambda: len(stack.of("job.done")) == 3)
    assert shown(stack) == [("first, edited", 2, 2)]
    assert api.calls_to("POST", "/infer")[-1].body["prompt"] == "first, edited"
    assert "messages" not in api.calls_to("POST", "/infer")[-1].body


def test_a_search_hit_in_another_branch_shows_that_branch(api, stack):
    stack.ask("hidden needle")
    old = stack.of("job.done")[-1]["request_id"]
    before = stack.ended()
    stack.bus.send("ui.send", prompt="replacement", branch_of=old)
    stack.until(lambda: stack.ended() > before)
    assert shown(stack) == [("replacement", 2, 2)]
    stack.bus.send("ui.open_search_hit", chat_id=stack.chats.current.id, request_id=old)
    assert shown(stack) == [("hidden needle", 1, 2)]
