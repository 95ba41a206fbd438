"""The app under test, two ways: `ControllerStack` (every controller wired as app/application.py wires them, no
widgets: the test thread plays the Tk thread and drains the outbox itself) and `GuiDriver` (the real window in a
Toplevel, driven with real key events); the `stack` and `gui` fixtures (conftest.py) build and close them."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import pytest

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


# --- the controllers without widgets ------------------------------------------------------------------------------
JOB_TOPICS = ["job.rejected", "job.submitted", "job.queued", "job.retrying", "job.progress", "job.done",
              "job.cancelled", "job.failed", "job.waiting", "job.withdrawn"]
TOPICS = JOB_TOPICS + ["gpu.state", "gpu.keep_warm", "cost.updated", "cost.paused", "cost.chart", "auth.key_needed",
                       "auth.signed_in", "settings.saved", "settings.invalid", "settings.warning", "chat.listed",
                       "chat.opened", "chat.notice", "chat.warning", "chat.settings_saved", "chat.settings_invalid",
                       "chat.exported"]


class ControllerStack:
    """The app's controllers on one bus, wired as Application wires them; pollers start only when a test asks."""

    def __init__(self, endpoints, tmp_path: Path, timings, *, settings=None, env=None, history: Path | None = None,
                 wall_clock: Callable[[], float] = time.time):
        from app.backends.base import BackendContext
        from app.backends.registry import create_all
        from app.controllers.chat_controller import ChatController
        from app.controllers.cost_controller import CostController
        from app.controllers.gpu_controller import GpuController
        from app.controllers.job_controller import JobController
        from app.controllers.keep_warm_controller import KeepWarmController
        from app.controllers.settings_controller import SettingsController, SettingsStore
        from app.models.exchange import ExchangeLedger
        from app.models.gpu import GpuModel
        from app.models.settings import Settings
        from app.services.auth import TokenProvider
        from app.services.tlfif_session import TlfifSession

        self.timings = timings
        self.bus, self.outbox = Bus(), Outbox()
        self.recorder = Recorder(self.bus, TOPICS)
        self.path = tmp_path / "tl-fif.ini"
        self.store = SettingsStore(settings or Settings(), self.path)
        self.tokens = TokenProvider(endpoints, notify=self.outbox.post)
        self.session = TlfifSession(endpoints, self.tokens, timings)
        ctx = BackendContext(settings=lambda: self.store.current, session=self.session, timings=timings,
                             env=env if env is not None else {})
        self.backends = create_all(ctx)
        self.executor = ThreadPoolExecutor(4)
        self.exchanges = ExchangeLedger()
        self.model = GpuModel()
        self.settings = SettingsController(self.bus, self.store, tuple(self.backends))
        self.chats = ChatController(self.bus, self.outbox, self.exchanges,
                                    history_path=history or tmp_path / "data" / "history.sqlite3",
                                    settings=lambda: self.store.current, busy=lambda: self.jobs.busy)
        self.jobs = JobController(self.bus, self.outbox, self.backends, self.store, self.exchanges, self.executor,
                                  timings, context=self.chats.context_for,
                                  regenerate_target=self.chats.regenerate_target)
        self.gpu = GpuController(self.bus, self.outbox, self.session, self.model, self.executor, timings,
                                 self.exchanges)
        self.cost = CostController(self.bus, self.outbox, self.session, timings)
        self.keep_warm = KeepWarmController(self.bus, self.outbox, self.session, self.model, self.gpu, self.executor,
                                            lambda: self.store.current, wall_clock=wall_clock)
        self.chats.start()
        self.until(lambda: self.chats.ready)

    def until(self, predicate: Callable[[], bool], timeout: float = 20.0) -> None:
        drain_until(self.bus, self.outbox, predicate, timeout)

    def of(self, topic: str) -> list[dict]:
        return self.recorder.of(topic)

    def ended(self) -> int:
        return len(self.of("job.done")) + len(self.of("job.failed")) + len(self.of("job.cancelled"))

    def ask(self, prompt: str, timeout: float = 30.0) -> dict:
        """Send a prompt, wait for its answer and for the chat to be saved; the job.done data."""
        before = self.ended()
        self.bus.send("ui.send", prompt=prompt)
        self.until(lambda: self.ended() > before, timeout)
        assert not self.of("job.failed"), self.of("job.failed")
        return self.of("job.done")[-1]

    def close(self) -> None:
        if self.bus is None:
            return
        self.gpu.stop()
        self.cost.stop()
        self.chats.close()
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.bus.close()
        self.bus = None


@pytest.fixture
def make_stack(tmp_path):
    """`make_stack(endpoints, timings, **kwargs)` → a ControllerStack, closed after the test."""
    made: list[ControllerStack] = []

    def make(endpoints, timings, **kwargs) -> ControllerStack:
        made.append(ControllerStack(endpoints, tmp_path / f"stack-{len(made)}", timings, **kwargs))
        return made[-1]

    yield make
    for stack in made:
        stack.close()


# --- driving the real window ---------------------------------------------------------------------------------------
KEYSYMS = {" ": "space", "\n": "Return", "?": "question", "!": "exclam", ".": "period", ",": "comma",
           "-": "minus", "'": "apostrophe", ":": "colon", "/": "slash", "*": "asterisk", "`": "grave",
           "#": "numbersign", "_": "underscore", "[": "bracketleft", "]": "bracketright", "(": "parenleft",
           ")": "parenright", "|": "bar", "~": "asciitilde", "=": "equal", "&": "ampersand", "@": "at",
           "<": "less", ">": "greater", "\"": "quotedbl", "+": "plus", "%": "percent", "$": "dollar",
           "{": "braceleft", "}": "braceright", ";": "semicolon", "\\": "backslash", "^": "asciicircum"}


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

    def send(self, text: str) -> str:
        """Type a prompt, Ctrl+Enter; the request id."""
        self.type(self.window.prompt.prompt_box, text)
        self.send_with_ctrl_enter()
        return self.last_request_id()

    def ended(self, rid: str) -> bool:
        return any(data.get("request_id") == rid for topic, data in self.recorder.messages
                   if topic in ("job.done", "job.failed"))

    def ask(self, text: str, timeout: float = 30.0) -> str:
        """Type a prompt, Ctrl+Enter, wait for its answer (done or failed) and, when there is one, its Markdown
        rendering (parsed on a worker thread); the request id."""
        rid = self.send(text)
        self.until(lambda: self.ended(rid), timeout, f"the answer to {text!r}")
        self.until(lambda: self.rendered_or_none(rid), timeout, f"the rendering of the answer to {text!r}")
        self.update()
        return rid

    def rendered_or_none(self, rid: str) -> bool:
        done = [data for data in self.recorder.of("job.done") if data["request_id"] == rid]
        return not done or not done[-1]["text"] or rid in self.window.output.rendered

    def close(self) -> None:
        import gc

        self.app.close()
        self.top.destroy()
        self.root.update()
        gc.collect()  # collect Tk variables here, on the Tk thread, not later in some worker thread


@pytest.fixture
def gui(root, home):
    """`gui(**app_kwargs)` → a GuiDriver (env {} unless given), closed after the test; Tk callbacks must not raise."""
    drivers: list[GuiDriver] = []

    def make(**kwargs) -> GuiDriver:
        kwargs.setdefault("env", {})
        drivers.append(GuiDriver(root, **kwargs))
        return drivers[-1]

    yield make
    for driver in drivers:
        if not driver.app._closed:
            driver.close()
    drivers.clear()
    import gc

    gc.collect()  # the test's windows are unreferenced now: collect their Tk variables here, on the Tk thread
    assert root.errors == [], f"Tk callbacks raised: {root.errors}"
