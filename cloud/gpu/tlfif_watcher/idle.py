"""The idle timer (RQL 5.6): after the last job ends it counts down from that job's `idle` minutes; before any
job, from the default. A "minute" is configurable so tests and the local cloud can shorten it.
"""
from __future__ import annotations

import time
from typing import Callable


class IdleTimer:
    def __init__(self, minute_seconds: float, default_minutes: float, clock: Callable[[], float] = time.monotonic):
        self.minute_seconds = minute_seconds
        self.clock = clock
        self.minutes = default_minutes  # the latest job's idle value
        self.busy = False
        self.deadline: float | None = clock() + default_minutes * minute_seconds

    def job_started(self) -> None:
        self.busy = True

    def job_finished(self, idle_minutes: float | None = None) -> None:
        if idle_minutes is not None:
            self.minutes = idle_minutes
        self.busy = False
        self.deadline = self.clock() + self.minutes * self.minute_seconds

    def expired(self) -> bool:
        return not self.busy and self.deadline is not None and self.clock() >= self.deadline

    def remaining(self) -> float | None:
        return None if self.deadline is None else max(0.0, self.deadline - self.clock())

    def disarm(self) -> None:
        """No self-stop until the next job ends (e.g. no IMDS on a developer machine)."""
        self.deadline = None

    def restart(self) -> None:
        self.deadline = self.clock() + self.minutes * self.minute_seconds
