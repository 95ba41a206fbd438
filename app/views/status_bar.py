"""The status line: GPU state (stopped / starting with a determinate progress bar toward the ETA / ready), the
idle countdown, and the latest notice (sign-in, local cloud, retries, settings warnings)."""
from __future__ import annotations

from tkinter import ttk

from app.bus import Bus
from app.views import styles


class StatusBar(ttk.Frame):
    def __init__(self, parent, bus: Bus):
        super().__init__(parent)
        self.gpu_label = ttk.Label(self, text="GPU state unknown", width=40)
        self.gpu_label.pack(side="left")
        self.progress = ttk.Progressbar(self, mode="determinate", maximum=100, length=180)
        self._progress_shown = False
        self.notice = ttk.Label(self, text="", style=styles.MUTED_STYLE, anchor="e")
        self.notice.pack(side="right", fill="x", expand=True)
        bus.subscribe_table({
            "gpu.state": self.on_gpu_state,
            "auth.signing_in": self.on_auth_message,
            "auth.signed_in": self.on_signed_in,
            "auth.failed": self.on_error,
            "cloud.ready": self.on_cloud_ready,
            "cloud.failed": self.on_error,
            "settings.warning": self.on_error,
            "job.retrying": self.on_retrying,
            "gpu.keep_warm": self.on_keep_warm,
        })

    def show_notice(self, text: str, *, error: bool = False) -> None:
        self.notice.configure(text=text, style=styles.HINT_STYLE if error else styles.MUTED_STYLE)

    def on_gpu_state(self, state, text, progress, idle_left_s) -> None:
        self.gpu_label.configure(text=text)
        if progress >= 0:
            self.progress["value"] = round(progress * 100, 1)
            if not self._progress_shown:
                self.progress.pack(side="left", padx=(6, 6), after=self.gpu_label)
                self._progress_shown = True
        elif self._progress_shown:
            self.progress.pack_forget()
            self._progress_shown = False

    def on_auth_message(self, message) -> None:
        self.show_notice(message)

    def on_signed_in(self, user) -> None:
        self.show_notice(f"Signed in as {user}")

    def on_error(self, message) -> None:
        self.show_notice(message, error=True)

    def on_cloud_ready(self, api_url) -> None:
        self.show_notice(f"Local cloud ready at {api_url}")

    def on_keep_warm(self, on, until_ms, message) -> None:
        if message:
            self.show_notice(message, error=True)

    def on_retrying(self, request_id, backend, message, attempt, delay_s) -> None:
        self.show_notice(message, error=True)
