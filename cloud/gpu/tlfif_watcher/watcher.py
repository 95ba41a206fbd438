"""The watcher loop: claim → generate (progressive result writes, heartbeats) → final result → ack.

Guarantees:
- a claimed job always ends in a final result (`done`, or `error` with a code) before it is acknowledged, unless
  the watcher is told to stop: then the job is released back to pending untouched;
- at most one final result per job: `WorkQueue.claim_final` elects the writer; a redelivered job whose final result
  exists is only acknowledged;
- the loop never blocks for long (claim timeout 1 s), so stop requests and the idle timer are served promptly.

A housekeeping thread heartbeats the current job's lease (every lease/3 s), runs the reaper (at start and every
lease/2 s), flushes metrics and samples the GPU; on a stop request it cancels the current generation, and when the
job's owner cancels it (POST /cancel/{id} sets a flag in the queue) it closes the engine stream: the job then ends
with a `cancelled` final result holding the text generated so far. A job cancelled before it started never runs.

Keep-warm (POST /keepwarm sets `WorkQueue.keep_warm_until`), checked with the idle timer between jobs: while its
`until` lies ahead and the engine is ready, the idle timer is held (restarted on every check, so once keep-warm is
switched off it counts the job's idle minutes from then); once `until` has passed — the maximum lifetime, a hard
bound — the instance stops at once unless a job is waiting, and the mark is cleared so that the next start is not
stopped by it. An unreachable Redis counts as "keep-warm off": the plain idle timer then decides.
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

from tlfif_common import results
from tlfif_common.jobs import Job, job_key
from tlfif_common.workqueue import Claim, WorkQueue, final_key

from .config import WatcherConfig
from .engines.base import Engine, EngineError, Generation
from .idle import IdleTimer
from .instance import NO_IMDS, STOPPED, InstanceControl
from .metrics import GpuSampler, Metrics
from .result_store import ProgressWriter, ResultStore

log = logging.getLogger("tlfif_watcher")

CLAIM_TIMEOUT_S = 1.0
PROGRESS_INTERVAL_S = 0.25  # the result object is rewritten at most this often while generating
METRICS_INTERVAL_S = 10.0
READY_BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 5.0)
REDIS_RETRY_S = 1.0
HOUSEKEEPING_TICK_S = 0.1
KEEP_WARM_OFF, KEEP_WARM_HOLD, KEEP_WARM_EXPIRED = "off", "hold", "expired"


def new_worker_id() -> str:
    return f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:6]}"


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))


class Watcher:
    def __init__(self, config: WatcherConfig, *, redis_client: redis.Redis, engine: Engine, s3,
                 metrics: Metrics | None = None, instance: InstanceControl | None = None,
                 gpu: GpuSampler | None = None, worker_id: str | None = None,
                 clock: Callable[[], float] = time.monotonic, wall_clock: Callable[[], float] = time.time):
        self.config = config
        self.redis = redis_client
        self.queue = WorkQueue(redis_client, lease_seconds=config.lease_seconds)
        self.engine = engine
        self.results = ResultStore(s3, config.responses_bucket)
        self.metrics = metrics
        self.instance = instance
        self.gpu = gpu
        self.worker_id = worker_id or new_worker_id()
        self.clock = clock
        self.wall_clock = wall_clock  # epoch seconds: keep-warm's `until` is an epoch time set by the router
        self._keep_warm = KEEP_WARM_OFF  # what the last idle check saw (for the log lines at each change)
        self.claim_timeout = CLAIM_TIMEOUT_S  # tests shorten it so a stop is served sooner
        self.idle = IdleTimer(config.minute_seconds, config.default_idle_minutes, clock)
        self.instance_id: str | None = None
        self.ready = False
        self.stop_reason: str | None = None
        self.exit_reason: str | None = None
        self.jobs_done = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._current_id: str | None = None
        self._current_gen: Generation | None = None
        self._cancelled_by_user: str | None = None  # id of the job its owner cancelled, set by housekeeping
        self._housekeeper: threading.Thread | None = None

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

    def cancel_current(self) -> None:
        """Close the running generation (from any thread)."""
        with self._lock:
            gen = self._current_gen
        if gen is not None:
            gen.close()

    # --- main loop -------------------------------------------------------------------------------------------
    def run(self) -> int:
        log.info("watcher starting", extra={"worker_id": self.worker_id, "engine": self.engine.name,
                                            "lease_s": self.config.lease_seconds})
        if self.instance is not None:
            self.instance_id = self.instance.instance_id()
        self._housekeeper = threading.Thread(target=self._housekeeping, name="watcher-housekeeping", daemon=True)
        self._housekeeper.start()
        ready_attempt = 0
        try:
            while not self.stopping:
                if not self.ready:
                    if self._try_ready():
                        continue
                    if self._idle_expired():
                        return 0
                    self._stop.wait(READY_BACKOFF_S[min(ready_attempt, len(READY_BACKOFF_S) - 1)])
                    ready_attempt += 1
                    continue
                try:
                    claim = self.queue.claim(self.worker_id, timeout=self.claim_timeout)
                except redis.RedisError as err:
                    log.warning("redis unavailable", extra={"error": str(err)})
                    if self._idle_expired():  # no queue, no work: the instance must still stop (cost)
                        return 0
                    self._stop.wait(REDIS_RETRY_S)
                    continue
                if claim is None:
                    if self._idle_expired():
                        return 0
                    continue
                if self.stopping:
                    self._release(claim.job_id)
                    break
                self._handle(claim)
            log.info("watcher stopped", extra={"reason": self.stop_reason})
            self.exit_reason = self.stop_reason
            return 0
        finally:
            self._stop.set()
            if self._housekeeper is not None:
                self._housekeeper.join(timeout=5)
            if self.metrics is not None:
                self.metrics.flush()

    def _try_ready(self) -> bool:
        if not self.engine.ready():
            return False
        self.ready = True
        log.info("engine answers", extra={"engine": self.engine.name, "model": self.engine.model})
        if self.instance is not None:
            self.instance_id = self.instance_id or self.instance.instance_id()
            self.instance.mark_ready(self.instance_id)
        return True

    def _idle_expired(self) -> bool:
        """True when the idle time is up and the instance was told to stop (the loop then exits)."""
        keep_warm = self._check_keep_warm()
        if keep_warm == KEEP_WARM_HOLD:
            self.idle.restart()
            return False
        if keep_warm != KEEP_WARM_EXPIRED and not self.idle.expired():
            return False
        if self.ready:  # with an engine that never came up, pending jobs must not keep a GPU running
            try:
                if self.queue.depth() > 0:  # a job arrived just now: serve it first
                    return False
            except redis.RedisError:
                pass
        if keep_warm == KEEP_WARM_EXPIRED:
            log.info("keep-warm maximum lifetime reached: stopping", extra={"engine_ready": self.ready})
            self._clear_keep_warm()  # consumed: a later start must not be stopped by it
            reason = "keep-warm limit"
        else:
            log.info("idle time is up", extra={"idle_minutes": self.idle.minutes, "engine_ready": self.ready})
            reason = "idle stop"
        outcome = self.instance.stop_self() if self.instance is not None else NO_IMDS
        if outcome == NO_IMDS:
            self.idle.disarm()  # nothing to stop (a developer machine): keep serving
            return False
        if outcome != STOPPED:
            self.idle.restart()  # StopInstances failed: try again after another idle period
            return False
        self.exit_reason = reason
        return True

    def _check_keep_warm(self) -> str:
        """KEEP_WARM_HOLD while keep-warm's `until` lies ahead (and the engine answers: a GPU whose engine never
        came up is not worth keeping), KEEP_WARM_EXPIRED once it has passed, KEEP_WARM_OFF otherwise."""
        try:
            until_ms = self.queue.keep_warm_until()
        except redis.RedisError as err:
            log.debug("keep-warm unknown: redis unavailable", extra={"error": str(err)})
            until_ms = None
        if until_ms is None:
            state = KEEP_WARM_OFF
        elif until_ms > int(self.wall_clock() * 1000):
            state = KEEP_WARM_HOLD if self.ready else KEEP_WARM_OFF
        else:
            state = KEEP_WARM_EXPIRED
        if state != self._keep_warm:
            if state == KEEP_WARM_HOLD:
                log.info("keep-warm on: idle timer held", extra={"until_ms": until_ms})
            elif state == KEEP_WARM_OFF and self._keep_warm == KEEP_WARM_HOLD:
                log.info("keep-warm off: the idle timer counts from now", extra={"idle_minutes": self.idle.minutes})
            self._keep_warm = state
        return state

    def _clear_keep_warm(self) -> None:
        try:
            self.queue.clear_keep_warm()
        except redis.RedisError as err:  # it expires 60 s after its `until` anyway
            log.warning("could not clear the keep-warm mark", extra={"error": str(err)})

    # --- one job ---------------------------------------------------------------------------------------------
    def _handle(self, claim: Claim) -> None:
        job_id = claim.job_id
        self.idle.job_started()
        with self._lock:
            self._current_id = job_id
        idle_minutes = claim.job.idle if claim.job is not None else None
        try:
            if self.queue.has_final(job_id):
                where = self.results.location(job_id, claim.job)
                if results.is_final(self._read(where)):
                    log.info("redelivered job already has its final result: acknowledging only",
                             extra={"job_id": job_id, "attempt": claim.attempt})
                    self.queue.ack(job_id)
                    return
                # The worker that won claim_final died before writing (its lease expired, or we would not hold
                # the job): nobody will write this final result, so take the job over.
                log.warning("final marker without a final result: regenerating", extra={"job_id": job_id})
                self.redis.delete(final_key(job_id))
            if claim.job is None:
                self._fail_unreadable(job_id)
                return
            if self.queue.cancel_requested(job_id):
                log.info("job cancelled by its owner before it started", extra={"job_id": job_id})
                doc = results.result_doc(job_id, results.STATUS_CANCELLED, latency_ms=0, model=self.engine.model)
                self._finish(job_id, self.results.location(job_id, claim.job), doc)
                return
            self._generate(claim.job, claim.attempt)
        except redis.RedisError as err:
            # Leave the job in processing: its lease lapses and the reaper hands it out again.
            log.error("redis failed during a job; the reaper will redeliver it",
                      extra={"job_id": job_id, "error": str(err)})
        finally:
            with self._lock:
                self._current_id = None
                self._current_gen = None
            self.idle.job_finished(idle_minutes)

    def _read(self, where: tuple[str, str]) -> dict | None:
        try:
            return self.results.get(where)
        except Exception as err:  # an unreadable object counts as "no final result"
            log.warning("could not read the result object", extra={"key": where[1], "error": str(err)})
            return None

    def _fail_unreadable(self, job_id: str) -> None:
        if self.redis.exists(job_key(job_id)):
            code, message = results.ERR_BAD_JOB, "the job message could not be read"
        else:
            code, message = results.ERR_EXPIRED, "the job expired before a worker could take it"
        log.warning("job cannot be run", extra={"job_id": job_id, "code": code})
        doc = results.result_doc(job_id, results.STATUS_ERROR, error_code=code, error_message=message)
        self._finish(job_id, self.results.location(job_id), doc)

    def _generate(self, job: Job, attempt: int) -> None:
        where = self.results.location(job.id, job)
        started = self.clock()
        log.info("job started", extra={"job_id": job.id, "attempt": attempt, "engine": self.engine.name,
                                       "queued_ms": max(0, int(time.time() * 1000) - job.timestamp),
                                       "adapter_uri": job.adapter_uri})
        pieces: list[str] = []
        first_at: float | None = None
        last_write = started
        model = self.engine.model
        gen: Generation | None = None
        try:
            gen = self.engine.generate(job)
            model = gen.model
            with self._lock:
                self._current_gen = gen
            if self.stopping or self._cancelled_by_user == job.id:  # asked while the engine was starting
                gen.close()
            progress = ProgressWriter(self.results, where)
            try:
                for piece in gen:
                    now = self.clock()
                    if first_at is None:
                        first_at = now
                    pieces.append(piece)
                    if len(pieces) == 1 or now - last_write >= PROGRESS_INTERVAL_S:  # the first token at once
                        last_write = now
                        progress.submit(results.result_doc(
                            job.id, results.STATUS_RUNNING, text="".join(pieces), tokens=len(pieces),
                            ttft_ms=_ms(first_at - started), model=model, turns_dropped=gen.turns_dropped))
            finally:
                progress.close()  # before any final write below: the final result is always the last write
        except EngineError as err:
            log.error("engine error", extra={"job_id": job.id, "code": err.code, "error": str(err)})
            doc = results.result_doc(job.id, results.STATUS_ERROR, text="".join(pieces), tokens=len(pieces),
                                     ttft_ms=_ms(first_at - started) if first_at is not None else None,
                                     latency_ms=_ms(self.clock() - started), model=model,
                                     error_code=err.code, error_message=str(err))
            self._finish(job.id, where, doc)
            return
        except Exception as err:  # a bug or an unexpected library error: the client must still get an answer
            log.exception("unexpected failure while generating", extra={"job_id": job.id})
            doc = results.result_doc(job.id, results.STATUS_ERROR, text="".join(pieces), tokens=len(pieces),
                                     latency_ms=_ms(self.clock() - started), model=model,
                                     error_code=results.ERR_ENGINE,
                                     error_message=f"internal error: {type(err).__name__}")
            self._finish(job.id, where, doc)
            return
        if gen.cancelled and self._cancelled_by_user == job.id and not self.stopping:
            latency_ms = _ms(self.clock() - started)
            log.info("generation cancelled by its owner", extra={"job_id": job.id, "tokens": len(pieces),
                                                                 "latency_ms": latency_ms})
            doc = results.result_doc(job.id, results.STATUS_CANCELLED, text="".join(pieces), tokens=len(pieces),
                                     ttft_ms=_ms(first_at - started) if first_at is not None else None,
                                     latency_ms=latency_ms, model=model)
            self._finish(job.id, where, doc)
            return
        if gen.cancelled:
            log.info("generation cancelled: job back to pending", extra={"job_id": job.id,
                                                                         "reason": self.stop_reason})
            self._release(job.id)
            return
        latency_ms = _ms(self.clock() - started)
        ttft_ms = _ms(first_at - started) if first_at is not None else None
        tokens = gen.tokens if gen.tokens is not None else len(pieces)
        doc = results.result_doc(job.id, results.STATUS_DONE, text="".join(pieces), tokens=tokens,
                                 ttft_ms=ttft_ms, latency_ms=latency_ms, model=model,
                                 turns_dropped=gen.turns_dropped)
        if self._finish(job.id, where, doc):
            self.jobs_done += 1
            if self.metrics is not None:
                self.metrics.job(latency_ms, tokens, ttft_ms)
            log.info("job done", extra={"job_id": job.id, "tokens": tokens, "ttft_ms": ttft_ms,
                                        "latency_ms": latency_ms, "model": model})

    def _finish(self, job_id: str, where: tuple[str, str], doc: dict) -> bool:
        """Write the one final result (if we win claim_final), then acknowledge. True when we wrote it."""
        if not self.queue.claim_final(job_id, self.worker_id):
            log.warning("another worker owns this job's final result: not writing",
                        extra={"job_id": job_id, "status": doc["status"]})
            self.queue.ack(job_id)
            return False
        if not self.results.put_final(where, doc):
            # Give the final marker back and do not ack: the lease lapses and the reaper redelivers the job.
            self.redis.delete(final_key(job_id))
            with self._lock:
                self._current_id = None
            return False
        self.queue.ack(job_id)
        return True

    def _release(self, job_id: str) -> None:
        try:
            self.queue.release(job_id)
            log.info("job released to pending", extra={"job_id": job_id})
        except redis.RedisError as err:
            log.error("could not release the job; the reaper will", extra={"job_id": job_id, "error": str(err)})

    # --- housekeeping thread ---------------------------------------------------------------------------------
    def _housekeeping(self) -> None:
        lease = self.config.lease_seconds
        heartbeat_every, reap_every = lease / 3.0, lease / 2.0
        next_heartbeat = next_reap = next_metrics = self.clock()
        while True:
            now = self.clock()
            if self.stopping:
                self.cancel_current()
                return
            with self._lock:
                current = self._current_id
            if current is not None and current != self._cancelled_by_user:
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
                self._reap()
                next_reap = now + reap_every
            if now >= next_metrics:
                if self.gpu is not None:
                    self.gpu.sample(self.metrics)
                if self.metrics is not None:
                    self.metrics.flush()
                next_metrics = now + METRICS_INTERVAL_S
            self._stop.wait(HOUSEKEEPING_TICK_S)

    def _check_cancel(self, job_id: str) -> None:
        try:
            wanted = self.queue.cancel_requested(job_id)
        except redis.RedisError:
            return
        if wanted:
            log.info("cancel requested: closing the engine stream", extra={"job_id": job_id})
            self._cancelled_by_user = job_id
            self.cancel_current()

    def _reap(self) -> None:
        try:
            report = self.queue.reap()
        except redis.RedisError as err:
            log.warning("reaper failed", extra={"error": str(err)})
            return
        for job_id in report.requeued:
            log.warning("job requeued: its worker stopped heart-beating", extra={"job_id": job_id})
        for job_id in report.dead:
            log.error("job dead-lettered after repeated failed attempts", extra={"job_id": job_id})
            try:
                if not self.queue.claim_final(job_id, self.worker_id):
                    continue
            except redis.RedisError as err:
                log.warning("could not claim the dead job's final result", extra={"job_id": job_id,
                                                                                  "error": str(err)})
                continue
            try:
                job = self.queue.load_job(job_id)
            except (redis.RedisError, ValueError, TypeError):
                job = None
            doc = results.result_doc(job_id, results.STATUS_ERROR, error_code=results.ERR_DEAD_LETTER,
                                     error_message="the job failed on every attempt")
            self.results.put_final(self.results.location(job_id, job), doc)
