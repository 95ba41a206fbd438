"""Find in the open chat (Ctrl+F): a bar under the answers pane. Every hit is highlighted as you type; Enter and
Shift+Enter go to the next and previous one (wrapping), Esc closes the bar and clears the highlights. Where the
hits are is app.models.find (tested without widgets); this only marks them in the pane."""
from __future__ import annotations

import tkinter as tk
from tkinter import ttk

from app.models import find
from app.views import styles

HIT, CURRENT = "find_hit", "find_current"


class FindBar(ttk.Frame):
    def __init__(self, parent, pane: tk.Text):
        super().__init__(parent)
        self._pane = pane
        self.hits: list[tuple[int, int]] = []
        self.current: int | None = None
        self.apply_theme(styles.current(pane))
        ttk.Label(self, text="Find:").pack(side="left")
        self.query_var = tk.StringVar()
        self.entry = ttk.Entry(self, textvariable=self.query_var, width=32)
        self.entry.pack(side="left", padx=(4, 6))
        self.status = ttk.Label(self, text="", style=styles.MUTED_STYLE)
        self.status.pack(side="left")
        ttk.Button(self, text="✕", width=2, command=self.close, takefocus=0).pack(side="right")
        self.query_var.trace_add("write", lambda *_: self.refresh())
        self.entry.bind("<Return>", lambda _e: self.go(forward=True))
        self.entry.bind("<KP_Enter>", lambda _e: self.go(forward=True))
        self.entry.bind("<Shift-Return>", lambda _e: self.go(forward=False))
        self.entry.bind("<Escape>", lambda _e: self.close())
        self._shown = False

    def apply_theme(self, p) -> None:
        """The hits' colours from palette `p` (app.models.theme)."""
        self._pane.tag_configure(HIT, background=p.find_hit)
        self._pane.tag_configure(CURRENT, background=p.find_current)

    def open(self) -> None:
        if not self._shown:
            self.grid()
            self._shown = True
        self.entry.focus_set()
        self.entry.select_range(0, "end")
        self.refresh()

    def close(self) -> str:
        self._pane.tag_remove(HIT, "1.0", "end")
        self._pane.tag_remove(CURRENT, "1.0", "end")
        self.hits, self.current = [], None
        self.grid_remove()
        self._shown = False
        return "break"

    def refresh(self) -> None:
        """Mark every hit of the query in the pane (the text may have changed: a new answer, another chat)."""
        pane = self._pane
        pane.tag_remove(HIT, "1.0", "end")
        pane.tag_remove(CURRENT, "1.0", "end")
        query = self.query_var.get()
        self.hits = find.find_all(pane.get("1.0", "end-1c"), query)
        self.current = None
        if self.hits:
            args = []
            for line, col in self.hits:
                args += [f"{line}.{col}", f"{line}.{col + len(query)}"]
            pane.tag_add(HIT, *args)
            pane.tag_raise(HIT)
            pane.tag_raise(CURRENT)
        self.status.configure(text=find.status(None, len(self.hits)) if query else "")

    def go(self, *, forward: bool) -> str:
        if not self.hits:
            self.refresh()
        self.current = find.step(self.current, len(self.hits), forward=forward)
        self._pane.tag_remove(CURRENT, "1.0", "end")
        if self.current is not None:
            line, col = self.hits[self.current]
            start, end = f"{line}.{col}", f"{line}.{col + len(self.query_var.get())}"
            self._pane.tag_add(CURRENT, start, end)
            self._pane.see(start)
        self.status.configure(text=find.status(self.current, len(self.hits)))
        return "break"
