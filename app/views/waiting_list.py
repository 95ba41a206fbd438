"""The prompts sent while an answer was coming: one line each above the PromptBox ("Waiting: …" and ✕ to withdraw
it), hidden when there are none. Shows job.waiting / job.submitted / job.withdrawn; publishes ui.cancel for ✕ (the
job controller withdraws a prompt that still waits: nothing was sent)."""
from __future__ import annotations

from tkinter import ttk

from app.bus import Bus
from app.views import styles
from app.views.tooltip import Tooltip

PREVIEW_CHARS = 80


def preview(prompt: str) -> str:
    """The prompt's first line with text, cut to PREVIEW_CHARS (an ellipsis says there is more)."""
    lines = [ln.strip() for ln in prompt.splitlines() if ln.strip()]
    first = lines[0] if lines else ""
    more = len(lines) > 1 or len(first) > PREVIEW_CHARS
    return (first[:PREVIEW_CHARS - 1].rstrip() if len(first) > PREVIEW_CHARS else first) + ("…" if more else "")


class WaitingRow(ttk.Frame):
    def __init__(self, parent, bus: Bus, request_id: str, prompt: str):
        super().__init__(parent)
        self.request_id = request_id
        self.label = ttk.Label(self, text=f"Waiting, sent when the answer ends: {preview(prompt)}",
                               style=styles.MUTED_STYLE)
        self.label.pack(side="left", fill="x", expand=True)
        self.withdraw_btn = ttk.Button(self, text="✕", width=3,
                                       command=lambda: bus.send("ui.cancel", request_id=request_id))
        self.withdraw_btn.pack(side="right")
        Tooltip(self.withdraw_btn, "Withdraw this prompt (it has not been sent)")


class WaitingList(ttk.Frame):
    def __init__(self, parent, bus: Bus):
        super().__init__(parent)
        self._bus = bus
        self.rows: dict[str, WaitingRow] = {}
        bus.subscribe_table({
            "job.waiting": self.on_waiting,
            "job.submitted": self.on_gone,
            "job.withdrawn": self.on_gone,
            "job.rejected": self.on_gone,
        })

    def on_waiting(self, request_id, prompt, position) -> None:
        row = self.rows[request_id] = WaitingRow(self, self._bus, request_id, prompt)
        row.pack(fill="x")
        self._show()

    def on_gone(self, request_id, **_data) -> None:
        row = self.rows.pop(request_id, None)
        if row is not None:
            row.destroy()
            self._show()

    def _show(self) -> None:
        if self.rows:
            self.grid()
        else:
            self.grid_remove()

    def texts(self) -> list[str]:
        """What each row says, top to bottom (tests read it)."""
        return [row.label["text"] for row in self.rows.values()]
