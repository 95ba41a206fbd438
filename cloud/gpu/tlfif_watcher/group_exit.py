"""GpuMode scale: an idle node leaves its Auto Scaling group instead of stopping.

A stopped instance in a group fails its health check and is replaced, so a node whose idle time is up terminates
itself through the group with ShouldDecrementDesiredCapacity: the group wants one node fewer and launches nothing
in its place. Nodes are protected from scale-in, which keeps the group from picking a busy node when it shrinks;
this call is not a scale-in and is allowed on a protected node.

`InstanceControl.leave_group` calls it where a single node's watcher stops its instance (TLFIF_GPU_MODE=scale).
"""
from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from tlfif_common import names

log = logging.getLogger("tlfif_watcher")

LEFT = "left"
FAILED = "failed"


def leave_group(autoscaling: Any, ssm: Any, instance_id: str) -> str:
    """Terminate this node in its group, one fewer desired; drop its ready marker. LEFT or FAILED (retry later)."""
    try:
        autoscaling.terminate_instance_in_auto_scaling_group(InstanceId=instance_id,
                                                             ShouldDecrementDesiredCapacity=True)
    except (BotoCoreError, ClientError) as err:
        log.error("could not leave the GPU group", extra={"instance_id": instance_id, "error": str(err)})
        return FAILED
    log.info("idle: leaving the GPU group", extra={"instance_id": instance_id})
    try:
        ssm.delete_parameter(Name=names.ssm_ready_param(instance_id))
    except (BotoCoreError, ClientError) as err:
        log.warning("could not delete the ready parameter", extra={"error": str(err)})
    return LEFT
