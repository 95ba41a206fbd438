"""The GPU as the app sees it: state from /ping and /infer, boot progress toward the ETA, idle countdown.

Owned by the GPU controller on the Tk thread; every method takes `now` (time.monotonic()) so tests need no clock.
"""
from __future__ import annotations

from dataclasses import dataclass

from tlfif_common.names import BOOT_ETA_SECONDS

UNKNOWN, STOPPED, STARTING, READY, STOPPING = "unknown", "stopped", "starting", "ready", "stopping"

# /ping's raw instance states → what the status line says.
_FROM_PING = {
    "stopped": STOPPED,
    "pending": STARTING,
    "running": STARTING,  # booted but the engine has not said ready yet
    "ready": READY,
    "stopping": STOPPING,
    "shutting-down": STOPPING,
}
STOP_GRACE_S = 5.0  # after Stop GPU, a stale "ready" ping answered before the stop is ignored this long


@dataclass
class GpuModel:
    state: str = UNKNOWN
    eta_s: float = BOOT_ETA_SECONDS
    starting_since: float | None = None
    stop_requested_at: float | None = None
    idle_minutes: int | None = None   # the idle value of the latest job that ended
    last_job_end: float | None = None
    error: str = ""

    def apply_ping(self, raw: str, now: float) -> bool:
        """A /ping answer; True when the state changed."""
        state = _FROM_PING.get(raw, UNKNOWN)
        if self.stop_requested_at is not None:
            if state in (STARTING, READY) and now - self.stop_requested_at < STOP_GRACE_S:
                return False
            if state == STOPPED:
                self.stop_requested_at = None
        return self._set(state, now)

    def apply_infer(self, status: str, eta_s: float | None, now: float) -> bool:
        """/infer said `starting` (the GPU boots) or `queued`."""
        if status == "starting":
            if eta_s:
                self.eta_s = float(eta_s)
            self.stop_requested_at = None
            return self._set(STARTING, now)
        return False

    def apply_stop_requested(self, now: float) -> bool:
        self.stop_requested_at = now
        self.last_job_end = None
        return self._set(STOPPING, now)

    def apply_job_end(self, idle_minutes: int, now: float) -> None:
        """An AWS job finished: the GPU's idle timer restarts from the job's idle value (RQL 5.6)."""
        self.idle_minutes = idle_minutes
        self.last_job_end = now
        if self.state in (UNKNOWN, STARTING):
            self._set(READY, now)

    def _set(self, state: str, now: float) -> bool:
        if state == self.state:
            return False
        if state == STARTING:
            self.starting_since = now
        elif state != STARTING:
            self.starting_since = None
        if state in (STOPPED, STOPPING):
            self.last_job_end = None
        self.state = state
        return True

    def progress(self, now: float) -> float:
        """0..1 toward the boot ETA while starting (never 1 before the GPU says ready); -1 otherwise."""
        if self.state != STARTING or self.starting_since is None:
            return -1.0
        return min(max(now - self.starting_since, 0.0) / max(self.eta_s, 1.0), 0.99)

    def idle_left_s(self, now: float) -> float:
        """Seconds until the GPU's idle auto-stop, while ready and after a job of ours ended; -1 when unknown."""
        if self.state != READY or self.last_job_end is None or self.idle_minutes is None:
            return -1.0
        return max(self.idle_minutes * 60 - (now - self.last_job_end), 0.0)

    def text(self, now: float) -> str:
        if self.state == STARTING:
            waited = int(now - self.starting_since) if self.starting_since is not None else 0
            return f"GPU starting… {waited} s of ~{int(self.eta_s)} s"
        if self.state == READY:
            left = self.idle_left_s(now)
            return "GPU ready" + (f" · auto-stop in {format_mm_ss(left)}" if left >= 0 else "")
        if self.state == STOPPING:
            return "GPU stopping…"
        if self.state == STOPPED:
            return "GPU stopped"
        return "GPU state unknown" + (f" ({self.error})" if self.error else "")


def format_mm_ss(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"
