"""Tooltip: a small borderless window with a line of text under a widget, shown while the pointer rests on it or
while it has the keyboard focus (so keyboard users read it too), hidden on leave, focus out, click or Esc."""
from __future__ import annotations

import tkinter as tk

from app.views import styles

DELAY_MS = 500


class Tooltip:
    def __init__(self, widget, text: str, *, delay_ms: int = DELAY_MS):
        self.widget = widget
        self.text = text
        self.delay_ms = delay_ms
        self.window: tk.Toplevel | None = None
        self._after_id: str | None = None
        for sequence, handler in (("<Enter>", self._schedule), ("<FocusIn>", self._schedule),
                                  ("<Leave>", self.hide), ("<FocusOut>", self.hide), ("<ButtonPress>", self.hide),
                                  ("<Escape>", self.hide), ("<Destroy>", self.hide)):
            widget.bind(sequence, handler, add="+")

    def set_text(self, text: str) -> None:
        self.text = text
        if self.window is not None:
            self.label.configure(text=text)

    @property
    def shown(self) -> bool:
        return self.window is not None

    def _schedule(self, _event=None) -> None:
        self._cancel()
        self._after_id = self.widget.after(self.delay_ms, self.show)

    def _cancel(self) -> None:
        if self._after_id is not None:
            try:
                self.widget.after_cancel(self._after_id)
            except tk.TclError:
                pass
            self._after_id = None

    def show(self) -> None:
        self._after_id = None
        if self.window is not None or not self.text or not self.widget.winfo_viewable():
            return
        p = styles.current(self.widget)
        self.window = tk.Toplevel(self.widget)
        self.window.wm_overrideredirect(True)
        self.label = tk.Label(self.window, text=self.text, justify="left", background=p.field, foreground=p.foreground,
                              relief="solid", borderwidth=1, padx=6, pady=3, font="TkTooltipFont")
        self.label.pack()
        x = self.widget.winfo_rootx()
        y = self.widget.winfo_rooty() + self.widget.winfo_height() + 4
        self.window.wm_geometry(f"+{x}+{y}")

    def hide(self, _event=None) -> None:
        self._cancel()
        if self.window is not None:
            try:
                self.window.destroy()
            except tk.TclError:
                pass
            self.window = None
