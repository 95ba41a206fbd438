"""The GPU nodes as an Auto Scaling group (GpuMode `scale`): what the router reads of it and the two things it does.

The group runs 0..max nodes from the single-node launch template. Every node is protected from scale-in, so only
two things remove one: the node itself when its idle time is up (TerminateInstanceInAutoScalingGroup with
ShouldDecrementDesiredCapacity, so the group does not replace it) and POST /stop, which lifts the protection and
sets the desired capacity to 0. The router starts the first node (0 → 1); the PendingJobs alarm adds the others.

Lifecycle states → the states /ping reports (as for the single instance):
  Pending, Pending:Wait, Pending:Proceed → pending;  InService → running (ready once its SSM ready marker exists:
  every launch is a new instance, so any marker is this boot's);  Terminating*, Terminated, Detaching → stopping;
  anything else (Standby, Warmed:*, Quarantined) is not counted.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from tlfif_common import api

from .aws import aws_call
from .errors import AwsCallFailed

# the group reports the most advanced state any node is in
SUMMARY_ORDER = (api.GPU_READY, api.GPU_RUNNING, api.GPU_PENDING, api.GPU_STOPPING)


@dataclass(frozen=True)
class GroupNode:
    instance_id: str
    lifecycle: str

    @property
    def api_state(self) -> str | None:
        if self.lifecycle.startswith("Pending"):
            return api.GPU_PENDING
        if self.lifecycle == "InService":
            return api.GPU_RUNNING
        if self.lifecycle.startswith(("Terminat", "Detach")):
            return api.GPU_STOPPING
        return None


@dataclass(frozen=True)
class GpuGroup:
    name: str
    desired: int
    max_size: int
    nodes: tuple[GroupNode, ...]


def describe_group(autoscaling: Any, name: str) -> GpuGroup:
    with aws_call("autoscaling:DescribeAutoScalingGroups"):
        groups = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    if not groups:
        raise AwsCallFailed("autoscaling:DescribeAutoScalingGroups", "ValidationError", f"no group named {name}")
    group = groups[0]
    nodes = tuple(GroupNode(i["InstanceId"], i["LifecycleState"]) for i in group.get("Instances", []))
    return GpuGroup(name=name, desired=int(group["DesiredCapacity"]), max_size=int(group["MaxSize"]), nodes=nodes)


def start_first_node(autoscaling: Any, group: GpuGroup) -> bool:
    """Desired 0 → 1 (scale-out from zero on the first job); False when the group already wants a node."""
    if group.desired > 0:
        return False
    with aws_call("autoscaling:SetDesiredCapacity"):
        autoscaling.set_desired_capacity(AutoScalingGroupName=group.name, DesiredCapacity=1, HonorCooldown=False)
    return True


def drain(autoscaling: Any, group: GpuGroup) -> None:
    """Every node goes: lift their scale-in protection (else the group keeps them), then desired capacity 0."""
    live = [n.instance_id for n in group.nodes if n.api_state in ("pending", "running")]
    for start in range(0, len(live), 50):  # SetInstanceProtection takes at most 50 instances
        with aws_call("autoscaling:SetInstanceProtection"):
            autoscaling.set_instance_protection(AutoScalingGroupName=group.name, InstanceIds=live[start:start + 50],
                                                ProtectedFromScaleIn=False)
    with aws_call("autoscaling:SetDesiredCapacity"):
        autoscaling.set_desired_capacity(AutoScalingGroupName=group.name, DesiredCapacity=0, HonorCooldown=False)


def summarise(group: GpuGroup, is_ready: Callable[[str], bool]) -> tuple[str, dict]:
    """(the group's one state for /ping's "gpu", {"desired", "max", and a count per state}).

    is_ready(instance_id) is asked only for InService nodes. A group that wants more nodes than it has reports
    `pending` (the launch is on its way) unless a node is further along.
    """
    counts = dict.fromkeys(SUMMARY_ORDER, 0)
    for node in group.nodes:
        state = node.api_state
        if state == "running" and is_ready(node.instance_id):
            state = "ready"
        if state is not None:
            counts[state] += 1
    live = counts["ready"] + counts["running"] + counts["pending"]
    state = next((s for s in SUMMARY_ORDER if counts[s]), "stopped")
    if group.desired > live and state in ("stopping", "stopped"):
        state = "pending"
    return state, {"desired": group.desired, "max": group.max_size, **counts}
