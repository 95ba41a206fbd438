"""Finding things in the real window under Xvfb: search across all chats (Ctrl+K, Ctrl+Shift+F) through the real
SQLite history and its FTS5 index, Enter opening the chat scrolled to the hit; and find in the open chat (Ctrl+F:
every hit highlighted, Enter / Shift+Enter next / previous, Esc closes). The answers come from the app tests' local
cloud (the echo engine repeats the prompt)."""
from __future__ import annotations

import pytest

from app.models import find
from app.models.settings import Settings
from app.timings import Timings
from support.xvfb import xvfb_display  # noqa: F401  (session fixture)

pytestmark = [pytest.mark.gui, pytest.mark.timeout(120)]

FAST = Timings(result_poll_start_s=0.02, result_poll_cap_s=0.1, ping_interval_s=0.5, cost_interval_s=0.3)


@pytest.fixture
def gui(gui, api):
    return lambda **kwargs: gui(**{"settings": Settings(), "endpoints": api.endpoints(), "timings": FAST, **kwargs})


def visible(pane, index: str) -> bool:
    return pane.dlineinfo(index) is not None


def test_find_positions_and_stepping_without_widgets():
    assert find.find_all("Ab ab\nxab\n", "AB") == [(1, 0), (1, 3), (2, 1)]
    assert find.find_all("aaaa", "aa") == [(1, 0), (1, 2)] and find.find_all("x", "") == []
    assert find.find_all("Straße ab", "ab") == [(1, 7)], "columns stay those Tk counts"
    assert [find.step(None, 3), find.step(2, 3), find.step(0, 3, forward=False)] == [0, 0, 2]
    assert find.step(None, 0) is None and find.status(1, 3) == "2 of 3" and find.status(None, 0) == "no match"


def new_chat(d) -> None:
    box = d.window.prompt.prompt_box
    box.focus_force()
    d.update()
    box.event_generate("<Control-n>")
    d.update(0.1)


def test_ctrl_k_searches_every_chat_and_enter_opens_the_chat_at_the_hit(gui):
    d = gui()
    old = d.ask("the walrus question")
    for n in range(12):  # enough exchanges after the hit that it is scrolled out of view
        d.ask(f"filler {n}\n" + "\n".join(f"line {k}" for k in range(6)))
    walrus_chat = d.app.chats.current.id
    new_chat(d)
    newer = d.ask("a newer walrus sighting")
    assert d.app.chats.current.id != walrus_chat

    box = d.window.prompt.prompt_box
    d.type(box, "keep me")
    box.event_generate("<Control-k>")
    d.update(0.1)
    dialog = d.window.search_dialog
    assert dialog is not None and box.get("1.0", "end-1c") == "keep me", "Ctrl+K did not edit the prompt"
    d.type(dialog.entry, "walru")
    d.until(lambda: len(dialog.hits) >= 2, 10, "the search results")
    ids = [h.request_id for h in dialog.hits]
    assert ids == [newer, old], "one result per exchange (prompt or answer), newest first"
    marked = dialog.results.tag_ranges("hit")
    words = {dialog.results.get(marked[i], marked[i + 1]).lower() for i in range(0, len(marked), 2)}
    assert words == {"walrus"}, "the snippet highlights the matching word"

    dialog.select(ids.index(old))
    dialog.entry.event_generate("<Return>")
    d.until(lambda: d.app.chats.current.id == walrus_chat, 10, "the walrus chat open")
    pane = d.window.output
    d.until(lambda: old in pane.rendered, 10, "the answers rendered")
    d.update(0.2)
    assert visible(pane, f"x0_{old}"), "scrolled to the hit"
    assert not visible(pane, "end-2c"), "not at the end of the chat"
    assert not dialog.winfo_exists()


def test_ctrl_shift_f_opens_the_search_too_and_esc_closes_it(gui):
    d = gui()
    box = d.window.prompt.prompt_box
    box.focus_force()
    d.update()
    box.event_generate("<Control-F>", state=0x5)  # Ctrl+Shift+F
    d.update(0.1)
    dialog = d.window.search_dialog
    assert dialog is not None and dialog.winfo_exists()
    d.type(dialog.entry, "nothing")
    d.until(lambda: "No chat mentions that." in dialog.status.cget("text"), 10, "the empty result")
    dialog.entry.event_generate("<Escape>")
    d.update()
    assert not dialog.winfo_exists()


def test_ctrl_f_highlights_every_hit_and_steps_through_them(gui):
    d = gui()
    d.ask("alpha beta alpha")
    d.ask("gamma alpha")
    pane = d.window.output
    box = d.window.prompt.prompt_box
    box.focus_force()
    d.update()
    box.event_generate("<Control-f>")
    d.update()
    bar = d.window.find_bar
    assert bar.winfo_ismapped()
    d.type(bar.entry, "ALPHA")
    hits = pane.tag_ranges("find_hit")
    texts = [pane.get(hits[i], hits[i + 1]) for i in range(0, len(hits), 2)]
    total = pane.get("1.0", "end").lower().count("alpha")
    assert len(texts) == total >= 6 and set(texts) == {"alpha"}, texts

    def current() -> str:
        ranges = pane.tag_ranges("find_current")
        return str(ranges[0]) if ranges else ""

    bar.entry.event_generate("<Return>")
    first = current()
    bar.entry.event_generate("<Return>")
    second = current()
    assert first and second and pane.compare(second, ">", first)
    bar.entry.event_generate("<Shift-Return>")
    assert current() == first
    bar.entry.event_generate("<Shift-Return>")
    assert pane.compare(current(), ">", second), "wraps to the last hit"
    assert bar.status.cget("text") == f"{total} of {total}"
    bar.entry.event_generate("<Escape>")
    d.update()
    assert not bar.winfo_ismapped() and not pane.tag_ranges("find_hit") and not pane.tag_ranges("find_current")
