"""The reliable Redis job queue shared by the router (enqueue, depth, marks) and the watcher (claim, heartbeat, ack,
reap). Its keys, and why they carry the hash tag `{tlfif}`, are listed in `redis_keys`.

At-least-once delivery: a job is removed from `processing` only by `ack` (after its final result is written),
by `release` (SIGTERM) or by the reaper. Duplicated work is made harmless by `claim_final`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from . import redis_keys as keys
from .jobs import JOB_TTL_SECONDS, Job

KEEP_WARM_GRACE_MS = 60_000  # the key outlives its `until` so a watcher sees that the maximum lifetime passed
MAX_ATTEMPTS = 3
DEFAULT_LEASE_SECONDS = 15
FINAL_MARK_TTL = 3600


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
        self.redis.set(keys.job(job.id), job.to_json(), ex=JOB_TTL_SECONDS)
        self.redis.lpush(keys.PENDING, job.id)

    def depth(self) -> int:
        return int(self.redis.llen(keys.PENDING))

    def mark_gpu_started(self, now_ms: int) -> None:
        """Remember when the router last started the GPU; a start satisfies a wanted start."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(keys.GPU_STARTED_AT, now_ms)
        pipe.delete(keys.START_WANTED)
        pipe.execute()

    def gpu_started_at(self) -> int | None:
        raw = self.redis.get(keys.GPU_STARTED_AT)
        return int(raw) if raw is not None else None

    def want_start(self, now_ms: int) -> None:
        """The GPU must be started once it is `stopped` (it was `stopping` when a job arrived)."""
        self.redis.set(keys.START_WANTED, now_ms, ex=JOB_TTL_SECONDS)

    def take_start_wanted(self) -> bool:
        """True once if a start is wanted; the mark is consumed."""
        return self.redis.getdel(keys.START_WANTED) is not None

    def clear_start_wanted(self) -> None:
        self.redis.delete(keys.START_WANTED)

    def mark_user_stop(self, now_ms: int) -> None:
        """The user stopped the GPU: jobs sent until `now_ms` end "GPU stopped" instead of waiting for a later start.
        It lives as long as a job does: any job it covers has expired by the time it goes."""
        self.redis.set(keys.USER_STOP, now_ms, ex=JOB_TTL_SECONDS)

    def user_stopped_at(self) -> int | None:
        raw = self.redis.get(keys.USER_STOP)
        return int(raw) if raw is not None else None

    def stopped_by_user(self, job: Job) -> bool:
        """The job was sent before the user's last Stop GPU (so that stop ends it)."""
        stopped_at = self.user_stopped_at()
        return stopped_at is not None and job.timestamp <= stopped_at

    def request_cancel(self, job_id: str) -> None:
        """Flag a job as cancelled by its owner: a watcher stops generating it (or never starts it)."""
        self.redis.set(keys.cancel(job_id), 1, ex=JOB_TTL_SECONDS)

    def set_keep_warm(self, until_ms: int) -> None:
        """Keep-warm on until `until_ms` (epoch ms): the watcher holds its idle timer, then stops the GPU."""
        self.redis.set(keys.KEEP_WARM, int(until_ms), pxat=int(until_ms) + KEEP_WARM_GRACE_MS)

    def clear_keep_warm(self) -> None:
        self.redis.delete(keys.KEEP_WARM)

    def keep_warm_until(self) -> int | None:
        """The keep-warm deadline (epoch ms; it may have passed), or None when keep-warm is off."""
        raw = self.redis.get(keys.KEEP_WARM)
        try:
            return int(raw) if raw is not None else None
        except ValueError:
            return None

    # --- watcher side ------------------------------------------------------------------------------------
    def claim(self, worker_id: str, timeout: float = 1.0) -> Claim | None:
        """Block up to `timeout` seconds (> 0: never forever) for the oldest pending job."""
        if timeout <= 0:
            raise ValueError("claim timeout must be > 0 so the worker can heartbeat and stop")
        raw_id = self.redis.blmove(keys.PENDING, keys.PROCESSING, timeout, "RIGHT", "LEFT")
        if raw_id is None:
            return None
        job_id = raw_id.decode() if isinstance(raw_id, bytes) else raw_id
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(keys.lease(job_id), worker_id, ex=self._lease_ttl())
        pipe.hset(keys.CLAIMED, job_id, _now_ms())
        pipe.hincrby(keys.ATTEMPTS, job_id, 1)
        _, _, attempt = pipe.execute()
        raw_job = self.redis.get(keys.job(job_id))
        job = None
        if raw_job is not None:
            try:
                job = Job.from_json(job_id, raw_job)
            except (ValueError, TypeError):
                job = None
        return Claim(job_id=job_id, job=job, attempt=int(attempt))

    def heartbeat(self, job_id: str, worker_id: str) -> None:
        self.redis.set(keys.lease(job_id), worker_id, ex=self._lease_ttl())

    def claim_final(self, job_id: str, worker_id: str) -> bool:
        """True for exactly one caller per job: the one allowed to write the final result."""
        return bool(self.redis.set(keys.final(job_id), worker_id, nx=True, ex=FINAL_MARK_TTL))

    def cancel_requested(self, job_id: str) -> bool:
        return bool(self.redis.exists(keys.cancel(job_id)))

    def has_final(self, job_id: str) -> bool:
        return bool(self.redis.exists(keys.final(job_id)))

    def drop_final(self, job_id: str) -> None:
        """Give the final marker back: its holder could not write the final result, so another worker may."""
        self.redis.delete(keys.final(job_id))

    def job_exists(self, job_id: str) -> bool:
        """The job's message is still there (a claim without a job then means it was unreadable, not expired)."""
        return bool(self.redis.exists(keys.job(job_id)))

    def ack(self, job_id: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.lrem(keys.PROCESSING, 1, job_id)
        pipe.delete(keys.lease(job_id))
        pipe.hdel(keys.CLAIMED, job_id)
        pipe.hdel(keys.ATTEMPTS, job_id)
        pipe.execute()
        self.redis.delete(keys.job(job_id))

    def release(self, job_id: str) -> None:
        """Give a claimed job back untouched (SIGTERM): it goes to the front of pending, the claim is not counted."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.lrem(keys.PROCESSING, 1, job_id)
        pipe.rpush(keys.PENDING, job_id)
        pipe.delete(keys.lease(job_id))
        pipe.hdel(keys.CLAIMED, job_id)
        pipe.hincrby(keys.ATTEMPTS, job_id, -1)
        pipe.execute()

    def reap(self, now_ms: int | None = None) -> ReapReport:
        """Requeue processing jobs whose worker stopped heart-beating; dead-letter after max_attempts claims."""
        now_ms = _now_ms() if now_ms is None else now_ms
        grace_ms = int(self._lease_ttl() * 1000)
        requeued, dead = [], []
        for raw_id in self.redis.lrange(keys.PROCESSING, 0, -1):
            job_id = raw_id.decode() if isinstance(raw_id, bytes) else raw_id
            if self.redis.exists(keys.lease(job_id)):
                continue
            claimed = self.redis.hget(keys.CLAIMED, job_id)
            if claimed is None:  # claimed but the claimer died before recording it: start the grace now
                self.redis.hsetnx(keys.CLAIMED, job_id, now_ms)
                continue
            if now_ms - int(claimed) < grace_ms:
                continue
            outcome = self._requeue(keys=[keys.PROCESSING, keys.PENDING, keys.DEAD, keys.ATTEMPTS, keys.CLAIMED],
                                    args=[job_id, self.max_attempts])
            outcome = outcome.decode() if isinstance(outcome, bytes) else outcome
            if outcome == "requeued":
                requeued.append(job_id)
            elif outcome == "dead":
                dead.append(job_id)
        return ReapReport(requeued=requeued, dead=dead)

    def load_job(self, job_id: str) -> Job | None:
        raw = self.redis.get(keys.job(job_id))
        return Job.from_json(job_id, raw) if raw is not None else None

    def _lease_ttl(self) -> int:
        return max(1, int(round(self.lease_seconds)))


def _now_ms() -> int:
    return int(time.time() * 1000)
