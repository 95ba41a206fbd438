"""The top rows: backend dropdown, IdleTimeout spinbox, the Keep-warm toggle, StopGpuBtn;
under them the CostLabel (a click opens the daily-spend chart). Publishes intents;
validation and saving happen in the settings controller."""
from __future__ import annotations

import tkinter as tk
from tkinter import ttk

from app.bus import Bus
from app.models.settings import BRIDGE_LOCAL, BRIDGE_NOTHING, BRIDGE_OPENAI, Settings
from app.views import styles
from app.views.cost_label import CostLabel
from app.views.keep_warm_toggle import KeepWarmToggle
from app.views.tooltip import Tooltip
from tlfif_common.jobs import IDLE_MAX, IDLE_MIN

BRIDGE_LABELS = {BRIDGE_NOTHING: "nothing", BRIDGE_OPENAI: "OpenAI", BRIDGE_LOCAL: "local model"}


class Toolbar(ttk.Frame):
    def __init__(self, parent, bus: Bus, settings: Settings, backend_labels: dict[str, str]):
        super().__init__(parent)
        self._bus = bus
        self._labels = backend_labels
        self._keys = {label: key for key, label in backend_labels.items()}

        # Two lines: the settings and the GPU controls, then the CostLabel under them at the right (its text, with
        # "paused while the GPU starts", would not fit beside them next to the chat sidebar).
        row = ttk.Frame(self)
        row.pack(side="top", fill="x")
        ttk.Label(row, text="Backend").pack(side="left")
        self.backend_var = tk.StringVar(value=backend_labels.get(settings.backend, next(iter(backend_labels.values()))))
        self.backend_box = ttk.Combobox(row, textvariable=self.backend_var, values=list(backend_labels.values()),
                                        state="readonly", width=16)
        self.backend_box.pack(side="left", padx=(4, 14))
        self.backend_box.bind("<<ComboboxSelected>>", self._on_backend)

        ttk.Label(row, text="Idle stop after").pack(side="left")
        self.idle_var = tk.StringVar(value=str(settings.idle))
        self.idle_spin = ttk.Spinbox(row, from_=IDLE_MIN, to=IDLE_MAX, increment=1, width=4,
                                     textvariable=self.idle_var, command=self._on_idle)
        self.idle_spin.pack(side="left", padx=4)
        ttk.Label(row, text="min").pack(side="left")
        for sequence in ("<Return>", "<KP_Enter>", "<FocusOut>"):
            self.idle_spin.bind(sequence, self._on_idle)
        self.idle_hint = ttk.Label(row, text="", style=styles.HINT_STYLE)
        self.idle_hint.pack(side="left", padx=(6, 6))

        self.stop_btn = ttk.Button(row, text="Stop GPU", style=styles.STOP_STYLE,
                                   command=lambda: bus.send("ui.stop_gpu"))
        self.stop_btn.pack(side="right")
        self.keep_warm = KeepWarmToggle(row, bus, settings)
        self.keep_warm.pack(side="right", padx=(0, 8))
        self.keep_warm.lower(self.stop_btn)  # Tab reaches it before Stop GPU, as they are seen
        row2 = ttk.Frame(self)
        row2.pack(side="top", fill="x", pady=(4, 0))
        ttk.Label(row2, text="While the GPU starts, answer with").pack(side="left")
        self.bridge_var = tk.StringVar(master=self, value=BRIDGE_LABELS[settings.bridge])
        self.bridge_box = ttk.Combobox(row2, textvariable=self.bridge_var, values=list(BRIDGE_LABELS.values()),
                                       state="readonly", width=12)
        self.bridge_box.pack(side="left", padx=(4, 0))
        self.bridge_box.bind("<<ComboboxSelected>>", self._on_bridge)
        Tooltip(self.bridge_box, "Who else answers a prompt while the GPU cold-starts (TinyLlama answers too).\n"
                                 "Nothing is sent to OpenAI unless you pick it. Local model: [app] bridge_url.")
        self.cost_label = CostLabel(row2, bus)
        self.cost_label.pack(side="right")
        bus.subscribe_table({
            "settings.invalid": self.on_invalid,
            "settings.saved": self.on_saved,
        })

    def _on_backend(self, _event=None) -> None:
        key = self._keys.get(self.backend_var.get())
        if key:
            self._bus.send("ui.backend_selected", backend=key)
        self.backend_box.selection_clear()

    def _on_bridge(self, _event=None) -> None:
        chosen = {label: key for key, label in BRIDGE_LABELS.items()}.get(self.bridge_var.get())
        if chosen:
            self._bus.send("ui.bridge_selected", bridge=chosen)
        self.bridge_box.selection_clear()

    def _on_idle(self, _event=None) -> None:
        self._bus.send("ui.idle_changed", value=self.idle_var.get())

    def on_invalid(self, field, message, current) -> None:
        if field == "idle":
            self.idle_hint.configure(text=message)
            self.idle_var.set(current)

    def on_saved(self, idle, backend, bridge) -> None:
        self.idle_hint.configure(text="")
        if self.bridge_var.get() != BRIDGE_LABELS.get(bridge):  # chosen in the settings window
            self.bridge_var.set(BRIDGE_LABELS[bridge])
        if self.idle_var.get().strip() != str(idle):
            self.idle_var.set(str(idle))
