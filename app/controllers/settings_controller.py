"""Settings: the idle timeout and the backend choice, validated by the model and written to ~/.tl-fif.ini."""
from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from app.bus import Bus
from app.models.settings import Settings, check_bridge, check_idle
from app.services import config_file

log = logging.getLogger("tlfif.app.settings")


class SettingsStore:
    """The settings in force (Tk thread) and where they are saved."""

    def __init__(self, settings: Settings, path: Path | None = None):
        self.current = settings
        self.path = path

    def save(self, settings: Settings) -> None:
        self.current = settings
        config_file.save(settings, self.path)


class SettingsController:
    def __init__(self, bus: Bus, store: SettingsStore, backend_keys: tuple[str, ...]):
        self._bus = bus
        self._store = store
        self._backend_keys = backend_keys
        bus.subscribe_table({
            "ui.idle_changed": self.on_idle_changed,
            "ui.backend_selected": self.on_backend_selected,
            "ui.bridge_selected": self.on_bridge_selected,
        })

    def on_idle_changed(self, value) -> None:
        try:
            idle = check_idle(value)
        except ValueError as err:
            self._bus.send("settings.invalid", field="idle", message=str(err), current=str(self._store.current.idle))
            return
        if idle != self._store.current.idle:
            self._save(self._store.current.with_idle(idle))

    def on_backend_selected(self, backend: str) -> None:
        if backend not in self._backend_keys:
            log.warning("[settings] unknown backend %r ignored", backend)
            return
        if backend != self._store.current.backend:
            self._save(replace(self._store.current, backend=backend))

    def on_bridge_selected(self, bridge: str) -> None:
        try:
            bridge = check_bridge(bridge)
        except ValueError as err:
            log.warning("[settings] %s", err)
            return
        if bridge != self._store.current.bridge:
            self._save(replace(self._store.current, bridge=bridge))

    def _save(self, settings: Settings) -> None:
        try:
            self._store.save(settings)
        except OSError as err:
            self._store.current = settings  # in force for this session even if the file cannot be written
            self._bus.send("settings.warning", message=f"Settings could not be saved: {err}")
            return
        self._bus.send("settings.saved", idle=settings.idle, backend=settings.backend,
                       bridge=settings.bridge)
