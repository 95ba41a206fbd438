"""Regenerate, edit and branch without widgets: intents in on the bus, outcomes out; prompts go over real HTTP to
the local cloud (the fault proxy's record of the /infer bodies shows the context each alternative was sent with);
the history is a real SQLite file, read again by a restarted stack."""
from __future__ import annotations

import json

import pytest

from app.controllers.chat_controller import BUSY_SWITCH_HINT, GONE_HINT, NOTHING_TO_REGENERATE
from app.controllers.job_controller import REGENERATE_BUSY_HINT
from app.services import chat_export
from app.timings import Timings

pytestmark = pytest.mark.timeout(90)

TIMINGS = Timings(retry_delays=(0.05,), result_poll_start_s=0.01, result_poll_cap_s=0.05,
                  progress_min_interval_s=0.0)
SLOW = "slow " + " ".join(f"w{i}" for i in range(60))  # the echo engine: 20 ms a word


@pytest.fixture
def history(tmp_path):
    return tmp_path / "data" / "history.sqlite3"


@pytest.fixture
def new_stack(api, make_stack, history):
    return lambda: make_stack(api.endpoints(), TIMINGS, history=history)


@pytest.fixture
def stack(new_stack):
    return new_stack()


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
