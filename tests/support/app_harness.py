"""Helpers for the app's controller tests without widgets: record bus messages, drain the outbox by hand."""
from __future__ import annotations

import time
from typing import Callable

from app.bus import Bus, Outbox


class Recorder:
    """Records every message of the given topics as (topic, data) in order."""

    def __init__(self, bus: Bus, topics: list[str]):
        self.messages: list[tuple[str, dict]] = []
        self._listeners = []  # pypubsub holds weak references: keep the closures alive here
        for topic in topics:
            listener = self._listener(topic)
            self._listeners.append(listener)
            bus.subscribe(listener, topic)

    def _listener(self, topic: str):
        def listener(**data):
            self.messages.append((topic, data))
        return listener

    def of(self, topic: str) -> list[dict]:
        return [data for t, data in self.messages if t == topic]

    def topics(self) -> list[str]:
        return [t for t, _ in self.messages]


def drain_until(bus: Bus, outbox: Outbox, predicate: Callable[[], bool], timeout: float = 10.0,
                step: float = 0.01) -> None:
    """Publish what workers queued, on this (the bus's) thread, until `predicate()` or the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        outbox.drain(bus, 1000)
        if predicate():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(step)


# --- driving the real window ---------------------------------------------------------------------------------------
KEYSYMS = {" ": "space", "\n": "Return", "?": "question", "!": "exclam", ".": "period", ",": "comma",
           "-": "minus", "'": "apostrophe", ":": "colon", "/": "slash", "*": "asterisk", "`": "grave",
           "#": "numbersign", "_": "underscore"}


class GuiDriver:
    """One app in a Toplevel of the module's Tk root: type with real key events, pump with root.update()."""

    def __init__(self, root, **app_kwargs):
        import tkinter as tk

        from app.application import Application
        from app.services import config_file

        self.root = root
        self.top = tk.Toplevel(root)
        if "settings" not in app_kwargs:
            loaded = config_file.load()
            app_kwargs["settings"] = loaded.settings
            app_kwargs.setdefault("load_warning", loaded.warning)
        app_kwargs.setdefault("modal_dialogs", False)
        self.app = Application(self.top, **app_kwargs)
        self.window = self.app.window
        self.recorder = Recorder(self.app.bus, ["job.submitted", "job.done", "job.failed", "job.progress",
                                                "gpu.state", "cost.updated", "job.rejected"])
        self.app.start()
        self.top.update()

    def update(self, seconds: float = 0.0) -> None:
        deadline = time.monotonic() + seconds
        while True:
            self.root.update()
            if time.monotonic() >= deadline:
                return
            time.sleep(0.005)

    def until(self, predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} not met within {timeout} s")
            self.root.update()
            time.sleep(0.005)

    def type(self, widget, text: str) -> None:
        widget.focus_force()
        self.root.update()
        for ch in text:
            widget.event_generate("<KeyPress>", keysym=KEYSYMS.get(ch, ch))
        self.root.update()

    def send_with_ctrl_enter(self) -> None:
        box = self.window.prompt.prompt_box
        box.focus_force()
        self.root.update()
        box.event_generate("<Control-Return>")

    def last_request_id(self) -> str:
        return self.recorder.of("job.submitted")[-1]["request_id"]

    def close(self) -> None:
        import gc

        self.app.close()
        self.top.destroy()
        self.root.update()
        gc.collect()  # collect Tk variables here, on the Tk thread, not later in some worker thread
