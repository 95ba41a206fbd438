"""The top row: backend dropdown (RQL 12), IdleTimeout spinbox (RQL 1.1.4), StopGpuBtn (RQL 1.1.3), CostLabel
(RQL 1.1.5). Publishes intents; validation and saving happen in the settings controller."""
from __future__ import annotations

import tkinter as tk
from tkinter import ttk

from app.bus import Bus
from app.models.cost import NO_COST
from app.models.settings import Settings
from app.views import styles
from tlfif_common.jobs import IDLE_MAX, IDLE_MIN


class Toolbar(ttk.Frame):
    def __init__(self, parent, bus: Bus, settings: Settings, backend_labels: dict[str, str]):
        super().__init__(parent)
        self._bus = bus
        self._labels = backend_labels
        self._keys = {label: key for key, label in backend_labels.items()}

        ttk.Label(self, text="Backend").pack(side="left")
        self.backend_var = tk.StringVar(value=backend_labels.get(settings.backend, next(iter(backend_labels.values()))))
        self.backend_box = ttk.Combobox(self, textvariable=self.backend_var, values=list(backend_labels.values()),
                                        state="readonly", width=16)
        self.backend_box.pack(side="left", padx=(4, 14))
        self.backend_box.bind("<<ComboboxSelected>>", self._on_backend)

        ttk.Label(self, text="Idle stop after").pack(side="left")
        self.idle_var = tk.StringVar(value=str(settings.idle))
        self.idle_spin = ttk.Spinbox(self, from_=IDLE_MIN, to=IDLE_MAX, increment=1, width=4,
                                     textvariable=self.idle_var, command=self._on_idle)
        self.idle_spin.pack(side="left", padx=4)
        ttk.Label(self, text="min").pack(side="left")
        for sequence in ("<Return>", "<KP_Enter>", "<FocusOut>"):
            self.idle_spin.bind(sequence, self._on_idle)
        self.idle_hint = ttk.Label(self, text="", foreground=styles.HINT_COLOR)
        self.idle_hint.pack(side="left", padx=(6, 6))

        self.cost_label = tk.Label(self, text=f"Cost: {NO_COST}", anchor="e")
        self.cost_label.pack(side="right", padx=(10, 0))
        self.stop_btn = ttk.Button(self, text="Stop GPU", style=styles.STOP_STYLE,
                                   command=lambda: bus.send("ui.stop_gpu"))
        self.stop_btn.pack(side="right")
        self._cost_text = NO_COST
        self._cost_paused = False
        bus.subscribe_table({
            "settings.invalid": self.on_invalid,
            "settings.saved": self.on_saved,
            "cost.updated": self.on_cost,
            "cost.paused": self.on_cost_paused,
        })

    def _on_backend(self, _event=None) -> None:
        key = self._keys.get(self.backend_var.get())
        if key:
            self._bus.send("ui.backend_selected", backend=key)
        self.backend_box.selection_clear()

    def _on_idle(self, _event=None) -> None:
        self._bus.send("ui.idle_changed", value=self.idle_var.get())

    def on_invalid(self, field, message, current) -> None:
        if field == "idle":
            self.idle_hint.configure(text=message)
            self.idle_var.set(current)

    def on_saved(self, idle, backend) -> None:
        self.idle_hint.configure(text="")
        if self.idle_var.get().strip() != str(idle):
            self.idle_var.set(str(idle))

    def on_cost(self, text, data) -> None:
        self._cost_text = text
        self._render_cost()

    def on_cost_paused(self, paused) -> None:
        self._cost_paused = paused
        self._render_cost()

    def _render_cost(self) -> None:
        suffix = " (paused while the GPU starts)" if self._cost_paused else ""
        self.cost_label.configure(text=f"Cost: {self._cost_text}{suffix}")
