"""When the GPU stops itself: the idle timer, held by keep-warm, bounded by keep-warm's maximum lifetime.

Checked by the job loop between jobs (never during one):
- idle: after the last job the instance stops once that job's `idle` minutes have passed (before any job, the
  default's); a job waiting in the queue is served first;
- keep-warm (POST /keepwarm sets `WorkQueue.keep_warm_until`): while its `until` lies ahead and the engine answers,
  the idle timer is held (restarted on every check, so once keep-warm is switched off it counts the idle minutes
  from then); a GPU whose engine never came up is not worth keeping warm;
- maximum lifetime: once `until` has passed the instance stops at once unless a job is waiting, and the mark is
  cleared so that the next start is not stopped by it.
An unreachable Redis counts as "keep-warm off": the plain idle timer then decides (no queue, no work: the instance
must still stop). Without IMDS (a developer machine) there is nothing to stop and the timer is disarmed.
"Stop" is StopInstances for a single node and leaving the Auto Scaling group for a GpuMode scale node; a refused
call is tried again after another idle period.

`seconds_to_stop` is what these rules promise, for the idle-miss pulse (deadline_metric); it reads only what the
last check saw, so the housekeeping thread may call it at any time.
"""
from __future__ import annotations

import logging
import time
from typing import Callable

import redis

from tlfif_common.workqueue import WorkQueue

from .deadline_metric import seconds_left
from .idle import IdleTimer
from .instance import GONE, NO_IMDS, InstanceControl

log = logging.getLogger("tlfif_watcher")

KEEP_WARM_OFF, KEEP_WARM_HOLD, KEEP_WARM_EXPIRED = "off", "hold", "expired"
IDLE_STOP, KEEP_WARM_LIMIT = "idle stop", "keep-warm limit"  # why the instance stopped itself


class StopPolicy:
    def __init__(self, queue: WorkQueue, idle: IdleTimer, instance: InstanceControl | None,
                 wall_clock: Callable[[], float] = time.time, *, scale: bool = False):
        self.queue = queue
        self.idle = idle
        self.instance = instance
        self.wall_clock = wall_clock  # epoch seconds: keep-warm's `until` is an epoch time set by the router
        self.scale = scale  # GpuMode scale: leave the group instead of stopping
        self.keep_warm = KEEP_WARM_OFF  # what the last check saw (for the log lines at each change)
        self.keep_warm_until_ms: int | None = None  # its `until` while it holds the idle timer

    def check(self, engine_ready: bool) -> str | None:
        """IDLE_STOP or KEEP_WARM_LIMIT when the instance was told to stop now (the loop then exits), else None."""
        keep_warm = self.keep_warm_state(engine_ready)
        if keep_warm == KEEP_WARM_HOLD:
            self.idle.restart()
            return None
        if keep_warm != KEEP_WARM_EXPIRED and not self.idle.expired():
            return None
        if engine_ready:  # with an engine that never came up, pending jobs must not keep a GPU running
            try:
                if self.queue.depth() > 0:  # a job arrived just now: serve it first
                    return None
            except redis.RedisError:
                pass
        if keep_warm == KEEP_WARM_EXPIRED:
            log.info("keep-warm maximum lifetime reached: stopping", extra={"engine_ready": engine_ready})
            self._clear_keep_warm()  # consumed: a later start must not be stopped by it
            reason = KEEP_WARM_LIMIT
        else:
            log.info("idle time is up", extra={"idle_minutes": self.idle.minutes, "engine_ready": engine_ready})
            reason = IDLE_STOP
        if self.instance is None:
            outcome = NO_IMDS
        else:
            outcome = self.instance.leave_group() if self.scale else self.instance.stop_self()
        if outcome == NO_IMDS:
            self.idle.disarm()  # nothing to stop (a developer machine): keep serving
            return None
        if outcome not in GONE:
            self.idle.restart()  # StopInstances or leaving the group failed: try again after another idle period
            return None
        return reason

    def seconds_to_stop(self, job_running_s: float | None = None) -> float | None:
        """Seconds until these rules stop the node (while a job runs: until its time budget is spent); None when no
        self-stop is armed (no IMDS)."""
        keep_warm_left_s = None
        until_ms = self.keep_warm_until_ms
        if self.keep_warm == KEEP_WARM_HOLD and until_ms is not None:
            keep_warm_left_s = until_ms / 1000.0 - self.wall_clock()
        return seconds_left(idle_remaining_s=self.idle.remaining(), keep_warm_left_s=keep_warm_left_s,
                            job_running_s=job_running_s)

    def keep_warm_state(self, engine_ready: bool) -> str:
        """KEEP_WARM_HOLD while keep-warm's `until` lies ahead (and the engine answers), KEEP_WARM_EXPIRED once it
        has passed, KEEP_WARM_OFF otherwise."""
        try:
            until_ms = self.queue.keep_warm_until()
        except redis.RedisError as err:
            log.debug("keep-warm unknown: redis unavailable", extra={"error": str(err)})
            until_ms = None
        if until_ms is None:
            state = KEEP_WARM_OFF
        elif until_ms > int(self.wall_clock() * 1000):
            state = KEEP_WARM_HOLD if engine_ready else KEEP_WARM_OFF
        else:
            state = KEEP_WARM_EXPIRED
        if state != self.keep_warm:
            if state == KEEP_WARM_HOLD:
                log.info("keep-warm on: idle timer held", extra={"until_ms": until_ms})
            elif state == KEEP_WARM_OFF and self.keep_warm == KEEP_WARM_HOLD:
                log.info("keep-warm off: the idle timer counts from now", extra={"idle_minutes": self.idle.minutes})
            self.keep_warm = state
        self.keep_warm_until_ms = until_ms if state == KEEP_WARM_HOLD else None
        return state

    def _clear_keep_warm(self) -> None:
        try:
            self.queue.clear_keep_warm()
        except redis.RedisError as err:  # it expires 60 s after its `until` anyway
            log.warning("could not clear the keep-warm mark", extra={"error": str(err)})
