"""The GPU status line and Stop GPU: /ping polled on a worker thread, faster while booting and after a stop.

State lives in `app.models.gpu.GpuModel` (Tk thread). gpu.state is republished on clock ticks only when its text
changes (the boot progress and the idle countdown move every second).
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import Executor
from typing import Callable

from app.bus import Bus, Outbox
from app.controllers.poller import Poller
from app.models.exchange import ExchangeLedger
from app.models.gpu import STARTING, STOPPED, GpuModel
from app.models.settings import BACKEND_AWS
from app.services.tlfif_session import NotSignedIn, TlfifSession
from app.timings import Timings

log = logging.getLogger("tlfif.app.gpu")


class GpuController:
    def __init__(self, bus: Bus, outbox: Outbox, session: TlfifSession, model: GpuModel, executor: Executor,
                 timings: Timings, exchanges: ExchangeLedger, *, clock: Callable[[], float] = time.monotonic):
        self._bus = bus
        self._outbox = outbox
        self._session = session
        self.model = model
        self._executor = executor
        self._timings = timings
        self._exchanges = exchanges
        self._clock = clock
        self._fast_until = 0.0
        self._last_published: tuple | None = None
        self.poller = Poller("ping", self._poll, timings.ping_interval_s)
        bus.subscribe_table({
            "ui.stop_gpu": self.on_stop_gpu,
            "job.queued": self.on_job_queued,
            "job.done": self.on_job_done,
            "job.cancelled": self.on_job_cancelled,
            "clock.tick": self.on_tick,
        })

    def start(self) -> None:
        self.poller.start()
        self.publish(force=True)

    def stop(self) -> None:
        self.poller.stop()

    # --- worker side ------------------------------------------------------------------------------------------------
    def _poll(self) -> None:
        try:
            doc = self._session.ping(interactive=False)
        except NotSignedIn:
            return  # the hosted login waits for the user's first prompt
        except Exception as err:
            self._outbox.call(self._polled, gpu="", queue_depth=-1, error=self._session.error_message(err))
            return
        depth, eta = doc.get("queue_depth"), doc.get("eta")
        self._outbox.call(self._polled, gpu=str(doc.get("gpu") or ""),
                          queue_depth=int(depth) if isinstance(depth, int) else -1, error="",
                          eta_s=float(eta) if isinstance(eta, (int, float)) and not isinstance(eta, bool) and eta > 0
                          else None)

    def _send_stop(self) -> None:
        try:
            self._session.stop_gpu()
        except Exception as err:
            self._outbox.call(self._stop_answered, error=self._session.error_message(err))
            return
        self._outbox.call(self._stop_answered, error="")

    # --- Tk side ----------------------------------------------------------------------------------------------------
    def on_stop_gpu(self) -> None:
        log.info("[aws] Stop GPU requested")
        self.model.apply_stop_requested(self._clock())
        self.publish(force=True)
        self._executor.submit(self._send_stop)

    def _stop_answered(self, error: str) -> None:
        """POST /stop answered (or failed)."""
        if error:
            self.model.error = error
            self.model.stop_requested_at = None
            log.warning("%s", error)
            self._bus.send("gpu.state", state=self.model.state, text=f"Stop failed: {error}", progress=-1.0,
                           idle_left_s=-1.0)
            self._last_published = None
            return
        self._fast_until = self._clock() + self._timings.ping_after_stop_window_s
        self._adjust_interval(now=True)

    def _polled(self, gpu: str, queue_depth: int, error: str, eta_s: float | None = None) -> None:
        """GET /ping answered: the GPU state and the cold-start ETA it gave (or why it failed)."""
        if error:
            self.model.error = error
        else:
            self.model.error = ""
            self.model.apply_ping(gpu, self._clock(), eta_s)
        self._adjust_interval()
        self.publish()

    def on_job_queued(self, request_id: str, backend: str, status: str, eta_s: float, job_id: str) -> None:
        if backend == BACKEND_AWS and self.model.apply_infer(status, eta_s, self._clock()):
            self._adjust_interval(now=False)
            self.publish()

    def on_job_done(self, request_id: str, backend: str, text: str, model: str, stats: dict) -> None:
        self._job_ended(request_id, backend)

    def on_job_cancelled(self, request_id: str, backend: str, text: str, model: str, stats: dict) -> None:
        """A job stopped on the GPU (the watcher reported its GPU time) restarts the idle timer as an answer does;
        one stopped before it reached the GPU (still booting, or never accepted) changes nothing."""
        if stats.get("gpu_ms"):
            self._job_ended(request_id, backend)

    def _job_ended(self, request_id: str, backend: str) -> None:
        exchange = self._exchanges.get(request_id)
        if backend == BACKEND_AWS and exchange is not None:
            self.model.apply_job_end(exchange.idle, self._clock())
            self._adjust_interval()
            self.publish()

    def on_tick(self, now: float) -> None:
        self.publish()

    def publish(self, *, force: bool = False) -> None:
        now = self._clock()
        progress = self.model.progress(now)
        idle_left = self.model.idle_left_s(now)
        text = self.model.text(now)
        key = (self.model.state, text, round(progress, 2))
        if not force and key == self._last_published:
            return
        self._last_published = key
        self._bus.send("gpu.state", state=self.model.state, text=text, progress=progress, idle_left_s=idle_left)

    def _adjust_interval(self, *, now: bool = False) -> None:
        t = self._timings
        if self._clock() < self._fast_until and self.model.state != STOPPED:
            interval = t.ping_after_stop_s
        elif self.model.state == STARTING:
            interval = t.ping_starting_s
        else:
            interval = t.ping_interval_s
        self.poller.set_interval(interval, now=now)
