"""The watcher's second thread: everything that must go on while the job loop waits on the engine.

Every HOUSEKEEPING_TICK_S it checks whether the current job's owner cancelled it (then closes the engine stream);
it heartbeats the current job's lease every lease/3 s, runs the reaper at start and every lease/2 s (a job whose
worker stopped heart-beating goes back to pending; after MAX_ATTEMPTS claims it is dead-lettered and gets an
`error` result here), flushes metrics and samples the GPU every METRICS_INTERVAL_S, and offers the idle-miss pulse
(how far the watcher is from its own stop, or how long the current job has run) to the deadline reporter, which
sends it once a minute. On a stop request it closes the running generation and ends.
"""
from __future__ import annotations

import logging
import threading
from typing import Callable

import redis

from tlfif_common import api
from tlfif_common.workqueue import WorkQueue

from .deadline_metric import DeadlineReporter
from .engines.base import Generation
from .metrics import GpuSampler, Metrics
from .outcome import outcome
from .result_store import ResultStore

log = logging.getLogger("tlfif_watcher")

METRICS_INTERVAL_S = 10.0
HOUSEKEEPING_TICK_S = 0.1


class CurrentJob:
    """The job the loop is running, shared between the loop and the housekeeping thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.job_id: str | None = None
        self.generation: Generation | None = None
        self.cancelled_by_user: str | None = None  # id of the job its owner cancelled
        self.started_at: float | None = None  # when the loop took the current job (watcher monotonic clock)

    def start(self, job_id: str, now: float) -> None:
        with self._lock:
            self.job_id = job_id
            self.started_at = now

    def attach(self, generation: Generation) -> None:
        with self._lock:
            self.generation = generation

    def drop_lease(self) -> None:
        """Stop heart-beating the job: its lease lapses and the reaper redelivers it."""
        with self._lock:
            self.job_id = None

    def end(self) -> None:
        with self._lock:
            self.job_id = None
            self.generation = None
            self.started_at = None

    def running_for(self, now: float) -> float | None:
        """Seconds the current job has run; None between jobs."""
        started = self.started_at
        return None if started is None else now - started

    def current_id(self) -> str | None:
        with self._lock:
            return self.job_id

    def close_generation(self) -> None:
        """Close the running generation (from any thread)."""
        with self._lock:
            generation = self.generation
        if generation is not None:
            generation.close()


class Housekeeper:
    def __init__(self, queue: WorkQueue, results: ResultStore, current: CurrentJob, *, worker_id: str,
                 lease_seconds: float, stop: threading.Event, clock: Callable[[], float],
                 metrics: Metrics | None = None, gpu: GpuSampler | None = None,
                 deadline: DeadlineReporter | None = None,
                 seconds_to_stop: Callable[[float | None], float | None] | None = None):
        self.queue = queue
        self.results = results
        self.current = current
        self.worker_id = worker_id
        self.lease_seconds = lease_seconds
        self.stop = stop
        self.clock = clock
        self.metrics = metrics
        self.gpu = gpu
        self.deadline = deadline
        self.seconds_to_stop = seconds_to_stop  # StopPolicy.seconds_to_stop(job_running_s)

    def run(self) -> None:
        heartbeat_every, reap_every = self.lease_seconds / 3.0, self.lease_seconds / 2.0
        next_heartbeat = next_reap = next_metrics = self.clock()
        while True:
            now = self.clock()
            if self.stop.is_set():
                self.current.close_generation()
                return
            current = self.current.current_id()
            if current is not None and current != self.current.cancelled_by_user:
                self._check_cancel(current)
            if current is not None and now >= next_heartbeat:
                try:
                    self.queue.heartbeat(current, self.worker_id)
                except redis.RedisError as err:
                    log.warning("heartbeat failed", extra={"job_id": current, "error": str(err)})
                next_heartbeat = now + heartbeat_every
            elif current is None:
                next_heartbeat = now  # the claim itself set the lease; beat soon after the next one
            if now >= next_reap:
                self.reap()
                next_reap = now + reap_every
            if now >= next_metrics:
                if self.gpu is not None:
                    self.gpu.sample(self.metrics)
                if self.metrics is not None:
                    self.metrics.flush()
                next_metrics = now + METRICS_INTERVAL_S
            if self.deadline is not None and self.seconds_to_stop is not None:
                self.deadline.tick(self.seconds_to_stop(self.current.running_for(now)))
            self.stop.wait(HOUSEKEEPING_TICK_S)

    def _check_cancel(self, job_id: str) -> None:
        try:
            wanted = self.queue.cancel_requested(job_id)
        except redis.RedisError:
            return
        if wanted:
            log.info("cancel requested: closing the engine stream", extra={"job_id": job_id})
            self.current.cancelled_by_user = job_id
            self.current.close_generation()

    def reap(self) -> None:
        try:
            report = self.queue.reap()
        except redis.RedisError as err:
            log.warning("reaper failed", extra={"error": str(err)})
            return
        for job_id in report.requeued:
            log.warning("job requeued: its worker stopped heart-beating", extra={"job_id": job_id})
        for job_id in report.dead:
            log.error("job dead-lettered after repeated failed attempts", extra={"job_id": job_id})
            self._write_dead_letter(job_id)

    def _write_dead_letter(self, job_id: str) -> None:
        try:
            if not self.queue.claim_final(job_id, self.worker_id):
                return
        except redis.RedisError as err:
            log.warning("could not claim the dead job's final result", extra={"job_id": job_id, "error": str(err)})
            return
        try:
            job = self.queue.load_job(job_id)
        except (redis.RedisError, ValueError, TypeError):
            job = None
        self.results.put_final(self.results.location(job_id, job),
                               outcome(job_id, api.STATUS_ERROR, error_code=api.ERR_DEAD_LETTER,
                                       error_message="the job failed on every attempt"))
