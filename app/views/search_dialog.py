"""Search all chats (Ctrl+Shift+F, Ctrl+K): a box, and the results as they come, newest first, each with its chat's
title and date and a snippet whose matching words are highlighted. Up/Down move through the results, Enter (or a
double click) opens the chat scrolled to the hit, Esc closes. Typing publishes `ui.search` after a short pause;
the chat controller searches on its store worker and answers with `search.results` (the main window hands them
to the open dialog)."""
from __future__ import annotations

import time
import tkinter as tk
from tkinter import ttk

from app.bus import Bus
from app.models.search import SearchHit, snippet_runs
from app.views import styles

TYPING_PAUSE_MS = 150


class SearchDialog(tk.Toplevel):
    def __init__(self, parent, bus: Bus):
        super().__init__(parent)
        self._bus = bus
        self.title("Search all chats")
        self.transient(parent)
        self.geometry("640x420")
        self.hits: list[SearchHit] = []
        self.selected: int | None = None
        self._pending: str | None = None  # the after id of the search about to be sent
        self._asked = ""
        frame = ttk.Frame(self, padding=8)
        frame.pack(fill="both", expand=True)
        self.query_var = tk.StringVar()
        self.entry = ttk.Entry(frame, textvariable=self.query_var)
        self.entry.pack(fill="x")
        self.status = ttk.Label(frame, text="Type to search the prompts and answers of every chat.",
                                style=styles.MUTED_STYLE)
        self.status.pack(fill="x", pady=(4, 4))
        self.results = tk.Text(frame, wrap="word", height=16, state="disabled", cursor="arrow", padx=6, pady=4,
                               takefocus=0)
        self.results.pack(fill="both", expand=True)
        colours = styles.current(self)
        self.results.tag_configure("title", font="TkSmallCaptionFont", foreground=colours.muted)
        self.results.tag_configure("hit", background=colours.find_hit)
        self.results.tag_configure("selected", background=colours.code_bg)
        self.results.tag_lower("selected")
        self.query_var.trace_add("write", lambda *_: self._typed())
        self.entry.bind("<Return>", lambda _e: self.open_selected())
        self.entry.bind("<Down>", lambda _e: self.move(1))
        self.entry.bind("<Up>", lambda _e: self.move(-1))
        self.bind("<Escape>", lambda _e: self.close())
        self.protocol("WM_DELETE_WINDOW", self.close)
        self.entry.focus_set()

    def _typed(self) -> None:
        if self._pending:
            self.after_cancel(self._pending)
        self._pending = self.after(TYPING_PAUSE_MS, self.search_now)

    def search_now(self) -> None:
        self._pending = None
        self._asked = self.query_var.get()
        self._bus.send("ui.search", query=self._asked)

    def on_results(self, query, hits, error) -> None:
        if query != self._asked:
            return  # an older query's answer
        self.hits = list(hits)
        self.selected = 0 if self.hits else None
        if error:
            self.status.configure(text=error)
        elif not query.strip():
            self.status.configure(text="Type to search the prompts and answers of every chat.")
        else:
            shown = f"{len(self.hits)}+" if len(self.hits) >= 50 else str(len(self.hits))
            self.status.configure(text=f"{shown} result(s), newest first. Enter opens, Esc closes."
                                  if self.hits else "No chat mentions that.")
        r = self.results
        r.configure(state="normal")
        r.delete("1.0", "end")
        for n, hit in enumerate(self.hits):
            tag = f"result{n}"
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(hit.started_at))
            r.insert("end", f"{hit.chat_title} · {when}\n", ("title", tag))
            for text, is_hit in snippet_runs(hit.snippet):
                r.insert("end", text, ("hit", tag) if is_hit else (tag,))
            r.insert("end", "\n\n", (tag,))
            r.tag_bind(tag, "<Button-1>", lambda _e, k=n: self.select(k))
            r.tag_bind(tag, "<Double-1>", lambda _e, k=n: self.open(k))
        r.configure(state="disabled")
        self.select(self.selected)

    def select(self, index: int | None) -> None:
        self.selected = index
        self.results.tag_remove("selected", "1.0", "end")
        if index is None:
            return
        ranges = self.results.tag_ranges(f"result{index}")
        if ranges:
            self.results.tag_add("selected", ranges[0], ranges[-1])
            self.results.see(ranges[0])

    def move(self, delta: int) -> str:
        if self.hits:
            self.select(max(0, min(len(self.hits) - 1, (self.selected or 0) + delta)))
        return "break"

    def open_selected(self) -> None:
        if self._pending:  # Enter right after typing: search first, open when the results are in
            self.search_now()
            return
        if self.selected is not None:
            self.open(self.selected)

    def open(self, index: int) -> None:
        hit = self.hits[index]
        self.close()
        self._bus.send("ui.open_search_hit", chat_id=hit.chat_id, request_id=hit.request_id)

    def close(self) -> None:
        if self._pending:
            self.after_cancel(self._pending)
            self._pending = None
        for _mode, callback in self.query_var.trace_info():  # no cycle left for a worker thread's GC to collect
            self.query_var.trace_remove("write", callback)
        self.destroy()
