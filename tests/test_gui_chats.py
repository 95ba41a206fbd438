"""Chats in the real window under Xvfb, on the local cloud (`tl-fif cloud up` as a process, real key events and
clicks): multi-turn context seen where the watcher hands the job to its engine, New chat, rename, delete, export,
history surviving a restart, and a corrupt history file moved aside with a notice."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.timings import Timings
from app.models.settings import Settings
from app.services import chat_export, config_file
from app.services.endpoints import FixedEndpoint
from app.services.history_store import HistoryStore
from support.app_harness import GuiDriver, Recorder
from support.fake_openai import FakeOpenAI
from support.local_cloud import RELAXED_THROTTLE
from support.xvfb import xvfb_display  # noqa: F401  (session fixture)

pytestmark = [pytest.mark.gui, pytest.mark.e2e, pytest.mark.timeout(120)]

# Polls kept well under the API's 5 requests/s per user.
TIMINGS = Timings(ping_interval_s=2.0, ping_starting_s=0.5, cost_interval_s=5.0, result_poll_start_s=0.05,
                  result_poll_cap_s=0.2)
CHAT_TOPICS = ["chat.listed", "chat.opened", "chat.notice", "chat.warning", "chat.exported", "chat.settings_saved",
               "chat.settings_invalid"]


@pytest.fixture
def gui(gui):
    """`gui(cloud, **app_kwargs)`: the window on this local cloud; settings=None loads the settings file."""
    def make(cloud, **kwargs):
        kwargs.setdefault("endpoints", FixedEndpoint(cloud.endpoint()))
        if kwargs.setdefault("settings", Settings()) is None:
            del kwargs["settings"]  # GuiDriver loads the settings file
        driver = gui(timings=TIMINGS, **kwargs)
        driver.chats = Recorder(driver.app.bus, CHAT_TOPICS)
        return driver
    return make


def ask(d: GuiDriver, text: str, timeout: float = 30.0) -> str:
    """Type a prompt, Ctrl+Enter, wait for its answer, which must not be a failure; the request id."""
    rid = d.ask(text, timeout)
    assert not [m for m in d.recorder.of("job.failed") if m["request_id"] == rid], d.recorder.of("job.failed")
    d.update(0.05)
    return rid


def tree_titles(d: GuiDriver) -> list[str]:
    tree = d.window.sidebar.tree
    return [tree.item(iid, "text") for iid in tree.get_children()]


def click_chat(d: GuiDriver, title: str) -> None:
    """A real click on the sidebar row with this title."""
    tree = d.window.sidebar.tree
    iid = next(i for i in tree.get_children() if tree.item(i, "text") == title)
    tree.see(iid)
    d.update()
    x, y, _w, h = tree.bbox(iid)
    tree.event_generate("<ButtonPress-1>", x=x + 10, y=y + h // 2)
    tree.event_generate("<ButtonRelease-1>", x=x + 10, y=y + h // 2)
    d.update()


def replace_entry(d: GuiDriver, entry, text: str) -> None:
    entry.delete(0, "end")
    d.type(entry, text)


def test_the_second_prompt_carries_the_first_exchange_to_the_engine(gui, local_cloud_factory):
    """The local cloud's watcher runs its vLLM engine against a server speaking the OpenAI protocol: what that
    server received is what the watcher made of the job the app sent (system prompt + history + prompt)."""
    reply = "TL-FIF runs TinyLlama on a GPU that stops when idle."
    with FakeOpenAI(reply=reply, chunk_delay=0.005) as engine:
        cloud = local_cloud_factory("--boot-seconds", "0.5", "--engine", engine.base_url, *RELAXED_THROTTLE)
        d = gui(cloud)
        w, side = d.window, d.window.sidebar
        ask(d, "What is TL-FIF?")
        assert tree_titles(d) == ["What is TL-FIF?"], "the first prompt titles the chat"
        assert engine.chat_requests[0].body["messages"] == [{"role": "user", "content": "What is TL-FIF?"}]

        side.settings_btn.invoke()
        dialog = side.settings_dialog
        d.type(dialog.system_box, "Answer in one sentence.")
        replace_entry(d, dialog.temperature_entry, "3")
        dialog.ok_btn.invoke()
        d.update()
        assert "from 0 to 2" in dialog.hints["temperature"]["text"] and dialog.winfo_exists(), \
            "a refused value gets its hint under its field; the dialog stays"
        replace_entry(d, dialog.temperature_entry, "0.2")
        replace_entry(d, dialog.max_tokens_entry, "300")
        dialog.ok_btn.invoke()
        d.update()
        assert not dialog.winfo_exists() and side.notice["text"] == "Chat settings saved."

        ask(d, "Who pays for it?")
        body = engine.chat_requests[-1].body
        assert body["messages"] == [
            {"role": "system", "content": "Answer in one sentence."},
            {"role": "user", "content": "What is TL-FIF?"},
            {"role": "assistant", "content": reply},
            {"role": "user", "content": "Who pays for it?"}]
        assert body["temperature"] == 0.2 and body["max_tokens"] == 300
        assert w.output.get("1.0", "end").count(reply) == 2


def test_new_chat_open_rename_delete(gui, local_cloud):
    d = gui(local_cloud)
    w, side = d.window, d.window.sidebar
    first = ask(d, "the first chat")
    assert "You said: the first chat" in w.output.answer_text(first)

    box = w.prompt.prompt_box
    box.focus_force()
    d.update()
    box.event_generate("<Control-n>")
    d.update()
    assert tree_titles(d) == ["New chat", "the first chat"]
    assert w.output.get("1.0", "end").strip() == "", "a new chat starts with an empty pane"
    ask(d, "the second chat")
    assert tree_titles(d) == ["the second chat", "the first chat"]

    click_chat(d, "the first chat")
    d.until(lambda: "the first chat" in w.output.get("1.0", "end"), 10, "the first chat opened")
    assert "the second chat" not in w.output.get("1.0", "end")
    assert "You said: the first chat" in w.output.answer_text(first), "the saved answer is rendered again"

    side.rename_btn.invoke()
    dialog = side.rename_dialog
    assert dialog.title_var.get() == "the first chat"
    replace_entry(d, dialog.entry, "Renamed chat")
    dialog.entry.event_generate("<Return>")
    d.update()
    assert tree_titles(d) == ["the second chat", "Renamed chat"]

    side.delete_btn.invoke()
    confirm = side.confirm_dialog
    confirm.cancel_btn.invoke()
    d.update()
    assert tree_titles(d) == ["the second chat", "Renamed chat"], "Cancel deletes nothing"
    side.delete_btn.invoke()
    side.confirm_dialog.ok_btn.invoke()
    d.until(lambda: tree_titles(d) == ["the second chat"] and "the second chat" in w.output.get("1.0", "end"),
            10, "the deleted chat gone and the next one open")
    stored = HistoryStore.open(config_file.history_path())[0]
    assert [s.title for s in stored.list_chats()] == ["the second chat"]
    stored.close()


def test_history_survives_a_restart_and_exports(gui, local_cloud, tmp_path, home):
    d = gui(local_cloud)
    ask(d, "remember this")
    ask(d, "and this too")
    d.close()

    (home / ".tl-fif.ini").write_text("[app]\nidle = eleven\n")
    again = gui(local_cloud, settings=None)  # loads the settings file with a bad value: a notice at start-up
    w = again.window
    again.until(lambda: "and this too" in w.output.get("1.0", "end"), 10, "the latest chat open after a restart")
    assert tree_titles(again) == ["remember this"]
    text = w.output.get("1.0", "end")
    assert "You said: remember this" in text and "You said: and this too" in text
    assert "Settings: [app] idle = 'eleven'" in text, "a start-up notice stays above the chat opened at start"
    chat = again.app.chats.current
    assert [e.prompt for e in chat.exchanges] == ["remember this", "and this too"]

    target = tmp_path / "export.json"
    w.sidebar.ask_export_path = lambda: str(target)
    w.prompt.prompt_box.focus_force()
    again.update()
    w.prompt.prompt_box.event_generate("<Control-e>")
    again.until(lambda: again.chats.of("chat.exported"), 10, "the export written")
    assert again.chats.of("chat.exported")[-1] == {"path": str(target), "error": ""}
    assert w.sidebar.notice["text"] == f"Exported to {target}"
    assert chat_export.import_json(target.read_text(encoding="utf-8")) == chat

    markdown = tmp_path / "export.md"
    w.sidebar.export_current(str(markdown))
    again.until(lambda: len(again.chats.of("chat.exported")) == 2, 10, "the Markdown export")
    md = markdown.read_text(encoding="utf-8")
    assert md.startswith("# remember this\n") and md.count("· to AWS TinyLlama") == 2
    assert "You said: and this too" in md


def test_a_corrupt_history_is_moved_aside_with_a_notice_and_the_app_works(gui, local_cloud):
    path = config_file.history_path()
    path.parent.mkdir(parents=True)
    garbage = os.urandom(2048)
    path.write_bytes(garbage)
    d = gui(local_cloud)
    w = d.window
    d.until(lambda: "unreadable" in w.sidebar.warning["text"], 10, "the notice in the sidebar")
    aside = [p for p in Path(path.parent).iterdir() if p.name.startswith("history.sqlite3.corrupt-")]
    assert len(aside) == 1 and aside[0].read_bytes() == garbage, "the old file is kept aside, unchanged"
    assert str(aside[0]) in w.sidebar.warning["text"]
    assert "unreadable" in w.output.get("1.0", "end"), "the notice is in the output pane too"

    ask(d, "still working")
    d.close()
    store, warning = HistoryStore.open(path)
    assert warning is None
    assert [s.title for s in store.list_chats()] == ["still working"], "the fresh history holds the new chat"
    store.close()
