"""Theme and font size: validates and saves the user's choice ([app] theme, font_size) and publishes
settings.appearance. "system" is resolved off the Tk thread (it runs gsettings / defaults / reads the registry)."""
from __future__ import annotations

import logging
from concurrent.futures import Executor
from dataclasses import replace
from typing import Callable

from app.bus import Bus, Outbox
from app.controllers.settings_controller import SettingsStore
from app.models.theme import LIGHT, SYSTEM, check_theme, desktop_scheme, stepped_font_size

log = logging.getLogger("tlfif.app.appearance")


class AppearanceController:
    def __init__(self, bus: Bus, outbox: Outbox, store: SettingsStore, executor: Executor,
                 scheme: Callable[[], str] = desktop_scheme):
        self._bus = bus
        self._outbox = outbox
        self._store = store
        self._executor = executor
        self._scheme = scheme
        self.palette = LIGHT
        self._asked = 0  # which detection is the latest: an older one's answer is dropped
        bus.subscribe_table({
            "ui.theme_selected": self.on_theme_selected,
            "ui.font_size": self.on_font_size,
        })

    def start(self) -> None:
        self._resolve()

    def _resolve(self) -> None:
        theme = self._store.current.theme
        if theme != SYSTEM:
            self.palette = theme
            self._publish()
            return
        self._publish()  # what is in force until the desktop answers
        self._asked += 1
        asked = self._asked
        future = self._executor.submit(self._scheme)
        future.add_done_callback(lambda f: self._outbox.call(self.on_scheme, asked=asked,
                                                             scheme=f.result() if not f.exception() else LIGHT))

    def on_scheme(self, asked: int, scheme: str) -> None:
        if asked == self._asked and self._store.current.theme == SYSTEM:
            self.palette = scheme
            self._publish()

    def _publish(self) -> None:
        s = self._store.current
        self._bus.send("settings.appearance", theme=s.theme, palette=self.palette, font_size=s.font_size)

    def on_theme_selected(self, theme: str) -> None:
        try:
            theme = check_theme(theme)
        except ValueError as err:
            log.warning("[appearance] %s", err)
            return
        self._save(replace(self._store.current, theme=theme))
        self._resolve()

    def on_font_size(self, step: int, desktop: int) -> None:
        size = stepped_font_size(self._store.current.font_size, step, desktop)
        if size != self._store.current.font_size:
            self._save(replace(self._store.current, font_size=size))
            self._publish()

    def _save(self, settings) -> None:
        try:
            self._store.save(settings)
        except OSError as err:
            self._store.current = settings  # in force for this session even if the file cannot be written
            self._bus.send("settings.warning", message=f"Settings could not be saved: {err}")
