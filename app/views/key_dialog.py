"""Asks for an API key (OpenAI). The key goes on the bus to the backend, which holds it in memory only."""
from __future__ import annotations

import tkinter as tk
from tkinter import ttk

from app.bus import Bus


class ApiKeyDialog(tk.Toplevel):
    """`modal=False` (tests) skips grab/wait_window so a test can fill it in and press OK."""

    def __init__(self, parent, bus: Bus, backend: str, backend_label: str, *, modal: bool = True):
        super().__init__(parent)
        self._bus = bus
        self._backend = backend
        self._answered = False
        self.title(f"{backend_label} API key")
        self.transient(parent)
        frame = ttk.Frame(self, padding=12)
        frame.pack(fill="both", expand=True)
        ttk.Label(frame, text=f"{backend_label} API key (kept in memory until you quit; never saved):").pack(
            anchor="w")
        self.key_var = tk.StringVar()
        self.entry = ttk.Entry(frame, textvariable=self.key_var, show="•", width=48)
        self.entry.pack(fill="x", pady=8)
        buttons = ttk.Frame(frame)
        buttons.pack(anchor="e")
        self.ok_btn = ttk.Button(buttons, text="OK", command=self.ok)
        self.ok_btn.pack(side="left", padx=4)
        ttk.Button(buttons, text="Cancel", command=self.cancel).pack(side="left")
        self.bind("<Return>", lambda _e: self.ok())
        self.bind("<Escape>", lambda _e: self.cancel())
        self.protocol("WM_DELETE_WINDOW", self.cancel)
        self.entry.focus_set()
        if modal:
            self.wait_visibility()  # a grab needs a mapped window
            self.grab_set()
            self.wait_window(self)

    def ok(self) -> None:
        key = self.key_var.get().strip()
        if not key:
            self.cancel()
            return
        self._finish()
        self._bus.send("ui.api_key_entered", backend=self._backend, key=key)

    def cancel(self) -> None:
        self._finish()
        self._bus.send("ui.api_key_cancelled", backend=self._backend)

    def _finish(self) -> None:
        self._answered = True
        self.key_var.set("")
        self.destroy()
