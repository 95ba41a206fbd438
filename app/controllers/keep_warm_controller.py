"""Keep-warm: the toggle → POST /keepwarm on a worker thread → the toggle and
the status line ("GPU ready · kept warm until 14:30" instead of the idle countdown).

- On: asks the API to hold the GPU's idle timer for at most `[app] keep_warm_max_minutes` (default 120); the API
  answers the end time, after which the watcher stops the GPU whatever the idle setting says.
- Off: the watcher's idle timer (and the app's countdown) counts the latest job's idle minutes from now.
- Stop GPU switches it off (the router's /stop clears it too); so does picking the OpenAI backend (the GPU is then not
  in use: keeping it warm would only cost money), and so does reaching the end time.
- One request at a time: a toggle while one is in flight is remembered and sent after it, so the API ends up in the
  state the user left the toggle in.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import Executor
from typing import Callable

from app.bus import Bus, Outbox
from app.controllers.gpu_controller import GpuController
from app.models.gpu import GpuModel, format_clock
from app.models.settings import BACKEND_AWS, Settings
from app.services.tlfif_api import ApiError
from app.services.tlfif_session import TAG, TlfifSession

log = logging.getLogger("tlfif.app.keepwarm")

ENDED_MESSAGE = "Keep warm ended: its maximum lifetime is over, the GPU stops"
OFF_FOR_OPENAI = "Keep warm is off: the OpenAI backend does not use the GPU"


class KeepWarmController:
    def __init__(self, bus: Bus, outbox: Outbox, session: TlfifSession, model: GpuModel, gpu: GpuController,
                 executor: Executor, settings: Callable[[], Settings], *,
                 clock: Callable[[], float] = time.monotonic, wall_clock: Callable[[], float] = time.time):
        self._bus = bus
        self._outbox = outbox
        self._session = session
        self.model = model
        self._gpu = gpu
        self._executor = executor
        self._settings = settings
        self._clock = clock
        self._wall = wall_clock
        self.in_flight: bool | None = None  # the state being sent, None when nothing is in flight
        self._wanted: bool | None = None    # a toggle made while a request was in flight
        bus.subscribe_table({
            "ui.keep_warm": self.on_toggle,
            "ui.stop_gpu": self.on_stop_gpu,
            "settings.saved": self.on_settings_saved,
            "clock.tick": self.on_tick,
        })

    @property
    def on(self) -> bool:
        return self.model.keep_warm_until_ms is not None

    # --- worker side ------------------------------------------------------------------------------------------------
    def _send(self, on: bool, max_minutes: int) -> None:
        try:
            until = self._session.keep_warm(on, max_minutes)
        except Exception as err:
            self._outbox.call(self._sent, on=on, until_ms=0, error=self._describe(err))
            return
        self._outbox.call(self._sent, on=on, until_ms=int(until or 0), error="")

    def _describe(self, err: BaseException) -> str:
        if isinstance(err, ApiError) and err.status:
            return f"{TAG} keep warm failed: HTTP {err.status}: {err}"
        return f"Keep warm failed: {self._session.error_message(err)}"

    # --- Tk side ----------------------------------------------------------------------------------------------------
    def on_toggle(self, on: bool) -> None:
        on = bool(on)
        if self._settings().backend != BACKEND_AWS:
            self._publish(OFF_FOR_OPENAI)
            return
        if self.in_flight is not None:
            self._wanted = on
            return
        self._start(on)

    def _start(self, on: bool) -> None:
        self.in_flight = on
        self._wanted = None
        max_minutes = self._settings().keep_warm_max_minutes
        log.info("[aws] keep warm %s%s", "on" if on else "off", f" for at most {max_minutes} min" if on else "")
        self._executor.submit(self._send, on, max_minutes)

    def _sent(self, on: bool, until_ms: int, error: str) -> None:
        """POST /keepwarm answered: `until_ms` is the end of the maximum lifetime (0 when off or failed)."""
        self.in_flight = None
        if error:
            log.warning("%s", error)
            self._publish(error)
        else:
            self.model.apply_keep_warm(until_ms if on else None, self._clock())
            if on:
                log.info("[aws] kept warm until %s", format_clock(until_ms))
            self._publish("")
            self._gpu.publish(force=True)
        wanted, self._wanted = self._wanted, None
        if wanted is not None and wanted != self.on:
            self._start(wanted)

    def on_stop_gpu(self) -> None:
        self._wanted = None
        if self.on:
            self.model.apply_keep_warm(None, self._clock())
            self._publish("")

    def on_settings_saved(self, idle, backend, bridge) -> None:
        if backend != BACKEND_AWS and (self.on or self.in_flight):
            self._wanted = None
            if self.in_flight is None:
                self._start(False)
            else:
                self._wanted = False
            self._publish(OFF_FOR_OPENAI)

    def on_tick(self, now: float) -> None:
        if self.model.keep_warm_over(self._wall()):
            log.info("[aws] keep warm reached its maximum lifetime")
            self.model.apply_keep_warm(None, self._clock())
            self._publish(ENDED_MESSAGE)
            self._gpu.publish(force=True)

    def _publish(self, message: str) -> None:
        until = self.model.keep_warm_until_ms
        self._bus.send("gpu.keep_warm", on=until is not None, until_ms=int(until or 0), message=message)
