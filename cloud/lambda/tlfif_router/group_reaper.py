"""Group reaper Lambda: `tlfif_router.group_reaper.handler`, the idle-miss safety net of GpuMode scale (ops.yaml,
run every 5 minutes in scale mode only).

A group node's watcher publishes `names.METRIC_WATCHER_DEADLINE` each minute (dimension InstanceId: seconds to its
own stop, or the running job's time budget left; tlfif_watcher.deadline_metric). The single-instance alarm cannot
name nodes the group launches later, so each run checks every in-service node older than MIN_AGE_S the way
WatcherOverdueAlarm checks the one instance: missing or below OVERDUE_S in every one of the last WINDOW_MINUTES
minutes -> the watcher is dead or hung. Such a node is terminated in its group with one fewer desired (a stopped
group node would only be replaced), as the watcher itself does when idle, and its ready marker is deleted.

One GetMetricData query per run covers all in-service nodes (none when the group is empty: an idle group costs
nothing). A failed AWS call raises (the run shows in the Lambda Errors metric; the next run tries again).
"""
from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

from tlfif_common import names

from .log import get_logger, log

WINDOW_MINUTES = 18  # as WatcherOverdueAlarm: 18 of 18 one-minute periods
OVERDUE_S = -60.0
MIN_AGE_S = 20 * 60  # a booting node gets time to report first (the single alarm waits for 10 running minutes)
DIMENSION = "InstanceId"  # tlfif_watcher.deadline_metric.DIMENSION

logger = get_logger("group-reaper")
_clients: dict[str, Any] = {}


def overdue_nodes(*, autoscaling: Any, ec2: Any, cloudwatch: Any, group_name: str, now: datetime,
                  min_age_s: float = MIN_AGE_S) -> list[str]:
    """In-service nodes older than `min_age_s` whose watcher pulse was missing or overdue the whole window."""
    groups = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group_name])["AutoScalingGroups"]
    if not groups:
        raise RuntimeError(f"no Auto Scaling group named {group_name}")
    in_service = [i["InstanceId"] for i in groups[0].get("Instances", []) if i["LifecycleState"] == "InService"]
    if not in_service:
        return []
    reservations = ec2.describe_instances(InstanceIds=in_service)["Reservations"]
    launched = {i["InstanceId"]: i["LaunchTime"] for r in reservations for i in r["Instances"]}
    old = [i for i in in_service if i in launched and (now - launched[i]).total_seconds() >= min_age_s]
    if not old:
        return []
    queries = [{"Id": f"n{n}", "Label": instance_id, "ReturnData": True, "MetricStat": {
        "Metric": {"Namespace": names.METRICS_NAMESPACE, "MetricName": names.METRIC_WATCHER_DEADLINE,
                   "Dimensions": [{"Name": DIMENSION, "Value": instance_id}]},
        "Period": 60, "Stat": "Maximum"}} for n, instance_id in enumerate(old)]
    results = cloudwatch.get_metric_data(MetricDataQueries=queries, StartTime=now - timedelta(minutes=WINDOW_MINUTES),
                                         EndTime=now)["MetricDataResults"]
    on_time = {r["Label"] for r in results if any(value >= OVERDUE_S for value in r.get("Values", []))}
    return [instance_id for instance_id in old if instance_id not in on_time]


def reap(*, autoscaling: Any, ec2: Any, cloudwatch: Any, ssm: Any, group_name: str, now: datetime,
         min_age_s: float = MIN_AGE_S) -> list[str]:
    """Take every overdue node out of the group (one fewer desired each) and drop its ready marker; their ids."""
    gone = overdue_nodes(autoscaling=autoscaling, ec2=ec2, cloudwatch=cloudwatch, group_name=group_name, now=now,
                         min_age_s=min_age_s)
    for instance_id in gone:
        autoscaling.terminate_instance_in_auto_scaling_group(InstanceId=instance_id,
                                                             ShouldDecrementDesiredCapacity=True)
        log(logger, logging.WARNING, "idle miss: watcher dead or hung, node taken out of the group",
            instance_id=instance_id, group=group_name, window_minutes=WINDOW_MINUTES)
        try:
            ssm.delete_parameter(Name=names.ssm_ready_param(instance_id))
        except ssm.exceptions.ParameterNotFound:
            pass
    return gone


def _client(service: str) -> Any:
    if service not in _clients:
        import boto3

        _clients[service] = boto3.client(service)
    return _clients[service]


def handler(event: Mapping[str, Any] | None, context: Any) -> dict:
    """The scheduled entry point (EventBridge). The event's content is not used."""
    group_name = os.environ.get(names.ENV_GPU_GROUP, "").strip()
    if not group_name:
        log(logger, logging.ERROR, f"{names.ENV_GPU_GROUP} is not set: no group to watch")
        raise RuntimeError(f"{names.ENV_GPU_GROUP} is not set")
    gone = reap(autoscaling=_client("autoscaling"), ec2=_client("ec2"), cloudwatch=_client("cloudwatch"),
                ssm=_client("ssm"), group_name=group_name, now=datetime.now(timezone.utc))
    return {"group": group_name, "taken_out": gone}
