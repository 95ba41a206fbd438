"""Prompts: ui.send → a backend on a worker thread → job.* outcomes (through the outbox and the pump).

One request at a time (no double submission). The prompt rule lives in `app.models.prompt`. When a backend needs an
API key first, the controller asks for it (auth.key_needed) and sends the held prompt once the key arrives.
"""
from __future__ import annotations

import logging
import time
import uuid
from concurrent.futures import Executor

from app.bus import Bus, Outbox
from app.controllers.backend_base import BackendClient, PromptRequest, Timings
from app.controllers.settings_controller import SettingsStore
from app.models.conversation import DONE, FAILED, Conversation, Exchange
from app.models.prompt import BUSY_HINT, check_prompt

log = logging.getLogger("tlfif.app.jobs")


class _JobEvents:
    """JobEvents for one request: posts job.* to the outbox (worker thread), progress at most every N ms."""

    def __init__(self, outbox: Outbox, request_id: str, backend: str, min_interval_s: float):
        self._outbox = outbox
        self._rid = request_id
        self._backend = backend
        self._min_interval = min_interval_s
        self._last_progress = 0.0

    def queued(self, status: str, eta_s: float, job_id: str) -> None:
        self._outbox.post("job.queued", request_id=self._rid, backend=self._backend, status=status,
                          eta_s=float(eta_s), job_id=job_id)

    def retrying(self, message: str, attempt: int, delay_s: float) -> None:
        self._outbox.post("job.retrying", request_id=self._rid, backend=self._backend, message=message,
                          attempt=attempt, delay_s=float(delay_s))

    def progress(self, text: str, tokens: int) -> None:
        now = time.monotonic()
        if now - self._last_progress < self._min_interval:
            return  # the final text comes with job.done
        self._last_progress = now
        self._outbox.post("job.progress", request_id=self._rid, backend=self._backend, text=text, tokens=tokens)


class JobController:
    def __init__(self, bus: Bus, outbox: Outbox, backends: dict[str, BackendClient], store: SettingsStore,
                 conversation: Conversation, executor: Executor, timings: Timings):
        self._bus = bus
        self._outbox = outbox
        self.backends = backends
        self._store = store
        self.conversation = conversation
        self._executor = executor
        self._timings = timings
        self._awaiting_key: tuple[str, str, str] | None = None  # (request_id, prompt, backend key)
        bus.subscribe_table({
            "ui.send": self.on_send,
            "ui.cancel": self.on_cancel,
            "ui.api_key_entered": self.on_api_key_entered,
            "ui.api_key_cancelled": self.on_api_key_cancelled,
            "job.done": self.on_done,
            "job.failed": self.on_failed,
        })

    @property
    def busy(self) -> bool:
        return self.conversation.in_flight() is not None or self._awaiting_key is not None

    def current_backend(self) -> BackendClient:
        return self.backends.get(self._store.current.backend) or next(iter(self.backends.values()))

    # --- intents ----------------------------------------------------------------------------------------------------
    def on_send(self, prompt: str) -> None:
        request_id = uuid.uuid4().hex
        try:
            text = check_prompt(prompt)
        except ValueError as err:
            self._bus.send("job.rejected", request_id=request_id, message=str(err))
            return
        if self.busy:
            self._bus.send("job.rejected", request_id=request_id, message=BUSY_HINT)
            return
        backend = self.current_backend()
        needs_key = getattr(backend, "needs_key", None)
        if needs_key is not None and needs_key():
            self._awaiting_key = (request_id, text, backend.key)
            self._bus.send("auth.key_needed", backend=backend.key, backend_label=backend.label)
            return
        self._submit(request_id, text, backend)

    def on_api_key_entered(self, backend: str, key: str) -> None:
        target = self.backends.get(backend)
        if target is not None and hasattr(target, "set_key"):
            target.set_key(key)
        pending, self._awaiting_key = self._awaiting_key, None
        if pending and pending[2] == backend:
            request_id, text, _ = pending
            if target is not None and getattr(target, "needs_key", lambda: False)():
                self._bus.send("job.rejected", request_id=request_id,
                               message=f"{target.tag} no API key given; nothing was sent")
                return
            self._submit(request_id, text, target)

    def on_api_key_cancelled(self, backend: str) -> None:
        pending, self._awaiting_key = self._awaiting_key, None
        if pending:
            target = self.backends.get(backend)
            tag = target.tag if target is not None else f"[{backend}]"
            self._bus.send("job.rejected", request_id=pending[0], message=f"{tag} no API key given; nothing was sent")

    def on_cancel(self, request_id: str) -> None:
        exchange = self.conversation.get(request_id)
        if exchange is not None and exchange.status not in (DONE, FAILED):
            self.backends[exchange.backend].cancel(request_id)

    # --- outcomes ---------------------------------------------------------------------------------------------------
    def on_done(self, request_id: str, backend: str, text: str, tokens: int, latency_ms: int, model: str) -> None:
        exchange = self.conversation.get(request_id)
        if exchange is not None:
            exchange.text, exchange.tokens, exchange.latency_ms, exchange.model = text, tokens, latency_ms, model
            exchange.status = DONE

    def on_failed(self, request_id: str, backend: str, message: str) -> None:
        exchange = self.conversation.get(request_id)
        if exchange is not None:
            exchange.status, exchange.error = FAILED, message

    # --- work -------------------------------------------------------------------------------------------------------
    def _submit(self, request_id: str, text: str, backend: BackendClient) -> None:
        idle = self._store.current.idle
        exchange = self.conversation.add(Exchange(request_id=request_id, backend=backend.key,
                                                  backend_label=backend.label, prompt=text, started_at=time.time(),
                                                  idle=idle))
        self._bus.send("job.submitted", request_id=request_id, backend=backend.key, backend_label=backend.label,
                       prompt=text, started_at=exchange.started_at)
        request = PromptRequest(request_id=request_id, prompt=text, idle=idle)
        self._executor.submit(self._run, backend, request, time.monotonic())

    def _run(self, backend: BackendClient, request: PromptRequest, started: float) -> None:
        """Worker thread: the whole request, reported through the outbox."""
        events = _JobEvents(self._outbox, request.request_id, backend.key, self._timings.progress_min_interval_s)
        try:
            submission = backend.send_prompt(request, events)
            reply = backend.get_response(submission, events)
        except BaseException as err:  # every failure ends the exchange: the app stays usable
            try:
                message = backend.handle_errors(err)
            except Exception:
                message = f"{backend.tag} {err.__class__.__name__}"
            log.warning("%s", message)
            self._outbox.post("job.failed", request_id=request.request_id, backend=backend.key, message=message)
            if not isinstance(err, Exception):
                raise
            return
        latency_ms = int((time.monotonic() - started) * 1000)
        log.info("%s answered in %d ms (%d tokens)", backend.tag, latency_ms, reply.tokens)
        self._outbox.post("job.done", request_id=request.request_id, backend=backend.key, text=reply.text,
                          tokens=reply.tokens, latency_ms=latency_ms, model=reply.model)
