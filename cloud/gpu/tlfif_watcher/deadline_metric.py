"""The watcher's pulse for the idle-miss safety net (`WatcherOverdueAlarm` in cloud/cfn/ops.yaml).

Once a minute the watcher publishes `names.METRIC_WATCHER_DEADLINE` (dimension InstanceId): how many seconds remain
until it will have stopped the node by its own rules (the idle time the last job asked for, or the keep-warm limit),
or, while a job runs, until that job must have ended. A value well below zero means the watcher is stuck; no value
means it is dead. The alarm fires only on that, so it never stops a node the watcher still means to keep.

`StopPolicy.seconds_to_stop` computes the figure; the housekeeping thread (it runs while a job runs, too) offers it
to `DeadlineReporter.tick` on every tick, which sends at most one datapoint per REPORT_EVERY_S.
"""
from __future__ import annotations

import logging
import time
from typing import Callable

from tlfif_common import names

log = logging.getLogger("tlfif_watcher")

METRIC_WATCHER_DEADLINE = names.METRIC_WATCHER_DEADLINE
DIMENSION = "InstanceId"
REPORT_EVERY_S = 60.0
JOB_BUDGET_S = 600.0  # a job running longer than this (a cold engine start included) counts as hung


def seconds_left(*, idle_remaining_s: float | None, keep_warm_left_s: float | None = None,
                 job_running_s: float | None = None) -> float | None:
    """Seconds until the watcher's own deadline; None when it has none (no self-stop armed, nothing to report).

    idle_remaining_s: `IdleTimer.remaining()`; keep_warm_left_s: keep-warm's `until` minus now, only while keep-warm
    holds the idle timer; job_running_s: how long the current job has run, None between jobs."""
    if job_running_s is not None:
        return JOB_BUDGET_S - job_running_s
    if idle_remaining_s is None:
        return None
    if keep_warm_left_s is not None and keep_warm_left_s > 0:
        return max(keep_warm_left_s, idle_remaining_s)
    return idle_remaining_s


class DeadlineReporter:
    def __init__(self, cloudwatch, instance_id: str | None, namespace: str = names.METRICS_NAMESPACE,
                 clock: Callable[[], float] = time.monotonic):
        self.cloudwatch = cloudwatch
        self.instance_id = instance_id
        self.namespace = namespace
        self.clock = clock
        self._last: float | None = None

    def tick(self, seconds: float | None) -> bool:
        """Publish `seconds` when a minute has passed since the last datapoint; True when one was sent."""
        now = self.clock()
        if seconds is None or self.instance_id is None:
            return False
        if self._last is not None and now - self._last < REPORT_EVERY_S:
            return False
        self._last = now
        try:
            self.cloudwatch.put_metric_data(Namespace=self.namespace, MetricData=[{
                "MetricName": METRIC_WATCHER_DEADLINE, "Value": float(seconds), "Unit": "Seconds",
                "Dimensions": [{"Name": DIMENSION, "Value": self.instance_id}]}])
        except Exception as err:  # a missed datapoint is what the alarm tolerates; never stop the watcher for it
            log.warning("deadline metric not sent", extra={"error": f"{type(err).__name__}: {err}"})
            return False
        return True
