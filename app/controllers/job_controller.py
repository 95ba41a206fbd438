"""Prompts: ui.send → a backend on a worker thread → job.* outcomes (through the outbox and the pump).

The controller owns every exchange's state: the worker hands the reply back (`Outbox.call`), and the controller
writes it into the exchange before it publishes job.done / job.cancelled / job.failed, so every listener of those
reads the exchange complete.

One request at a time (no double submission): a prompt sent while an answer is coming waits (job.waiting, up to
MAX_WAITING, each can be withdrawn with ui.cancel) and is submitted when that answer ends, with the context as it
is then (the answer it waited for included). The prompt rule lives in `app.models.prompt`. When a backend needs an
API key first, the controller asks for it (auth.key_needed) and sends the held prompt once the key arrives.
Regenerate (ui.regenerate) sends the last prompt of the branch shown again, as an alternative of it.
"""
from __future__ import annotations

import logging
import time
import uuid
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Callable

from tlfif_common import api, names, prices

from app.bus import Bus, Outbox
from app.backends.base import Backend, Cancelled, PromptRequest, Reply
from app.controllers.settings_controller import SettingsStore
from app.models.answer_stats import BackendFigures, Pricing, Timeline, answer_stats
from app.models.chat import ChatContext
from app.models.exchange import DONE, FAILED, PENDING, STOPPED, Exchange, ExchangeLedger
from app.models.prompt import check_prompt
from app.timings import Timings

log = logging.getLogger("tlfif.app.jobs")

MAX_WAITING = 5  # prompts typed ahead of an answer: a few follow-ups, not a batch queue
QUEUE_FULL_HINT = f"{MAX_WAITING} prompts are already waiting; send this one when the answer ends."
REGENERATE_BUSY_HINT = "An answer is still coming: regenerate once it ends (or stop it)."


@dataclass(frozen=True)
class Waiting:
    """A prompt sent while an answer was coming."""
    request_id: str
    text: str
    branch_of: str


class _JobEvents:
    """JobEvents for one request: posts job.* to the outbox (worker thread), progress at most every N ms, and
    notes when the GPU was starting and when the first token came (for the stats under the answer)."""

    def __init__(self, outbox: Outbox, request_id: str, backend: str, min_interval_s: float, started: float):
        self._outbox = outbox
        self._rid = request_id
        self._backend = backend
        self._min_interval = min_interval_s
        self._last_progress = 0.0
        self.started = started
        self.starting_at: float | None = None
        self.first_token_at: float | None = None

    def timeline(self, ended: float) -> Timeline:
        return Timeline(sent=self.started, ended=ended, starting=self.starting_at, first_token=self.first_token_at)

    def queued(self, status: str, eta_s: float, job_id: str) -> None:
        if status == api.INFER_STARTING and self.starting_at is None:
            self.starting_at = time.monotonic()
        self._outbox.post("job.queued", request_id=self._rid, backend=self._backend, status=status,
                          eta_s=float(eta_s), job_id=job_id)

    def retrying(self, message: str, attempt: int, delay_s: float) -> None:
        self._outbox.post("job.retrying", request_id=self._rid, backend=self._backend, message=message,
                          attempt=attempt, delay_s=float(delay_s))

    def progress(self, text: str, tokens: int) -> None:
        now = time.monotonic()
        if text and self.first_token_at is None:
            self.first_token_at = now
        if now - self._last_progress < self._min_interval:
            return  # the final text comes with job.done
        self._last_progress = now
        self._outbox.post("job.progress", request_id=self._rid, backend=self._backend, text=text, tokens=tokens)


class JobController:
    def __init__(self, bus: Bus, outbox: Outbox, backends: dict[str, Backend], store: SettingsStore,
                 exchanges: ExchangeLedger, executor: Executor, timings: Timings,
                 context: Callable[..., ChatContext], regenerate_target: Callable[[], tuple[str, str]]):
        self._bus = bus
        self._outbox = outbox
        self.backends = backends
        self._store = store
        self.exchanges = exchanges
        self._executor = executor
        self._timings = timings
        self._context = context  # the current chat's history and settings for a prompt (chat controller)
        self._regenerate_target = regenerate_target  # (prompt, request id) of the last exchange shown
        self._awaiting_key: tuple[Waiting, str] | None = None  # a prompt held for a backend's key (its key)
        self.waiting: list[Waiting] = []  # sent while an answer was coming, oldest first
        self._cancelling: set[str] = set()
        self._gpu_hourly_eur: float | None = None  # the deployed GPU's price, from GET /cost
        bus.subscribe_table({
            "ui.send": self.on_send,
            "ui.regenerate": self.on_regenerate,
            "ui.cancel": self.on_cancel,
            "ui.api_key_entered": self.on_api_key_entered,
            "ui.api_key_cancelled": self.on_api_key_cancelled,
            "cost.updated": self.on_cost,
        })

    @property
    def busy(self) -> bool:
        return self.exchanges.in_flight() is not None or self._awaiting_key is not None

    def current_backend(self) -> Backend:
        return self.backends.get(self._store.current.backend) or next(iter(self.backends.values()))

    # --- intents ----------------------------------------------------------------------------------------------------
    def on_send(self, prompt: str, branch_of: str = "") -> None:
        request_id = uuid.uuid4().hex
        try:
            text = check_prompt(prompt)
        except ValueError as err:
            self._bus.send("job.rejected", request_id=request_id, message=str(err))
            return
        if self.busy:
            if len(self.waiting) >= MAX_WAITING:
                self._bus.send("job.rejected", request_id=request_id, message=QUEUE_FULL_HINT)
                return
            self.waiting.append(Waiting(request_id, text, branch_of))
            log.info("[app] prompt %s waits for the answer in flight (%d waiting)", request_id, len(self.waiting))
            self._bus.send("job.waiting", request_id=request_id, prompt=text, position=len(self.waiting))
            return
        self._start(request_id, text, branch_of)

    def on_regenerate(self) -> None:
        request_id = uuid.uuid4().hex
        if self.busy:
            self._bus.send("job.rejected", request_id=request_id, message=REGENERATE_BUSY_HINT)
            return
        try:
            prompt, branch_of = self._regenerate_target()
        except LookupError as err:
            self._bus.send("job.rejected", request_id=request_id, message=str(err.args[0]))
            return
        self._start(request_id, prompt, branch_of)

    def _start(self, request_id: str, text: str, branch_of: str) -> None:
        backend = self.current_backend()
        if backend.needs_key():
            self._awaiting_key = (Waiting(request_id, text, branch_of), backend.key)
            self._bus.send("auth.key_needed", backend=backend.key, backend_label=backend.label)
            return
        self._submit(request_id, text, backend, branch_of)

    def _next(self) -> None:
        """An answer ended (or a key prompt was dismissed): submit the prompt that waited longest."""
        if self.waiting and not self.busy:
            first = self.waiting.pop(0)
            self._start(first.request_id, first.text, first.branch_of)

    def on_api_key_entered(self, backend: str, key: str) -> None:
        target = self.backends.get(backend)
        if target is not None:
            target.set_key(key)
        pending, self._awaiting_key = self._awaiting_key, None
        if pending and pending[1] == backend:
            held = pending[0]
            if target.needs_key():  # the pending prompt's backend is one of ours
                self._bus.send("job.rejected", request_id=held.request_id,
                               message=f"{target.tag} no API key given; nothing was sent")
                self._next()
                return
            self._submit(held.request_id, held.text, target, held.branch_of)

    def on_api_key_cancelled(self, backend: str) -> None:
        pending, self._awaiting_key = self._awaiting_key, None
        if pending:
            target = self.backends.get(backend)
            tag = target.tag if target is not None else f"[{backend}]"
            self._bus.send("job.rejected", request_id=pending[0].request_id,
                           message=f"{tag} no API key given; nothing was sent")
            self._next()

    def on_cancel(self, request_id: str) -> None:
        """Stop generating: the backend's cancel runs on a worker thread (it calls the API); the request's own
        worker then ends it with job.cancelled (the text so far) or job.done (it finished first). A prompt that
        still waits is withdrawn: it was never sent."""
        held = next((w for w in self.waiting if w.request_id == request_id), None)
        if held is not None:
            self.waiting.remove(held)
            self._bus.send("job.withdrawn", request_id=request_id)
            return
        exchange = self.exchanges.get(request_id)
        if exchange is None or exchange.status != PENDING or request_id in self._cancelling:
            return
        self._cancelling.add(request_id)
        backend = self.backends[exchange.backend]
        log.info("%s stop generating requested", backend.tag)
        self._executor.submit(self._cancel, backend, request_id)

    # --- outcomes (handed back by the worker, on the Tk thread) -------------------------------------------------------
    def _answered(self, request_id: str, backend: str, reply: Reply, stats: dict) -> None:
        """The reply came (complete, or stopped by the user): into the exchange, then job.done / job.cancelled."""
        self._cancelling.discard(request_id)
        exchange = self.exchanges.get(request_id)
        if exchange is not None:
            exchange.text, exchange.tokens, exchange.model = reply.text, reply.tokens, reply.model
            exchange.latency_ms, exchange.stats = stats.get("latency_ms"), stats
            exchange.status = STOPPED if reply.stopped else DONE
            exchange.finished_at = time.time()
        if reply.turns_dropped:  # the server trimmed the history with the model's own tokenizer
            self._bus.send("chat.notice", message=f"{reply.turns_dropped} earlier exchange(s) left out of the "
                                                  "context: they did not fit the model's context window.")
        self._bus.send("job.cancelled" if reply.stopped else "job.done", request_id=request_id, backend=backend,
                       text=reply.text, model=reply.model, stats=stats)
        self._next()

    def _failed(self, request_id: str, backend: str, message: str) -> None:
        self._cancelling.discard(request_id)
        exchange = self.exchanges.get(request_id)
        if exchange is not None:
            exchange.status, exchange.error = FAILED, message
            exchange.finished_at = time.time()
        self._bus.send("job.failed", request_id=request_id, backend=backend, message=message)
        self._next()

    def on_cost(self, text: str, data) -> None:
        hourly = data.get("gpu_hourly_eur") if isinstance(data, dict) else None
        if isinstance(hourly, (int, float)) and not isinstance(hourly, bool) and hourly >= 0:
            self._gpu_hourly_eur = float(hourly)

    # --- work -------------------------------------------------------------------------------------------------------
    def _submit(self, request_id: str, text: str, backend: Backend, branch_of: str = "") -> None:
        idle = self._store.current.idle
        try:
            context = self._context(text, branch_of=branch_of)
        except LookupError as err:  # the prompt it was to replace is gone (another chat is open)
            self._bus.send("job.rejected", request_id=request_id, message=str(err.args[0]))
            self._next()
            return
        exchange = self.exchanges.add(Exchange(request_id=request_id, backend=backend.key,
                                               backend_label=backend.label, prompt=text, started_at=time.time(),
                                               idle=idle, chat_id=context.chat_id, parent_id=context.parent_id))
        self._bus.send("job.submitted", request_id=request_id, backend=backend.key, backend_label=backend.label,
                       prompt=text, started_at=exchange.started_at)
        request = PromptRequest(request_id=request_id, prompt=text, idle=idle, messages=context.messages,
                                params=context.params)
        self._executor.submit(self._run, backend, request, time.monotonic())

    def _cancel(self, backend: Backend, request_id: str) -> None:
        """Worker thread: tell the backend to stop (AWS: POST /cancel/{id}; OpenAI: hang up the stream)."""
        try:
            backend.cancel(request_id)
        except Exception:
            log.exception("%s cancel failed", backend.tag)

    def pricing(self) -> Pricing:
        """The prices answers are costed with, from THE price table (tlfif_common.prices); any missing → None."""
        try:
            table = prices.load()
        except Exception:
            log.exception("[app] the price table cannot be read; answers show no cost")
            return Pricing()
        try:
            rate = prices.usd_to_eur(table=table)
        except ValueError as err:
            log.warning("[app] %s; euro figures left out", err)
            rate = None
        hourly = self._gpu_hourly_eur
        if hourly is None and rate is not None:
            region = self._store.current.aws.region or names.DEFAULT_REGION
            try:
                hourly = table.ec2_hourly_usd(names.DEFAULT_GPU_INSTANCE_TYPE, region) * rate
            except LookupError as err:
                log.info("[aws] no GPU price: %s", err)
        return Pricing(gpu_hourly_eur=hourly, usd_to_eur=rate, token_table=table)

    def _run(self, backend: Backend, request: PromptRequest, started: float) -> None:
        """Worker thread: the whole request, reported through the outbox."""
        events = _JobEvents(self._outbox, request.request_id, backend.key, self._timings.progress_min_interval_s,
                            started)
        try:
            reply = backend.run(request, events)
        except Cancelled:  # stopped before the backend accepted the prompt: nothing ran, nothing was billed
            reply = Reply(text="", stopped=True, generation_ms=0)
        except BaseException as err:  # every failure ends the exchange: the app stays usable
            try:
                message = backend.error_message(err)
            except Exception:
                message = f"{backend.tag} {err.__class__.__name__}"
            log.warning("%s", message)
            self._outbox.call(self._failed, request_id=request.request_id, backend=backend.key, message=message)
            if not isinstance(err, Exception):
                raise
            return
        ended = time.monotonic()
        figures = BackendFigures(tokens=reply.tokens, ttft_ms=reply.ttft_ms, generation_ms=reply.generation_ms,
                                 model=reply.model, prompt_tokens=reply.prompt_tokens,
                                 cached_tokens=reply.cached_tokens)
        stats = answer_stats(backend.key, events.timeline(ended), figures, self.pricing(), stopped=reply.stopped,
                             local=reply.local)
        log.info("%s %s after %d ms (%d tokens)", backend.tag, "stopped by the user" if reply.stopped else "answered",
                 stats["latency_ms"], reply.tokens)
        self._outbox.call(self._answered, request_id=request.request_id, backend=backend.key, reply=reply,
                          stats=stats)
