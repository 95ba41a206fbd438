"""A periodic call on a worker thread of its own: interval changeable, pausable, wakeable, stoppable.

The GPU controller polls /ping with it, the cost controller /cost. The call runs off the Tk thread; it reports
through the outbox. Nothing here touches Tk.
"""
from __future__ import annotations

import logging
import threading
from typing import Callable

log = logging.getLogger("tlfif.app.poller")


class Poller:
    def __init__(self, name: str, call: Callable[[], None], interval_s: float, *, first_delay_s: float = 0.0):
        self.name = name
        self._call = call
        self._interval = interval_s
        self._first_delay = first_delay_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._paused = False
        self._lock = threading.Lock()
        self.calls = 0
        self._thread = threading.Thread(target=self._loop, name=f"poller-{name}", daemon=True)

    @property
    def interval_s(self) -> float:
        return self._interval

    @property
    def paused(self) -> bool:
        return self._paused

    def start(self) -> Poller:
        self._thread.start()
        return self

    def set_interval(self, interval_s: float, *, now: bool = False) -> None:
        with self._lock:
            changed = interval_s != self._interval
            self._interval = interval_s
        if changed or now:
            self._wake.set()

    def poll_now(self) -> None:
        self._wake.set()

    def pause(self) -> None:
        self._paused = True

    def resume(self, *, now: bool = True) -> None:
        was = self._paused
        self._paused = False
        if was and now:
            self._wake.set()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _loop(self) -> None:
        if self._first_delay and self._wait(self._first_delay):
            return
        while not self._stop.is_set():
            if not self._paused:
                try:
                    self.calls += 1
                    self._call()
                except Exception:
                    log.exception("[%s] poll failed", self.name)
            if self._wait(self._interval):
                return

    def _wait(self, seconds: float) -> bool:
        """Sleep up to `seconds` (woken early by set_interval/poll_now/resume); True when stopping."""
        self._wake.wait(seconds)
        self._wake.clear()
        return self._stop.is_set()
