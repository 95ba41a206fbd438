"""The cold-start bridge: when `/infer` says the GPU is starting, the same prompt (with the chat's context) also goes
to the bridge the user chose ([app] bridge: OpenAI, or a local OpenAI-compatible server) and its answer is shown at
once (bridge.answered). The TinyLlama request is untouched: the bridge runs on its own worker, and its failure is
only a bridge.failed. Nothing is sent anywhere when the setting is `nothing` or the GPU is already up."""
from __future__ import annotations

import logging
import time
from concurrent.futures import Executor
from dataclasses import replace
from typing import Callable

from tlfif_common import api

from app.backends.base import Backend, BackendContext, PromptRequest
from app.backends.openai import OpenAiApiClient
from app.bus import Bus, Outbox
from app.controllers.settings_controller import SettingsStore
from app.models.answer_stats import BackendFigures, Pricing, Timeline, answer_stats, cost_text
from app.models.chat import ChatContext
from app.models.exchange import ExchangeLedger
from app.models.settings import BRIDGE_LOCAL, BRIDGE_NOTHING, BRIDGE_OPENAI

log = logging.getLogger("tlfif.app.bridge")

LOCAL_COST = "no charge (a model on this computer)"


class LocalModelClient(OpenAiApiClient):
    """A local OpenAI-compatible server ([app] bridge_url, bridge_model): it needs no key."""
    key = "local"
    label = "Local model"
    tag = "[local]"

    def __init__(self, store: SettingsStore, ctx: BackendContext):
        super().__init__(BackendContext(
            settings=lambda: replace(store.current, openai_base_url=store.current.bridge_url,
                                     openai_model=store.current.bridge_model or "local"),
            session=ctx.session, timings=ctx.timings, env={"OPENAI_API_KEY": "not-needed"}))


class _Quiet:
    """JobEvents of a bridge request: only the time of its first token matters."""

    def __init__(self) -> None:
        self.first_token_at: float | None = None

    def queued(self, status, eta_s, job_id) -> None:
        pass

    def retrying(self, message, attempt, delay_s) -> None:
        pass

    def progress(self, text, tokens) -> None:
        if text and self.first_token_at is None:
            self.first_token_at = time.monotonic()


class BridgeController:
    def __init__(self, bus: Bus, outbox: Outbox, store: SettingsStore, exchanges: ExchangeLedger,
                 executor: Executor, openai: Backend, local: Backend, pricing: Callable[[], Pricing],
                 context: Callable[..., ChatContext] | None = None):
        self._bus = bus
        self._outbox = outbox
        self._store = store
        self._exchanges = exchanges
        self._executor = executor
        self._backends = {BRIDGE_OPENAI: openai, BRIDGE_LOCAL: local}
        self._pricing = pricing
        self._context = context  # the chat's earlier turns and params, as the TinyLlama request got them
        self.bridged: dict[str, str] = {}  # TinyLlama request id → the bridge's own request id
        bus.subscribe_table({"job.queued": self.on_queued, "ui.cancel": self.on_cancel})

    def on_queued(self, request_id, backend, status, eta_s, job_id) -> None:
        choice = self._store.current.bridge
        if backend != "aws" or status != api.INFER_STARTING or choice == BRIDGE_NOTHING or request_id in self.bridged:
            return
        exchange = self._exchanges.get(request_id)
        target = self._backends.get(choice)
        if exchange is None or target is None:
            return
        label = self._label(choice)
        if target.needs_key():
            self._bus.send("bridge.failed", request_id=request_id, label=label,
                           message=f"{label} has no API key (set OPENAI_API_KEY, or pick OpenAI once to enter one)")
            return
        bridge_id = f"{request_id}-bridge"
        self.bridged[request_id] = bridge_id
        context = self._context(exchange.prompt, notify=False) if self._context else ChatContext()
        request = PromptRequest(request_id=bridge_id, prompt=exchange.prompt, idle=exchange.idle,
                                messages=context.messages, params=context.params)
        self._executor.submit(self._run, target, request, request_id, label, choice)

    def on_cancel(self, request_id) -> None:
        bridge_id = self.bridged.get(request_id)
        target = self._backends.get(self._store.current.bridge)
        if bridge_id and target is not None:
            self._executor.submit(target.cancel, bridge_id)

    def _label(self, choice: str) -> str:
        s = self._store.current
        if choice == BRIDGE_OPENAI:
            return f"OpenAI {s.openai_model}"
        return f"Local model {s.bridge_model}".strip()

    def _run(self, backend: Backend, request: PromptRequest, request_id: str, label: str, choice: str) -> None:
        """Worker thread: the bridge's whole request; any failure is reported, never raised into the TinyLlama one."""
        sent = time.monotonic()
        events = _Quiet()
        try:
            reply = backend.run(request, events)
        except Exception as err:
            try:
                message = backend.error_message(err)
            except Exception:
                message = f"{err.__class__.__name__}"
            log.warning("[bridge] %s", message)
            self._outbox.post("bridge.failed", request_id=request_id, label=label, message=message)
            return
        if choice == BRIDGE_LOCAL:
            cost = LOCAL_COST
        else:
            figures = BackendFigures(tokens=reply.tokens, ttft_ms=reply.ttft_ms, generation_ms=reply.generation_ms,
                                     model=reply.model, prompt_tokens=reply.prompt_tokens,
                                     cached_tokens=reply.cached_tokens)
            stats = answer_stats(backend.key, Timeline(sent=sent, ended=time.monotonic(), starting=None,
                                                       first_token=events.first_token_at),
                                 figures, self._pricing(), stopped=reply.stopped)
            cost = cost_text(stats)
        self._outbox.post("bridge.answered", request_id=request_id, label=label, text=reply.text, cost=cost)

