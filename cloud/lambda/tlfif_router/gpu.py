"""The GPU instance as the router sees it: EC2 state, start/stop, and readiness from SSM (RQL 5.3).

States the API reports (`GET /ping` → "gpu") are `api.GPU_STATES`, EC2's mapped by `api.GPU_STATE_OF_EC2`; a
StartInstances on a `shutting-down` or `terminated` instance (reported `stopped`) fails with IncorrectInstanceState
and /infer answers 502 naming it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from tlfif_common import api, names

from .aws import aws_call
from .errors import AwsCallFailed

@dataclass(frozen=True)
class GpuInstance:
    instance_id: str
    state: str  # EC2's own state name
    launch_time_ms: int | None
    instance_type: str | None = None

    @property
    def api_state(self) -> str:
        return api.GPU_STATE_OF_EC2.get(self.state, api.GPU_STOPPED)


def describe_gpu(ec2: Any, instance_id: str) -> GpuInstance:
    with aws_call("ec2:DescribeInstances"):
        response = ec2.describe_instances(InstanceIds=[instance_id])
    instances = [i for r in response.get("Reservations", []) for i in r.get("Instances", [])]
    if not instances:
        raise AwsCallFailed("ec2:DescribeInstances", "InvalidInstanceID.NotFound")
    instance = instances[0]
    launch = instance.get("LaunchTime")
    return GpuInstance(instance_id=instance_id, state=instance["State"]["Name"],
                       launch_time_ms=_datetime_ms(launch) if isinstance(launch, datetime) else None,
                       instance_type=instance.get("InstanceType"))


def start_gpu(ec2: Any, instance_id: str) -> str:
    """StartInstances; returns the state EC2 reports now (usually `pending`)."""
    with aws_call("ec2:StartInstances"):
        response = ec2.start_instances(InstanceIds=[instance_id])
    return response["StartingInstances"][0]["CurrentState"]["Name"]


def stop_gpu(ec2: Any, instance_id: str) -> str:
    """StopInstances; EC2 accepts it for an instance that is already stopping or stopped."""
    with aws_call("ec2:StopInstances"):
        response = ec2.stop_instances(InstanceIds=[instance_id])
    return response["StoppingInstances"][0]["CurrentState"]["Name"]


def ready_at_ms(ssm: Any, instance_id: str) -> int | None:
    """When the watcher last said its engine answers (SSM /tl-fif/ready/<id>), or None if it never did."""
    with aws_call("ssm:GetParameter"):
        try:
            value = ssm.get_parameter(Name=names.ssm_ready_param(instance_id))["Parameter"]["Value"]
        except ssm.exceptions.ParameterNotFound:
            return None
    return parse_timestamp_ms(value)


def budget_hold(ssm: Any, now_ms: int) -> dict | None:
    """BudgetKiller's marker (SSM_BUDGET_STOP) when it stopped the GPU this calendar month (UTC), else None.

    While it holds, the router does not start the GPU again: the kill switch stays thrown until the month ends or
    the operator deletes the parameter (docs/deploy.md).
    """
    import json

    with aws_call("ssm:GetParameter"):
        try:
            raw = ssm.get_parameter(Name=names.SSM_BUDGET_STOP)["Parameter"]["Value"]
        except ssm.exceptions.ParameterNotFound:
            return None
    try:
        marker = json.loads(raw)
    except ValueError:
        return None
    month = datetime.fromtimestamp(now_ms / 1000, tz=timezone.utc).strftime("%Y-%m")
    return marker if isinstance(marker, dict) and marker.get("month") == month else None


def forget_ready(ssm: Any, instance_id: str) -> None:
    """Delete the ready marker so a /ping after the next start does not report a stale `ready`."""
    with aws_call("ssm:DeleteParameter"):
        try:
            ssm.delete_parameter(Name=names.ssm_ready_param(instance_id))
        except ssm.exceptions.ParameterNotFound:
            pass


def is_ready(instance: GpuInstance, ready_ms: int | None, started_ms: int | None) -> bool:
    """Running, and the ready mark is newer than both the EC2 LaunchTime and the router's own start mark.

    EC2 moves LaunchTime on every start; moto does not, and a clock-skewed LaunchTime is possible, hence the
    second mark kept in Redis (`WorkQueue.mark_gpu_started`).
    """
    if instance.state != "running" or ready_ms is None:
        return False
    return all(ready_ms > mark for mark in (instance.launch_time_ms, started_ms) if mark is not None)


def parse_timestamp_ms(value: str) -> int | None:
    """Epoch milliseconds (also seconds, told apart by size) or ISO 8601; None when it is neither."""
    text = (value or "").strip()
    if text.isdigit():
        number = int(text)
        return number if number >= 10**11 else number * 1000
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return _datetime_ms(parsed)


def _datetime_ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)
