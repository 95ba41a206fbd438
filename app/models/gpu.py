"""The GPU as the app sees it: state from /ping and /infer, boot progress toward the ETA, idle countdown, keep-warm.

Owned by the GPU controller on the Tk thread; every method takes `now` (time.monotonic()) so tests need no clock.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tlfif_common import api
from tlfif_common.names import BOOT_ETA_SECONDS

UNKNOWN, STOPPED, STARTING, READY, STOPPING = "unknown", "stopped", "starting", "ready", "stopping"

# /ping's GPU states → what the status line says.
_FROM_PING = {
    api.GPU_STOPPED: STOPPED,
    api.GPU_PENDING: STARTING,
    api.GPU_RUNNING: STARTING,  # booted but the engine has not said ready yet
    api.GPU_READY: READY,
    api.GPU_STOPPING: STOPPING,
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
    keep_warm_until_ms: int | None = None  # keep-warm on until this epoch ms (POST /keepwarm said so)

    def apply_ping(self, raw: str, now: float, eta_s: float | None = None) -> bool:
        """A /ping answer (its `eta`: the measured cold start, when it gave one); True when the state changed."""
        if eta_s:
            self.eta_s = float(eta_s)
        state = _FROM_PING.get(raw, UNKNOWN)
        if self.stop_requested_at is not None:
            if state in (STARTING, READY) and now - self.stop_requested_at < STOP_GRACE_S:
                return False
            if state == STOPPED:
                self.stop_requested_at = None
        return self._set(state, now)

    def apply_infer(self, status: str, eta_s: float | None, now: float) -> bool:
        """/infer said `starting` (the GPU boots) or `queued`."""
        if status == api.INFER_STARTING:
            if eta_s:
                self.eta_s = float(eta_s)
            self.stop_requested_at = None
            return self._set(STARTING, now)
        return False

    def apply_stop_requested(self, now: float) -> bool:
        self.stop_requested_at = now
        self.last_job_end = None
        return self._set(STOPPING, now)

    def apply_keep_warm(self, until_ms: int | None, now: float) -> None:
        """Keep-warm switched on (until epoch ms) or off (None). Off restarts the idle countdown from `now`, as the
        watcher's timer, which keep-warm held, counts from then."""
        was_on = self.keep_warm_until_ms is not None
        self.keep_warm_until_ms = until_ms
        if until_ms is None and was_on and self.last_job_end is not None:
            self.last_job_end = now

    def keep_warm_over(self, wall_now: float) -> bool:
        """True when keep-warm is on and its maximum lifetime (epoch seconds `wall_now`) has passed."""
        return self.keep_warm_until_ms is not None and wall_now * 1000 >= self.keep_warm_until_ms

    def apply_job_end(self, idle_minutes: int, now: float) -> None:
        """An AWS job finished: the GPU's idle timer restarts from the job's idle value."""
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
        if self.keep_warm_until_ms is not None:
            return -1.0  # held
        return max(self.idle_minutes * 60 - (now - self.last_job_end), 0.0)

    def text(self, now: float) -> str:
        if self.state == STARTING:
            waited = int(now - self.starting_since) if self.starting_since is not None else 0
            return f"GPU starting… {waited} s of ~{int(self.eta_s)} s"
        if self.state == READY and self.keep_warm_until_ms is not None:
            return f"GPU ready · kept warm until {format_clock(self.keep_warm_until_ms)}"
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


def format_clock(epoch_ms: int) -> str:
    """HH:MM in local time."""
    return datetime.fromtimestamp(epoch_ms / 1000).strftime("%H:%M")


def keep_warm_label(max_minutes: int) -> str:
    """The toggle's text, naming the maximum lifetime: "Keep warm (max 2 h)", "(max 45 min)", "(max 1 h 30 min)"."""
    hours, minutes = divmod(int(max_minutes), 60)
    if not hours:
        bound = f"{minutes} min"
    else:
        bound = f"{hours} h" + (f" {minutes} min" if minutes else "")
    return f"Keep warm (max {bound})"
