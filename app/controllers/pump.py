"""The one `after()` loop on the Tk thread: delivers what worker threads queued (topics to publish, results to hand
back to their controller), a bounded batch per tick.

Like Thonny's workbench: at most `batch` messages every `interval_ms`, so the screen keeps updating however fast
workers produce. It also publishes `clock.tick` every `tick_ms` for countdowns and spinners. The after id is kept
and cancelled on stop, so no callback fires into a destroyed window.
"""
from __future__ import annotations

import time

from app.bus import Bus, Outbox


class Pump:
    def __init__(self, widget, bus: Bus, outbox: Outbox, *, interval_ms: int = 20, batch: int = 10,
                 tick_ms: int = 250):
        self._widget = widget
        self._bus = bus
        self._outbox = outbox
        self.interval_ms = interval_ms
        self.batch = batch
        self.tick_ms = tick_ms
        self._after_id: str | None = None
        self._last_tick = 0.0
        self.published = 0

    @property
    def running(self) -> bool:
        return self._after_id is not None

    def start(self) -> None:
        if self._after_id is None:
            self._after_id = self._widget.after(self.interval_ms, self._run)

    def stop(self) -> None:
        if self._after_id is not None:
            try:
                self._widget.after_cancel(self._after_id)
            except Exception:  # the interpreter is already gone
                pass
            self._after_id = None

    def _run(self) -> None:
        # Re-arm first: a listener that raises (reported by Tk) must not stop the pump.
        self._after_id = self._widget.after(self.interval_ms, self._run)
        now = time.monotonic()
        if now - self._last_tick >= self.tick_ms / 1000:
            self._last_tick = now
            self._bus.send("clock.tick", now=now)
        self.published += self._outbox.drain(self._bus, self.batch)
