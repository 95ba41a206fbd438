"""The reliable Redis job queue shared by the router (enqueue, depth) and the watcher (claim, heartbeat, ack, reap).

Keys (the queue's own keys share the hash tag `{tlfif}` so that its transactions and scripts stay in one slot on a
cluster-mode server such as ElastiCache Serverless/Valkey; the job key is never part of a transaction):
    job:{id}                     the job JSON (RQL 4.2), TTL 300 s
    {tlfif}:queue:pending        ids waiting; LPUSH to enqueue, claimed from the right (oldest first)
    {tlfif}:queue:processing     ids claimed by a watcher and not yet acknowledged
    {tlfif}:queue:dead           ids given up after MAX_ATTEMPTS claims
    {tlfif}:lease:{id}           held by the worker while it generates (heartbeat refreshes the TTL)
    {tlfif}:claimed              hash id -> epoch ms of the claim (grace before a lease-less job is reaped)
    {tlfif}:attempts             hash id -> number of claims
    {tlfif}:final:{id}           set once, by the one worker allowed to write the job's final result
    {tlfif}:cancel:{id}          the job's owner asked to stop it (POST /cancel/{id}); TTL 300 s
    {tlfif}:keepwarm             keep-warm is on until this epoch ms (POST /keepwarm); expires 60 s after it

At-least-once delivery: a job is removed from `processing` only by `ack` (after its final result is written),
by `release` (SIGTERM) or by the reaper. Duplicated work is made harmless by `claim_final`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from .jobs import JOB_TTL_SECONDS, Job, job_key

NS = "{tlfif}"
PENDING = f"{NS}:queue:pending"
PROCESSING = f"{NS}:queue:processing"
DEAD = f"{NS}:queue:dead"
CLAIMED = f"{NS}:claimed"
ATTEMPTS = f"{NS}:attempts"
GPU_STARTED_AT = f"{NS}:gpu:started_at"
KEEP_WARM = f"{NS}:keepwarm"
KEEP_WARM_GRACE_MS = 60_000  # the key outlives its `until` so a watcher sees that the maximum lifetime passed
MAX_ATTEMPTS = 3
DEFAULT_LEASE_SECONDS = 15
FINAL_MARK_TTL = 3600


def lease_key(job_id: str) -> str:
    return f"{NS}:lease:{job_id}"


def final_key(job_id: str) -> str:
    return f"{NS}:final:{job_id}"


def cancel_key(job_id: str) -> str:
    return f"{NS}:cancel:{job_id}"


# Move one id out of processing (if it is still there) and back to pending, or to the dead list once it has been
# claimed MAX_ATTEMPTS times. Returns "requeued", "dead" or "" when another reaper got there first.
_REQUEUE = """
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return '' end
redis.call('HDEL', KEYS[5], ARGV[1])
local attempts = tonumber(redis.call('HGET', KEYS[4], ARGV[1]) or '0')
if attempts >= tonumber(ARGV[2]) then
  redis.call('LPUSH', KEYS[3], ARGV[1])
  redis.call('HDEL', KEYS[4], ARGV[1])
  return 'dead'
end
redis.call('RPUSH', KEYS[2], ARGV[1])
return 'requeued'
"""


@dataclass(frozen=True)
class Claim:
    job_id: str
    job: Job | None  # None when the job key expired (TTL 300 s) or held garbage
    attempt: int


@dataclass(frozen=True)
class ReapReport:
    requeued: list[str]
    dead: list[str]


class WorkQueue:
    def __init__(self, client: redis.Redis, *, lease_seconds: float = DEFAULT_LEASE_SECONDS,
                 max_attempts: int = MAX_ATTEMPTS):
        self.redis = client
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self._requeue = client.register_script(_REQUEUE)

    # --- router side -------------------------------------------------------------------------------------
    def enqueue(self, job: Job) -> None:
        # Two steps, job first: a crash in between leaves only a job key that expires, never an id without a job.
        self.redis.set(job_key(job.id), job.to_json(), ex=JOB_TTL_SECONDS)
        self.redis.lpush(PENDING, job.id)

    def depth(self) -> int:
        return int(self.redis.llen(PENDING))

    def mark_gpu_started(self, now_ms: int) -> None:
        self.redis.set(GPU_STARTED_AT, now_ms)

    def gpu_started_at(self) -> int | None:
        raw = self.redis.get(GPU_STARTED_AT)
        return int(raw) if raw is not None else None

    def request_cancel(self, job_id: str) -> None:
        """Flag a job as cancelled by its owner: a watcher stops generating it (or never starts it)."""
        self.redis.set(cancel_key(job_id), 1, ex=JOB_TTL_SECONDS)

    def set_keep_warm(self, until_ms: int) -> None:
        """Keep-warm on until `until_ms` (epoch ms): the watcher holds its idle timer, then stops the GPU."""
        self.redis.set(KEEP_WARM, int(until_ms), pxat=int(until_ms) + KEEP_WARM_GRACE_MS)

    def clear_keep_warm(self) -> None:
        self.redis.delete(KEEP_WARM)

    def keep_warm_until(self) -> int | None:
        """The keep-warm deadline (epoch ms; it may have passed), or None when keep-warm is off."""
        raw = self.redis.get(KEEP_WARM)
        try:
            return int(raw) if raw is not None else None
        except ValueError:
            return None

    # --- watcher side ------------------------------------------------------------------------------------
    def claim(self, worker_id: str, timeout: float = 1.0) -> Claim | None:
        """Block up to `timeout` seconds (> 0: never forever) for the oldest pending job."""
        if timeout <= 0:
            raise ValueError("claim timeout must be > 0 so the worker can heartbeat and stop")
        raw_id = self.redis.blmove(PENDING, PROCESSING, timeout, "RIGHT", "LEFT")
        if raw_id is None:
            return None
        job_id = raw_id.decode() if isinstance(raw_id, bytes) else raw_id
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(lease_key(job_id), worker_id, ex=self._lease_ttl())
        pipe.hset(CLAIMED, job_id, _now_ms())
        pipe.hincrby(ATTEMPTS, job_id, 1)
        _, _, attempt = pipe.execute()
        raw_job = self.redis.get(job_key(job_id))
        job = None
        if raw_job is not None:
            try:
                job = Job.from_json(job_id, raw_job)
            except (ValueError, TypeError):
                job = None
        return Claim(job_id=job_id, job=job, attempt=int(attempt))

    def heartbeat(self, job_id: str, worker_id: str) -> None:
        self.redis.set(lease_key(job_id), worker_id, ex=self._lease_ttl())

    def claim_final(self, job_id: str, worker_id: str) -> bool:
        """True for exactly one caller per job: the one allowed to write the final result."""
        return bool(self.redis.set(final_key(job_id), worker_id, nx=True, ex=FINAL_MARK_TTL))

    def cancel_requested(self, job_id: str) -> bool:
        return bool(self.redis.exists(cancel_key(job_id)))

    def has_final(self, job_id: str) -> bool:
        return bool(self.redis.exists(final_key(job_id)))

    def ack(self, job_id: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.lrem(PROCESSING, 1, job_id)
        pipe.delete(lease_key(job_id))
        pipe.hdel(CLAIMED, job_id)
        pipe.hdel(ATTEMPTS, job_id)
        pipe.execute()
        self.redis.delete(job_key(job_id))

    def release(self, job_id: str) -> None:
        """Give a claimed job back untouched (SIGTERM): it goes to the front of pending, the claim is not counted."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.lrem(PROCESSING, 1, job_id)
        pipe.rpush(PENDING, job_id)
        pipe.delete(lease_key(job_id))
        pipe.hdel(CLAIMED, job_id)
        pipe.hincrby(ATTEMPTS, job_id, -1)
        pipe.execute()

    def reap(self, now_ms: int | None = None) -> ReapReport:
        """Requeue processing jobs whose worker stopped heart-beating; dead-letter after max_attempts claims."""
        now_ms = _now_ms() if now_ms is None else now_ms
        grace_ms = int(self._lease_ttl() * 1000)
        requeued, dead = [], []
        for raw_id in self.redis.lrange(PROCESSING, 0, -1):
            job_id = raw_id.decode() if isinstance(raw_id, bytes) else raw_id
            if self.redis.exists(lease_key(job_id)):
                continue
            claimed = self.redis.hget(CLAIMED, job_id)
            if claimed is None:  # claimed but the claimer died before recording it: start the grace now
                self.redis.hsetnx(CLAIMED, job_id, now_ms)
                continue
            if now_ms - int(claimed) < grace_ms:
                continue
            outcome = self._requeue(keys=[PROCESSING, PENDING, DEAD, ATTEMPTS, CLAIMED],
                                    args=[job_id, self.max_attempts])
            outcome = outcome.decode() if isinstance(outcome, bytes) else outcome
            if outcome == "requeued":
                requeued.append(job_id)
            elif outcome == "dead":
                dead.append(job_id)
        return ReapReport(requeued=requeued, dead=dead)

    def load_job(self, job_id: str) -> Job | None:
        raw = self.redis.get(job_key(job_id))
        return Job.from_json(job_id, raw) if raw is not None else None

    def _lease_ttl(self) -> int:
        return max(1, int(round(self.lease_seconds)))


def _now_ms() -> int:
    return int(time.time() * 1000)
