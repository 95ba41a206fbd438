"""Builds the app: bus, outbox and pump, models, services, controllers and views, wired explicitly.

`Application(root, settings=...)` is what `main()` runs and what GUI tests and the stall bench build (with short
timings, a test endpoint or the local cloud). Nothing is reached through a global accessor.
"""
from __future__ import annotations

import gc
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Mapping

from app.bus import Bus, Outbox
from app.backends.base import BackendContext
from app.backends.registry import create_all, labels
from app.controllers.app_settings_controller import AppSettingsController
from app.controllers.appearance_controller import AppearanceController
from app.controllers.bridge_controller import BridgeController, LocalModelClient
from app.controllers.cost_controller import CostController
from app.controllers.gpu_controller import GpuController
from app.controllers.chat_controller import ChatController
from app.controllers.job_controller import JobController
from app.controllers.keep_warm_controller import KeepWarmController
from app.controllers.pump import Pump
from app.controllers.render_controller import RenderController
from app.controllers.settings_controller import SettingsController, SettingsStore
from app.models.exchange import PENDING, ExchangeLedger
from app.models.gpu import GpuModel
from app.models.settings import AwsSettings, Settings
from app.models.theme import desktop_scheme
from app.services import config_file
from app.services.auth import LoginAgent, TokenProvider
from app.services.endpoints import AwsEndpoint, EndpointSource, FixedEndpoint, InsecureEndpoint, PendingEndpoint
from app.services.local_cloud import EmbeddedCloud
from app.services.tlfif_session import TlfifSession
from app.timings import Timings
from app.views.main_window import MainWindow

log = logging.getLogger("tlfif.app")


class Application:
    def __init__(self, root, *, settings: Settings, settings_path: Path | None = None,
                 load_warning: str | None = None, endpoints: EndpointSource | None = None,
                 cloud_starter: Callable[[], Any] | None = None, timings: Timings | None = None,
                 env: Mapping[str, str] | None = None, browser_agent: LoginAgent | None = None,
                 production: bool = False, modal_dialogs: bool = True, pump_interval_ms: int = 20,
                 history_path: Path | None = None, desktop_scheme: Callable[[], str] = desktop_scheme):
        self.root = root
        self.timings = timings or Timings()
        self.bus = Bus(production=production)
        self.outbox = Outbox()
        self._load_warning = load_warning
        self.store = SettingsStore(settings, settings_path)
        if endpoints is None:
            if settings.aws.configured:
                endpoints = _configured_endpoint(settings.aws)
            else:
                kwargs = {"starter": cloud_starter} if cloud_starter else {}
                endpoints = EmbeddedCloud(notify=self.outbox.post, **kwargs)
        self.endpoints = endpoints
        self.tokens = TokenProvider(endpoints, notify=self.outbox.post, browser_agent=browser_agent,
                                    endpoint_wait_s=self.timings.endpoint_wait_s)
        self.session = TlfifSession(endpoints, self.tokens, self.timings)
        ctx = BackendContext(settings=lambda: self.store.current, session=self.session, timings=self.timings,
                             env=os.environ if env is None else env)
        self.backends = create_all(ctx)
        self.executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="tlfif-worker")
        self.exchanges = ExchangeLedger()
        self.gpu_model = GpuModel()

        self.settings_controller = SettingsController(self.bus, self.store, tuple(self.backends))
        self.chats = ChatController(self.bus, self.outbox, self.exchanges,
                                    history_path=history_path or config_file.history_path(),
                                    settings=lambda: self.store.current, busy=lambda: self.jobs.busy)
        self.jobs = JobController(self.bus, self.outbox, self.backends, self.store, self.exchanges,
                                  self.executor, self.timings, context=self.chats.context_for,
                                  regenerate_target=self.chats.regenerate_target)
        self.gpu = GpuController(self.bus, self.outbox, self.session, self.gpu_model, self.executor, self.timings,
                                 self.exchanges)
        self.cost = CostController(self.bus, self.outbox, self.session, self.timings)
        self.keep_warm = KeepWarmController(self.bus, self.outbox, self.session, self.gpu_model, self.gpu,
                                            self.executor, lambda: self.store.current)
        self.app_settings = AppSettingsController(self.bus, self.outbox, self.store, self.executor.submit,
                                                  self.backends)
        self.render = RenderController(self.bus, self.outbox)
        self.local_model = LocalModelClient(self.store, ctx)
        self.bridge = BridgeController(self.bus, self.outbox, self.store, self.exchanges, self.executor,
                                       self.backends["openai"], self.local_model, self.jobs.pricing,
                                       context=self.chats.context_for)
        self.appearance = AppearanceController(self.bus, self.outbox, self.store, self.executor, desktop_scheme)
        self.window = MainWindow(root, self.bus, settings, labels(), modal_dialogs=modal_dialogs,
                                 current_settings=lambda: self.store.current)
        self.pump = Pump(root, self.bus, self.outbox, interval_ms=pump_interval_ms)
        self.warmed_up: list = []  # futures of the backends' warm-ups
        self._started = False
        self._closed = False

    def start(self) -> Application:
        self.endpoints.start()
        self.appearance.start()
        self.chats.start()
        self.pump.start()
        for backend in self.backends.values():
            self.warmed_up.append(self.executor.submit(backend.warm_up))
        self.gpu.start()
        self.cost.start()
        if self._load_warning:
            self.bus.send("settings.warning", message=self._load_warning)
        self._started = True
        return self

    def settle(self, timeout: float = 10.0) -> None:
        """Once, after start-up (main and the stall bench call it; tests do not): wait for the warm-ups, then freeze
        the objects start-up made so that a full cyclic GC — 30-90 ms with the SDKs loaded, on the Tk thread as on
        any other — stays a few ms during use."""
        for future in self.warmed_up:
            try:
                future.result(timeout=timeout)
            except Exception:
                log.debug("warm-up failed", exc_info=True)
        gc.collect()
        gc.freeze()

    def close(self) -> None:
        """Stop everything this app started: pump, pollers, requests in flight, the sign-in, the local cloud."""
        if self._closed:
            return
        self._closed = True
        self.pump.stop()
        self.gpu.stop()
        self.cost.stop()
        self.tokens.cancel()
        # Stop what is still generating (AWS: POST /cancel) off the Tk thread, waiting at most CLOSE_CANCEL_WAIT_S.
        pending = [(self.backends[e.backend], e.request_id) for e in self.exchanges.exchanges
                   if e.status == PENDING]
        cancelling = threading.Thread(target=_cancel_all, args=(pending,), name="close-cancel", daemon=True)
        cancelling.start()
        self.executor.shutdown(wait=False, cancel_futures=True)
        for backend in (*self.backends.values(), self.local_model):
            backend.close()
        cancelling.join(CLOSE_CANCEL_WAIT_S)
        self.endpoints.stop()
        self.chats.close()
        self.render.close()
        self.bus.close()


CLOSE_CANCEL_WAIT_S = 1.0


def _configured_endpoint(aws: AwsSettings) -> EndpointSource:
    """The deployed stack from the settings; one whose URLs would travel in clear text is refused (every call then
    says why) rather than used."""
    try:
        return FixedEndpoint(AwsEndpoint.from_settings(aws))
    except InsecureEndpoint as err:
        log.error("[aws] %s", err)
        refused = PendingEndpoint()
        refused.fail(str(err))
        return refused


def _cancel_all(pending) -> None:
    for backend, request_id in pending:
        try:
            backend.cancel(request_id)
        except Exception as err:  # closing: log it, never hold the window
            log.warning("cancel of %s on close failed: %s", request_id, err)
