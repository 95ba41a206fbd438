"""What the watcher does to its own EC2 instance: announce readiness in SSM (RQL 5.3) and, when idle (RQL 5.6),
stop itself (GpuMode single) or leave its Auto Scaling group (GpuMode scale: a stopped group node would be replaced),
all keyed by the instance id read through IMDSv2. Without IMDS (a developer machine) all are skipped.
"""
from __future__ import annotations

import logging
import time

from botocore.exceptions import BotoCoreError, ClientError

from tlfif_common import names

from . import group_exit
from .imds import ImdsClient, ImdsUnavailable
from .metrics import Metrics

log = logging.getLogger("tlfif_watcher")

STOPPED = "stopped"
LEFT = group_exit.LEFT  # the node left its group (GpuMode scale): as final as STOPPED
NO_IMDS = "no_imds"
FAILED = group_exit.FAILED
GONE = (STOPPED, LEFT)  # outcomes after which the watcher exits


class InstanceControl:
    def __init__(self, imds: ImdsClient, *, ec2, ssm, metrics: Metrics, autoscaling=None):
        self.imds = imds
        self.ec2 = ec2
        self.ssm = ssm
        self.metrics = metrics
        self.autoscaling = autoscaling  # GpuMode scale only

    def instance_id(self) -> str | None:
        """Fresh IMDSv2 lookup (token, then instance-id); None when there is no IMDS."""
        try:
            return self.imds.instance_id()
        except ImdsUnavailable as err:
            log.warning("no instance metadata: readiness and self-stop are off", extra={"error": str(err)})
            return None

    def mark_ready(self, instance_id: str | None) -> bool:
        if instance_id is None:
            return False
        name = names.ssm_ready_param(instance_id)
        try:
            self.ssm.put_parameter(Name=name, Value=str(int(time.time() * 1000)), Type="String", Overwrite=True)
        except (BotoCoreError, ClientError) as err:
            log.error("could not write the ready parameter", extra={"parameter": name, "error": str(err)})
            return False
        log.info("ready", extra={"parameter": name, "instance_id": instance_id})
        return True

    def stop_self(self) -> str:
        """IMDSv2 → own instance id → StopInstances, clear the ready parameter, count IdleStops.
        Returns STOPPED, NO_IMDS (nothing to stop: a developer machine) or FAILED (StopInstances refused)."""
        instance_id = self.instance_id()
        if instance_id is None:
            return NO_IMDS
        try:
            self.ec2.stop_instances(InstanceIds=[instance_id])
        except (BotoCoreError, ClientError) as err:
            log.error("StopInstances on self failed", extra={"instance_id": instance_id, "error": str(err)})
            return FAILED
        log.info("idle: stopping own instance", extra={"instance_id": instance_id})
        try:
            self.ssm.delete_parameter(Name=names.ssm_ready_param(instance_id))
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") != "ParameterNotFound":
                log.warning("could not delete the ready parameter", extra={"error": str(err)})
        except BotoCoreError as err:
            log.warning("could not delete the ready parameter", extra={"error": str(err)})
        self._count_idle_stop()
        return STOPPED

    def leave_group(self) -> str:
        """GpuMode scale: IMDSv2 → own instance id → terminate in the group with one fewer desired (no replacement),
        clear the ready parameter, count IdleStops. Returns LEFT, NO_IMDS or FAILED (the call was refused)."""
        instance_id = self.instance_id()
        if instance_id is None:
            return NO_IMDS
        if self.autoscaling is None:
            log.error("GpuMode scale without an Auto Scaling client: cannot leave the group")
            return FAILED
        outcome = group_exit.leave_group(self.autoscaling, self.ssm, instance_id)
        if outcome == LEFT:
            self._count_idle_stop()
        return outcome

    def _count_idle_stop(self) -> None:
        self.metrics.add(names.METRIC_IDLE_STOPS, 1, "Count")
        self.metrics.flush()
