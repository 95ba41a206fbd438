"""The job loop: claim → generate (progressive result writes, heartbeats) → final result → ack.

Guarantees:
- a claimed job always ends in a final result (`done`, or `error` with a code) before it is acknowledged, unless
  the watcher is told to stop: then the job is released back to pending untouched — except a job the user's
  Stop GPU covers (`WorkQueue.stopped_by_user`: sent before the last POST /stop), which ends `cancelled` "GPU
  stopped" with the text so far, as do the queued jobs it covers (ended as the watcher stops, and at its next
  start for those queued while it was down). A crash (no stop) leaves the job to the reaper's redelivery;
- at most one final result per job: `WorkQueue.claim_final` elects the writer; a redelivered job whose final result
  exists is only acknowledged;
- the loop never blocks for long (claim timeout 1 s), so stop requests and the stop policy are served promptly.

Its neighbours: `stop_policy` (idle, keep-warm, maximum lifetime: when the instance stops itself, checked between
jobs), `housekeeping` (a second thread: heartbeats, the owner's cancel, the reaper and dead letters, metrics) and
`outcome` (the one builder of a job's result object). Once the engine answers the watcher writes its ready mark
and records how long this boot took (`boot_time`, the cold-start ETA /ping answers). When a job's owner cancels it
(POST /cancel/{id}) the housekeeper closes the engine stream and the job ends `cancelled` with the text so far; a
job cancelled before it started never runs.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from typing import Callable

import redis

from tlfif_common import api
from tlfif_common.jobs import Job
from tlfif_common.workqueue import Claim, WorkQueue

from . import boot_time
from .config import WatcherConfig
from .deadline_metric import DeadlineReporter
from .engines.base import Engine, EngineError, Generation
from .housekeeping import CurrentJob, Housekeeper
from .idle import IdleTimer
from .instance import InstanceControl
from .metrics import GpuSampler, Metrics
from .outcome import Run, outcome
from .result_store import ProgressWriter, ResultStore
from .stop_policy import StopPolicy

log = logging.getLogger("tlfif_watcher")

CLAIM_TIMEOUT_S = 1.0
PROGRESS_INTERVAL_S = 0.25  # the result object is rewritten at most this often while generating
READY_BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 5.0)
REDIS_RETRY_S = 1.0
SWEEP_CLAIM_S = 0.05  # ending the jobs a Stop GPU covers: the queue is drained, not waited on


def new_worker_id() -> str:
    return f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:6]}"


class Watcher:
    def __init__(self, config: WatcherConfig, *, redis_client: redis.Redis, engine: Engine, s3,
                 metrics: Metrics | None = None, instance: InstanceControl | None = None,
                 gpu: GpuSampler | None = None, deadline: DeadlineReporter | None = None,
                 worker_id: str | None = None,
                 clock: Callable[[], float] = time.monotonic, wall_clock: Callable[[], float] = time.time):
        self.config = config
        self.queue = WorkQueue(redis_client, lease_seconds=config.lease_seconds)
        self.engine = engine
        self.results = ResultStore(s3, config.responses_bucket)
        self.metrics = metrics
        self.instance = instance
        self.worker_id = worker_id or new_worker_id()
        self.clock = clock
        self.claim_timeout = CLAIM_TIMEOUT_S  # tests shorten it so a stop is served sooner
        self.idle = IdleTimer(config.minute_seconds, config.default_idle_minutes, clock)
        self.stop_policy = StopPolicy(self.queue, self.idle, instance, wall_clock, scale=config.scale)
        self.instance_id: str | None = None
        self.ready = False
        self.stop_reason: str | None = None
        self.exit_reason: str | None = None
        self.jobs_done = 0
        self._stop = threading.Event()
        self.current = CurrentJob()
        self.housekeeper = Housekeeper(self.queue, self.results, self.current, worker_id=self.worker_id,
                                       lease_seconds=config.lease_seconds, stop=self._stop, clock=clock,
                                       metrics=metrics, gpu=gpu, deadline=deadline,
                                       seconds_to_stop=self.stop_policy.seconds_to_stop)
        self._housekeeping_thread: threading.Thread | None = None

    # --- control ---------------------------------------------------------------------------------------------
    def request_stop(self, reason: str = "stop requested") -> None:
        """Ask the loop to stop: the current job goes back to pending. Safe from a signal handler (only sets an
        event; the housekeeping thread cancels the generation)."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # --- main loop -------------------------------------------------------------------------------------------
    def run(self) -> int:
        log.info("watcher starting", extra={"worker_id": self.worker_id, "engine": self.engine.name,
                                            "lease_s": self.config.lease_seconds})
        if self.instance is not None:
            self.instance_id = self.instance.instance_id()
        self._housekeeping_thread = threading.Thread(target=self.housekeeper.run, name="watcher-housekeeping",
                                                     daemon=True)
        self._housekeeping_thread.start()
        ready_attempt = 0
        try:
            self._end_jobs_stopped_by_user()  # queued while the GPU was down, before the user's Stop GPU
            while not self.stopping:
                if not self.ready:
                    if self._try_ready():
                        continue
                    if self._stop_due():
                        return 0
                    self._stop.wait(READY_BACKOFF_S[min(ready_attempt, len(READY_BACKOFF_S) - 1)])
                    ready_attempt += 1
                    continue
                try:
                    claim = self.queue.claim(self.worker_id, timeout=self.claim_timeout)
                except redis.RedisError as err:
                    log.warning("redis unavailable", extra={"error": str(err)})
                    if self._stop_due():  # no queue, no work: the instance must still stop (cost)
                        return 0
                    self._stop.wait(REDIS_RETRY_S)
                    continue
                if claim is None:
                    if self._stop_due():
                        return 0
                    continue
                if self.stopping:
                    self._release(claim.job_id)
                    break
                self._handle(claim)
            self._end_jobs_stopped_by_user()
            log.info("watcher stopped", extra={"reason": self.stop_reason})
            self.exit_reason = self.stop_reason
            return 0
        finally:
            self._stop.set()
            if self._housekeeping_thread is not None:
                self._housekeeping_thread.join(timeout=5)
            if self.metrics is not None:
                self.metrics.flush()

    def _try_ready(self) -> bool:
        if not self.engine.ready():
            return False
        self.ready = True
        log.info("engine answers", extra={"engine": self.engine.name, "model": self.engine.model})
        if self.instance is not None:
            self.instance_id = self.instance_id or self.instance.instance_id()
            if self.instance.mark_ready(self.instance_id):
                self._record_boot()
        return True

    def _record_boot(self) -> None:
        try:
            started_ms = self.queue.gpu_started_at()
        except redis.RedisError as err:  # the ETA is a hint: readiness never waits for it
            log.warning("boot time not recorded: redis unavailable", extra={"error": str(err)})
            return
        boot_time.record_boot(self.instance.ssm, started_ms)

    def _stop_due(self) -> bool:
        """True when the stop policy stopped the instance (the loop then exits)."""
        reason = self.stop_policy.check(self.ready)
        if reason is None:
            return False
        self.exit_reason = reason
        return True

    # --- one job ---------------------------------------------------------------------------------------------
    def _handle(self, claim: Claim) -> None:
        job_id = claim.job_id
        self.idle.job_started()
        self.current.start(job_id, self.clock())
        idle_minutes = claim.job.idle if claim.job is not None else None
        try:
            if self.queue.has_final(job_id):
                existing = self._read(self.results.location(job_id, claim.job))
                if existing is not None and existing.final:
                    log.info("redelivered job already has its final result: acknowledging only",
                             extra={"job_id": job_id, "attempt": claim.attempt})
                    self.queue.ack(job_id)
                    return
                # The worker that won claim_final died before writing (its lease expired, or we would not hold
                # the job): nobody will write this final result, so take the job over.
                log.warning("final marker without a final result: regenerating", extra={"job_id": job_id})
                self.queue.drop_final(job_id)
            if claim.job is None:
                self._fail_unreadable(job_id)
                return
            if self.queue.cancel_requested(job_id):
                log.info("job cancelled by its owner before it started", extra={"job_id": job_id})
                now = self.clock()
                self._finish(job_id, self.results.location(job_id, claim.job),
                             outcome(job_id, api.STATUS_CANCELLED, Run(now, self.engine.model), now=now))
                return
            self._generate(claim.job, claim.attempt)
        except redis.RedisError as err:
            # Leave the job in processing: its lease lapses and the reaper hands it out again.
            log.error("redis failed during a job; the reaper will redeliver it",
                      extra={"job_id": job_id, "error": str(err)})
        finally:
            self.current.end()
            self.idle.job_finished(idle_minutes)

    def _read(self, where: tuple[str, str]) -> api.Result | None:
        try:
            return self.results.get(where)
        except Exception as err:  # an unreadable object counts as "no final result"
            log.warning("could not read the result object", extra={"key": where[1], "error": str(err)})
            return None

    def _fail_unreadable(self, job_id: str) -> None:
        if self.queue.job_exists(job_id):
            code, message = api.ERR_BAD_JOB, "the job message could not be read"
        else:
            code, message = api.ERR_EXPIRED, "the job expired before a worker could take it"
        log.warning("job cannot be run", extra={"job_id": job_id, "code": code})
        self._finish(job_id, self.results.location(job_id),
                     outcome(job_id, api.STATUS_ERROR, error_code=code, error_message=message))

    def _generate(self, job: Job, attempt: int) -> None:
        where = self.results.location(job.id, job)
        run = Run(self.clock(), self.engine.model)
        log.info("job started", extra={"job_id": job.id, "attempt": attempt, "engine": self.engine.name,
                                       "queued_ms": max(0, int(time.time() * 1000) - job.timestamp),
                                       "adapter_uri": job.adapter_uri})
        last_write = run.started
        gen: Generation | None = None
        try:
            gen = self.engine.generate(job)
            run.model, run.turns_dropped = gen.model, gen.turns_dropped
            self.current.attach(gen)
            if self.stopping or self.current.cancelled_by_user == job.id:  # asked while the engine was starting
                gen.close()
            progress = ProgressWriter(self.results, where)
            try:
                for piece in gen:
                    now = self.clock()
                    run.add(piece, now)
                    if len(run.pieces) == 1 or now - last_write >= PROGRESS_INTERVAL_S:  # the first token at once
                        last_write = now
                        progress.submit(outcome(job.id, api.STATUS_RUNNING, run))
            finally:
                progress.close()  # before any final write below: the final result is always the last write
        except EngineError as err:
            log.error("engine error", extra={"job_id": job.id, "code": err.code, "error": str(err)})
            self._finish(job.id, where, outcome(job.id, api.STATUS_ERROR, run, now=self.clock(),
                                                error_code=err.code, error_message=str(err)))
            return
        except Exception as err:  # a bug or an unexpected library error: the client must still get an answer
            log.exception("unexpected failure while generating", extra={"job_id": job.id})
            self._finish(job.id, where, outcome(job.id, api.STATUS_ERROR, run, now=self.clock(),
                                                error_code=api.ERR_ENGINE,
                                                error_message=f"internal error: {type(err).__name__}"))
            return
        if gen.cancelled and self.current.cancelled_by_user == job.id and not self.stopping:
            result = outcome(job.id, api.STATUS_CANCELLED, run, now=self.clock())
            log.info("generation cancelled by its owner", extra={"job_id": job.id, "tokens": result.tokens,
                                                                 "latency_ms": result.latency_ms})
            self._finish(job.id, where, result)
            return
        if gen.cancelled and self._stopped_by_user(job):
            result = self._gpu_stopped(job.id, run)
            log.info("generation stopped by the user's Stop GPU", extra={"job_id": job.id, "tokens": result.tokens})
            self._finish(job.id, where, result)
            return
        if gen.cancelled:
            log.info("generation cancelled: job back to pending", extra={"job_id": job.id,
                                                                         "reason": self.stop_reason})
            self._release(job.id)
            return
        run.tokens = gen.tokens
        result = outcome(job.id, api.STATUS_DONE, run, now=self.clock())
        if self._finish(job.id, where, result):
            self.jobs_done += 1
            if self.metrics is not None:
                self.metrics.job(result.latency_ms, result.tokens, result.ttft_ms)
            log.info("job done", extra={"job_id": job.id, "tokens": result.tokens, "ttft_ms": result.ttft_ms,
                                        "latency_ms": result.latency_ms, "model": result.model})

    def _finish(self, job_id: str, where: tuple[str, str], result: api.Result) -> bool:
        """Write the one final result (if we win claim_final), then acknowledge. True when we wrote it."""
        if not self.queue.claim_final(job_id, self.worker_id):
            log.warning("another worker owns this job's final result: not writing",
                        extra={"job_id": job_id, "status": result.status})
            self.queue.ack(job_id)
            return False
        if not self.results.put_final(where, result):
            # Give the final marker back and do not ack: the lease lapses and the reaper redelivers the job.
            self.queue.drop_final(job_id)
            self.current.drop_lease()
            return False
        self.queue.ack(job_id)
        return True

    def _gpu_stopped(self, job_id: str, run: Run) -> api.Result:
        return outcome(job_id, api.STATUS_CANCELLED, run, now=self.clock(), error_code=api.ERR_GPU_STOPPED,
                       error_message=api.GPU_STOPPED_MESSAGE)

    def _stopped_by_user(self, job: Job) -> bool:
        """The watcher is stopping because the user stopped the GPU before this job ended (a crash or an operator's
        restart is not: the job is redelivered)."""
        if not self.stopping:
            return False
        try:
            return self.queue.stopped_by_user(job)
        except redis.RedisError as err:
            log.warning("could not read the Stop GPU mark: the job goes back to pending", extra={"error": str(err)})
            return False

    def _end_jobs_stopped_by_user(self) -> None:
        """End every queued job the user's last Stop GPU covers (oldest first); the first newer one (a prompt sent
        after the stop, which restarts the GPU) and those behind it stay queued."""
        try:
            if self.queue.user_stopped_at() is None:
                return
            while True:
                claim = self.queue.claim(self.worker_id, timeout=SWEEP_CLAIM_S)
                if claim is None:
                    return
                if claim.job is None or not self.queue.stopped_by_user(claim.job):
                    self._release(claim.job_id)
                    return
                log.info("queued job ended by the user's Stop GPU", extra={"job_id": claim.job_id})
                self._finish(claim.job_id, self.results.location(claim.job_id, claim.job),
                             self._gpu_stopped(claim.job_id, Run(self.clock(), self.engine.model)))
        except redis.RedisError as err:
            log.warning("could not end the jobs the Stop GPU covers", extra={"error": str(err)})

    def _release(self, job_id: str) -> None:
        try:
            self.queue.release(job_id)
            log.info("job released to pending", extra={"job_id": job_id})
        except redis.RedisError as err:
            log.error("could not release the job; the reaper will", extra={"job_id": job_id, "error": str(err)})
