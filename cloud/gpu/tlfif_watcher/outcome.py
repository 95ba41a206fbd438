"""A job's result object, built in one place: a `Run` tallies what the engine produced, `outcome` turns it (or the
lack of one) into the `tlfif_common.api.Result` the client reads, for every way a job can end or progress.
"""
from __future__ import annotations

from tlfif_common.api import Result, result_error


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))


class Run:
    """One generation as it happens: the text pieces, when it started and when the first piece came (watcher
    monotonic clock), and the model that answers (the engine's until the generation names its own)."""

    def __init__(self, started: float, model: str | None):
        self.started = started
        self.model = model
        self.pieces: list[str] = []
        self.first_at: float | None = None
        self.tokens: int | None = None  # what the engine reported at the end; None: count the pieces
        self.turns_dropped = 0          # earlier turns the engine left out to fit its context window

    def add(self, piece: str, now: float) -> None:
        if self.first_at is None:
            self.first_at = now
        self.pieces.append(piece)

    @property
    def ttft_ms(self) -> int | None:
        return _ms(self.first_at - self.started) if self.first_at is not None else None


def outcome(job_id: str, status: str, run: Run | None = None, *, now: float | None = None,
            error_code: str | None = None, error_message: str | None = None) -> Result:
    """The result object for `job_id`: the run's text, tokens and timings (latency up to `now`; none while it
    runs), or an empty one when the job never ran (expired, unreadable, dead-lettered)."""
    error = result_error(error_code, error_message)
    if run is None:
        return Result(job_id, status, error=error)
    tokens = run.tokens if run.tokens is not None else len(run.pieces)
    return Result(job_id, status, text="".join(run.pieces), tokens=tokens, ttft_ms=run.ttft_ms,
                  latency_ms=_ms(now - run.started) if now is not None else None, model=run.model, error=error,
                  turns_dropped=run.turns_dropped)
