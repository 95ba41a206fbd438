"""The sidebar's small dialogs: rename a chat, confirm a delete, a chat's settings (system prompt, temperature,
max tokens). Views only: OK hands the raw values to a callback that publishes the intent; validation happens in
the chat controller, whose hints come back through `show_error`.

`modal=False` (tests) skips grab/wait_window, as ApiKeyDialog does, so a test can fill a dialog in and press OK.
"""
from __future__ import annotations

import tkinter as tk
from tkinter import ttk
from typing import Callable

from app.views import styles


class _Dialog(tk.Toplevel):
    def __init__(self, parent, title: str):
        super().__init__(parent)
        self.title(title)
        self.transient(parent)
        self.resizable(False, False)
        self.frame = ttk.Frame(self, padding=12)
        self.frame.pack(fill="both", expand=True)
        self.bind("<Escape>", lambda _e: self.cancel())
        self.protocol("WM_DELETE_WINDOW", self.cancel)

    def _buttons(self, ok_text: str) -> ttk.Frame:
        buttons = ttk.Frame(self.frame)
        self.ok_btn = ttk.Button(buttons, text=ok_text, command=self.ok)
        self.ok_btn.pack(side="left", padx=4)
        self.cancel_btn = ttk.Button(buttons, text="Cancel", command=self.cancel)
        self.cancel_btn.pack(side="left")
        return buttons

    def _show(self, modal: bool, focus) -> None:
        focus.focus_set()
        if modal:
            self.wait_visibility()  # a grab needs a mapped window
            self.grab_set()
            self.wait_window(self)

    def ok(self) -> None:
        raise NotImplementedError

    def cancel(self) -> None:
        self.destroy()


class RenameDialog(_Dialog):
    def __init__(self, parent, title: str, on_ok: Callable[[str], None], *, modal: bool = True):
        super().__init__(parent, "Rename chat")
        self._on_ok = on_ok
        ttk.Label(self.frame, text="Title:").pack(anchor="w")
        self.title_var = tk.StringVar(value=title)
        self.entry = ttk.Entry(self.frame, textvariable=self.title_var, width=48)
        self.entry.pack(fill="x", pady=8)
        self.entry.select_range(0, "end")
        self._buttons("Rename").pack(anchor="e")
        self.bind("<Return>", lambda _e: self.ok())
        self._show(modal, self.entry)

    def ok(self) -> None:
        title = self.title_var.get()
        self.destroy()
        self._on_ok(title)


class ConfirmDialog(_Dialog):
    def __init__(self, parent, title: str, message: str, ok_text: str, on_ok: Callable[[], None], *,
                 modal: bool = True):
        super().__init__(parent, title)
        self._on_ok = on_ok
        ttk.Label(self.frame, text=message, wraplength=360, justify="left").pack(anchor="w", pady=(0, 10))
        self._buttons(ok_text).pack(anchor="e")
        self._show(modal, self.cancel_btn)  # the safe button has the focus: Return does not delete

    def ok(self) -> None:
        self.destroy()
        self._on_ok()


class ChatSettingsDialog(_Dialog):
    """System prompt, temperature and max tokens of the current chat. Stays open until the controller accepts the
    values (`close`) or the user cancels; a refused value gets its hint under its field (`show_error`)."""

    FIELDS = ("system", "temperature", "max_tokens")

    def __init__(self, parent, chat_title: str, system: str, temperature: float, max_tokens: int,
                 on_ok: Callable[[str, str, str], None], *, modal: bool = True):
        super().__init__(parent, f"Chat settings — {chat_title}")
        self._on_ok = on_ok
        f = self.frame
        ttk.Label(f, text="System prompt (how the assistant should behave; empty for none):").grid(
            row=0, column=0, columnspan=2, sticky="w")
        self.system_box = tk.Text(f, height=5, width=56, wrap="word", undo=True)
        self.system_box.insert("1.0", system)
        self.system_box.grid(row=1, column=0, columnspan=2, sticky="ew", pady=(2, 0))
        self.hints: dict[str, ttk.Label] = {}
        self._hint(2, "system")
        ttk.Label(f, text="Temperature (0–2; low = focused, high = varied):").grid(row=3, column=0, sticky="w")
        self.temperature_var = tk.StringVar(value=f"{temperature:g}")
        self.temperature_entry = ttk.Entry(f, textvariable=self.temperature_var, width=8)
        self.temperature_entry.grid(row=3, column=1, sticky="w", padx=(6, 0), pady=2)
        self._hint(4, "temperature")
        ttk.Label(f, text="Max tokens (length limit of each answer):").grid(row=5, column=0, sticky="w")
        self.max_tokens_var = tk.StringVar(value=str(max_tokens))
        self.max_tokens_entry = ttk.Entry(f, textvariable=self.max_tokens_var, width=8)
        self.max_tokens_entry.grid(row=5, column=1, sticky="w", padx=(6, 0), pady=2)
        self._hint(6, "max_tokens")
        self._buttons("Save").grid(row=7, column=0, columnspan=2, sticky="e", pady=(8, 0))
        self._widgets = {"system": self.system_box, "temperature": self.temperature_entry,
                         "max_tokens": self.max_tokens_entry}
        for entry in (self.temperature_entry, self.max_tokens_entry):
            entry.bind("<Return>", lambda _e: self.ok())
        self._show(modal, self.system_box)

    def _hint(self, row: int, field: str) -> None:
        label = ttk.Label(self.frame, text="", style=styles.HINT_STYLE, wraplength=420, justify="left")
        label.grid(row=row, column=0, columnspan=2, sticky="w")
        self.hints[field] = label

    def ok(self) -> None:
        for label in self.hints.values():
            label.configure(text="")
        self._on_ok(self.system_box.get("1.0", "end-1c"), self.temperature_var.get(), self.max_tokens_var.get())

    def show_error(self, field: str, message: str) -> None:
        self.hints.get(field, self.hints["system"]).configure(text=message)
        widget = self._widgets.get(field)
        if widget is not None:
            widget.focus_set()

    def close(self) -> None:
        self.destroy()
