"""The application settings window's work: reading a stack's outputs (CloudFormation, as `tl-fif configure
--from-stack` does: app.services.stack_outputs) and listing the OpenAI key's models, both on worker threads, and
saving the form (the rules of app.models.app_settings_form, applied again here). The Tk thread only publishes."""
from __future__ import annotations

import logging
from dataclasses import replace
from typing import Callable, Mapping

from app.backends.base import Backend, BackendError
from app.bus import Bus, Outbox
from app.controllers.settings_controller import SettingsStore
from app.models import app_settings_form as form
from app.services import stack_outputs

log = logging.getLogger("tlfif.app.settings")

AWS_RESTART = "The AWS endpoint changes when TL-FIF starts again."


class AppSettingsController:
    def __init__(self, bus: Bus, outbox: Outbox, store: SettingsStore, submit: Callable,
                 backends: Mapping[str, Backend]):
        self._bus = bus
        self._outbox = outbox
        self._store = store
        self._submit = submit
        self._backends = backends
        bus.subscribe_table({
            "ui.app_settings": self.on_save,
            "ui.read_stack": self.on_read_stack,
            "ui.list_models": self.on_list_models,
        })

    def on_save(self, values) -> None:
        old = self._store.current
        settings, errors = form.settings_from(values, old)
        if errors:
            self._bus.send("settings.form_invalid", errors=errors)
            return
        try:
            self._store.save(settings)
        except OSError as err:
            self._store.current = settings
            self._bus.send("settings.warning", message=f"Settings could not be saved: {err}")
            return
        self._bus.send("settings.saved", idle=settings.idle, backend=settings.backend,
                       bridge=settings.bridge)
        restart = AWS_RESTART if form.aws_changed(old.aws, settings.aws) else ""
        self._bus.send("settings.form_saved", message=f"Saved. {restart}".strip())

    def on_read_stack(self, stack, region) -> None:
        problem = form.field_error("stack", {"stack": stack}) or form.field_error("region", {"region": region})
        if problem or not stack.strip():
            self._bus.send("settings.stack_read", values={}, error=problem or "Give the stack's name")
            return
        self._submit(self._read_stack, stack.strip(), region.strip())

    def _read_stack(self, stack: str, region: str) -> None:
        """Worker thread."""
        try:
            outputs, where = stack_outputs.read_outputs(stack, region=region or None)
            aws = stack_outputs.aws_settings(outputs, replace(self._store.current.aws), region=region or where)
        except stack_outputs.StackError as err:
            self._outbox.post("settings.stack_read", values={}, error=str(err))
            return
        self._outbox.post("settings.stack_read", values={"api_url": aws.api_url, "client_id": aws.client_id,
                                                         "auth_domain": aws.auth_domain, "region": aws.region},
                          error="")

    def on_list_models(self, base_url) -> None:
        problem = form.field_error("openai_base_url", {"openai_base_url": base_url})
        if problem:
            self._bus.send("settings.models_listed", models=[], error=problem)
            return
        self._submit(self._list_models, base_url.strip().rstrip("/"))

    def _list_models(self, base_url: str) -> None:
        """Worker thread."""
        try:
            models = self._backends["openai"].list_models(base_url)
        except BackendError as err:
            self._outbox.post("settings.models_listed", models=[], error=str(err))
            return
        self._outbox.post("settings.models_listed", models=models, error="")
