"""PromptBox (tk.Text, 5 lines, Ctrl+Enter sends, Enter is a newline), SendBtn (green, spinner while in flight),
StopBtn ("Stop generating", enabled only while a request is in flight; Esc does the same) and the hint under them.
Publishes ui.send and ui.cancel; what may be sent or stopped is decided by the job controller. Sending while an
answer is coming is allowed: the prompt waits (job.waiting) and the box is free for the next one.

Editing an earlier prompt (Edit in the OutputPane → `begin_edit`): its text comes into the box, the draft there is
kept aside, and Send publishes it with `branch_of` (a new branch); Esc gives the draft back instead."""
from __future__ import annotations

import tkinter as tk
from tkinter import ttk

from app.bus import Bus
from app.views import styles
from app.views.tooltip import Tooltip

SPINNER = "-\\|/"
READY_HINT = "Ctrl+Enter sends · Enter makes a new line"
EDIT_HINT = "Editing an earlier prompt: Ctrl+Enter sends it as a new branch (the old one stays) · Esc cancels the edit"


class PromptPanel(ttk.Frame):
    def __init__(self, parent, bus: Bus):
        super().__init__(parent)
        self._bus = bus
        self._in_flight: str | None = None
        self._waiting: set[str] = set()      # request ids of prompts this box sent that wait for the answer
        self._sending: str | None = None     # the prompt this box sent, until it is submitted, waits or is refused
        self.branch_of = ""                  # the exchange whose prompt is being edited ('' when not editing)
        self._draft = ""                     # the box's text before the edit began
        self._spin = 0
        self.columnconfigure(0, weight=1)
        self.prompt_box = tk.Text(self, height=5, wrap="word", undo=True, font="TkFixedFont")
        self.prompt_box.grid(row=0, column=0, sticky="nsew")
        self.send_btn = ttk.Button(self, text="Send", style=styles.SEND_STYLE, command=self.send, width=10)
        self.send_btn.grid(row=0, column=1, sticky="se", padx=(8, 0))
        Tooltip(self.send_btn, "Send the prompt (Ctrl+Enter); while an answer comes, it waits for that answer")
        self.stop_btn = ttk.Button(self, text="Stop", command=self.stop, width=6)
        self.stop_btn.grid(row=0, column=2, sticky="se", padx=(4, 0))
        self.stop_btn.state(["disabled"])
        self._hint_error = False
        self.hint = ttk.Label(self, text=READY_HINT, style=styles.MUTED_STYLE)
        self.hint.grid(row=1, column=0, columnspan=3, sticky="w", pady=(2, 0))
        self.prompt_box.bind("<Control-Return>", self._on_ctrl_enter)
        self.prompt_box.bind("<Control-KP_Enter>", self._on_ctrl_enter)
        self.prompt_box.bind("<Key>", self._on_key, add="+")
        # Tab moves the focus on (a Text would insert a tab): every control stays reachable from the keyboard
        self.prompt_box.bind("<Tab>", self._focus_next)
        self.prompt_box.bind("<Shift-Tab>", self._focus_prev)
        self.prompt_box.bind("<ISO_Left_Tab>", self._focus_prev)
        self.apply_theme(styles.current(self))
        self.winfo_toplevel().bind("<Escape>", self._on_escape, add="+")  # anywhere in the window
        bus.subscribe_table({
            "job.waiting": self.on_waiting,
            "job.submitted": self.on_submitted,
            "job.rejected": self.on_rejected,
            "job.done": self.on_finished,
            "job.cancelled": self.on_finished,
            "job.failed": self.on_finished,
            "clock.tick": self.on_tick,
        })

    # --- intents ----------------------------------------------------------------------------------------------------
    def send(self) -> None:
        text = self.prompt_box.get("1.0", "end-1c")
        self._sending = text.rstrip()
        self._bus.send("ui.send", prompt=text, branch_of=self.branch_of)

    def begin_edit(self, request_id: str, prompt: str) -> None:
        """Edit the prompt of an earlier exchange here; Send starts a branch from it."""
        if not self.branch_of:
            self._draft = self.prompt_box.get("1.0", "end-1c")
        self.branch_of = request_id
        self.prompt_box.delete("1.0", "end")
        self.prompt_box.insert("1.0", prompt)
        self.prompt_box.focus_set()
        self.show_hint(EDIT_HINT, error=False)

    def cancel_edit(self) -> None:
        self._sent()
        self.show_hint(self._idle_hint(), error=False)

    def _sent(self) -> None:
        """The box's prompt was taken (submitted or waiting), or an edit cancelled: the box holds the draft kept
        aside when an edit began (empty otherwise), and no edit is going on."""
        self.prompt_box.delete("1.0", "end")
        self.prompt_box.insert("1.0", self._draft)
        self.branch_of = self._draft = ""

    def stop(self) -> None:
        """Stop generating: ask for the request in flight to be cancelled (the backend is told, not only the view)."""
        if self._in_flight is None or self.stop_btn.instate(["disabled"]):
            return
        self.stop_btn.state(["disabled"])
        self.show_hint("Stopping…", error=False)
        self._bus.send("ui.cancel", request_id=self._in_flight)

    def _on_escape(self, _event) -> None:
        if self.branch_of:
            self.cancel_edit()
        else:
            self.stop()

    def _on_ctrl_enter(self, _event) -> str:
        self.send()
        return "break"  # no newline

    @staticmethod
    def _focus_next(event) -> str:
        event.widget.tk_focusNext().focus_set()
        return "break"

    @staticmethod
    def _focus_prev(event) -> str:
        event.widget.tk_focusPrev().focus_set()
        return "break"

    def apply_theme(self, p) -> None:
        self.prompt_box.configure(background=p.field, foreground=p.foreground, insertbackground=p.foreground,
                                  selectbackground=p.select_bg, selectforeground=p.select_fg)
        styles.focus_ring(self.prompt_box, p)

    def _on_key(self, _event) -> None:
        if self._hint_error:
            self.show_hint(self._idle_hint(), error=False)

    def _idle_hint(self) -> str:
        if self.branch_of:
            return EDIT_HINT
        if self._in_flight is not None:
            return "Esc stops the answer · Ctrl+Enter queues the next prompt"
        return READY_HINT

    # --- outcomes ---------------------------------------------------------------------------------------------------
    def show_hint(self, text: str, *, error: bool) -> None:
        self._hint_error = error
        self.hint.configure(text=text, style=styles.HINT_STYLE if error else styles.MUTED_STYLE)

    def on_waiting(self, request_id, prompt, position) -> None:
        self._waiting.add(request_id)
        self._sending = None
        self._sent()
        self.show_hint(f"Queued: it is sent when the answer ends ({position} waiting). ✕ above withdraws it.",
                       error=False)

    def on_submitted(self, request_id, backend, backend_label, prompt, started_at) -> None:
        self._in_flight = request_id
        if request_id in self._waiting:
            self._waiting.discard(request_id)  # it waited: the box holds the next prompt by now
        elif self._sending is not None and prompt == self._sending:  # not a Regenerate: the box's prompt went
            self._sending = None
            self._sent()
        self.stop_btn.state(["!disabled"])
        self.send_btn.configure(text=f"Sending {SPINNER[self._spin]}")  # stays clickable: a prompt sent now waits
        if not self.branch_of:
            self.show_hint(f"Waiting for {backend_label}… (Esc stops · Ctrl+Enter queues the next prompt)",
                           error=False)

    def on_rejected(self, request_id, message) -> None:
        self._sending = None
        self.show_hint(message, error=True)

    def on_finished(self, request_id, backend, **_data) -> None:
        if request_id != self._in_flight:
            return
        self._in_flight = None
        self.stop_btn.state(["disabled"])
        self.send_btn.configure(text="Send")
        if not self._hint_error:
            self.show_hint(self._idle_hint(), error=False)

    def on_tick(self, now) -> None:
        if self._in_flight is not None:
            self._spin = (self._spin + 1) % len(SPINNER)
            self.send_btn.configure(text=f"Sending {SPINNER[self._spin]}")
