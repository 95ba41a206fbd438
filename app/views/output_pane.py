"""OutputPane: read-only ScrolledText; each exchange with time stamp, backend name and latency; the answer grows
in place as job.progress arrives."""
from __future__ import annotations

import time
from tkinter.scrolledtext import ScrolledText

from app.bus import Bus
from app.views import styles


class OutputPane(ScrolledText):
    def __init__(self, parent, bus: Bus):
        super().__init__(parent, wrap="word", height=18, state="disabled", padx=8, pady=6)
        self.tag_configure("header", foreground=styles.MUTED_COLOR, font="TkSmallCaptionFont")
        self.tag_configure("prompt", foreground="#1a4f8b")
        self.tag_configure("answer", foreground="#111111")
        self.tag_configure("meta", foreground=styles.MUTED_COLOR, font="TkSmallCaptionFont")
        self.tag_configure("error", foreground=styles.HINT_COLOR)
        self._answers: dict[str, str] = {}
        bus.subscribe_table({
            "job.submitted": self.on_submitted,
            "job.queued": self.on_queued,
            "job.retrying": self.on_retrying,
            "job.progress": self.on_progress,
            "job.done": self.on_done,
            "job.failed": self.on_failed,
            "settings.warning": self.on_notice,
            "cloud.failed": self.on_notice,
            "auth.failed": self.on_notice,
        })

    # --- editing a read-only widget ---------------------------------------------------------------------------------
    def _edit(self, fn) -> None:
        at_bottom = self.yview()[1] >= 0.999
        self.configure(state="normal")
        try:
            fn()
        finally:
            self.configure(state="disabled")
        if at_bottom:
            self.see("end")

    def _replace(self, start: str, end: str, text: str, tags) -> None:
        self.delete(start, end)
        self.insert(end, text, tags)

    def answer_text(self, request_id: str) -> str:
        """The answer shown for a request (tests read it)."""
        return self.get(f"a0_{request_id}", f"a1_{request_id}")

    def meta_text(self, request_id: str) -> str:
        return self.get(f"m0_{request_id}", f"m1_{request_id}")

    # --- outcomes ---------------------------------------------------------------------------------------------------
    def on_submitted(self, request_id, backend, backend_label, prompt, started_at) -> None:
        stamp = time.strftime("%H:%M:%S", time.localtime(started_at))

        def add():
            self.insert("end", f"[{stamp}] You → {backend_label}\n", "header")
            self.insert("end", prompt + "\n", "prompt")
            answer_at = self.index("end-1c")
            self.insert("end", "\n\n\n")  # the answer line, the meta line, a blank line
            meta_at = self.index(f"{answer_at} + 1 line")
            for name, index, gravity in ((f"a0_{request_id}", answer_at, "left"),
                                         (f"a1_{request_id}", answer_at, "right"),
                                         (f"m0_{request_id}", meta_at, "left"),
                                         (f"m1_{request_id}", meta_at, "right")):
                self.mark_set(name, index)
                self.mark_gravity(name, gravity)
            self.insert(f"m1_{request_id}", f"{backend_label}: waiting…", "meta")

        self._answers[request_id] = ""
        self._edit(add)

    def _set_meta(self, request_id: str, text: str, tag: str = "meta") -> None:
        if request_id in self._answers:
            self._edit(lambda: self._replace(f"m0_{request_id}", f"m1_{request_id}", text, tag))

    def on_queued(self, request_id, backend, status, eta_s, job_id) -> None:
        if status == "starting":
            self._set_meta(request_id, f"GPU starting (~{int(eta_s or 90)} s); the prompt is queued and will run "
                                       "as soon as it is ready…")
        elif status == "queued":
            self._set_meta(request_id, "queued…")
        else:
            self._set_meta(request_id, f"{status}…")

    def on_retrying(self, request_id, backend, message, attempt, delay_s) -> None:
        self._set_meta(request_id, message)

    def on_progress(self, request_id, backend, text, tokens) -> None:
        old = self._answers.get(request_id)
        if old is None or text == old:
            return
        self._answers[request_id] = text

        def grow():
            if text.startswith(old):
                self.insert(f"a1_{request_id}", text[len(old):], "answer")
            else:
                self._replace(f"a0_{request_id}", f"a1_{request_id}", text, "answer")
            self._replace(f"m0_{request_id}", f"m1_{request_id}", "…", "meta")

        self._edit(grow)

    def on_done(self, request_id, backend, text, tokens, latency_ms, model) -> None:
        self.on_progress(request_id, backend, text, tokens)
        parts = [f"latency {latency_ms / 1000:.2f} s"]
        if tokens:
            parts.append(f"{tokens} tokens")
        if model:
            parts.append(model)
        self._set_meta(request_id, " · ".join(parts))
        self._answers.pop(request_id, None)

    def on_notice(self, message) -> None:
        """Warnings that must not scroll away with the status line (a corrupt settings file, a failed sign-in)."""
        stamp = time.strftime("%H:%M:%S")
        self._edit(lambda: self.insert("end", f"[{stamp}] {message}\n\n", "error"))

    def on_failed(self, request_id, backend, message) -> None:
        self._set_meta(request_id, message, "error")
        self._answers.pop(request_id, None)
