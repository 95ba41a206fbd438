"""The Keep-warm toggle next to Stop GPU. A view: publishes `ui.keep_warm`
and shows `gpu.keep_warm`; disabled while its request is in flight and while the OpenAI backend is selected (that
backend does not use the GPU)."""
from __future__ import annotations

import tkinter as tk
from tkinter import ttk

from app.bus import Bus
from app.models.gpu import keep_warm_label
from app.models.settings import BACKEND_AWS, Settings


class KeepWarmToggle(ttk.Checkbutton):
    def __init__(self, parent, bus: Bus, settings: Settings):
        self.var = tk.BooleanVar(master=parent, value=False)
        super().__init__(parent, text=keep_warm_label(settings.keep_warm_max_minutes), variable=self.var,
                         command=self._on_click)
        self._bus = bus
        self._gpu_backend = settings.backend == BACKEND_AWS
        self.pending = False
        self._render()
        bus.subscribe_table({
            "gpu.keep_warm": self.on_keep_warm,
            "settings.saved": self.on_saved,
        })

    def _on_click(self) -> None:
        self.pending = True
        self._render()
        self._bus.send("ui.keep_warm", on=bool(self.var.get()))

    def on_keep_warm(self, on, until_ms, message) -> None:
        self.pending = False
        self.var.set(bool(on))
        self._render()

    def on_saved(self, idle, backend, bridge) -> None:
        self._gpu_backend = backend == BACKEND_AWS
        self._render()

    def _render(self) -> None:
        self.state(["!disabled"] if self._gpu_backend and not self.pending else ["disabled"])
