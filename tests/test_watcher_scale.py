"""GpuMode scale at the watcher: when its idle time is up a group node leaves its Auto Scaling group (one fewer
desired, nothing launched in its place) instead of stopping, which the group would answer with a replacement.
`python -m tlfif_watcher` with TLFIF_GPU_MODE=scale against an Auto Scaling group in moto (server), IMDSv2 through
the emulator, a real redis-server."""
from __future__ import annotations

import time
import uuid

import boto3
import pytest
from botocore.config import Config
from support.watcher_harness import instance_state, make_config, run_until_idle_exit, running, ssm_value, wait_for

from tlfif_common import names
from tlfif_local.imds import ImdsEmulator
from tlfif_local.ports import free_port
from tlfif_watcher.engines.echo import EchoEngine
from tlfif_watcher.imds import ImdsClient
from tlfif_watcher.instance import InstanceControl
from tlfif_watcher.metrics import Metrics
from tlfif_watcher.watcher import Watcher

pytestmark = pytest.mark.timeout(90)

MOTO_AMI = "ami-12c6146b"


class Group:
    """An Auto Scaling group as scale.yaml makes it: 0..3 nodes from one launch template, protected from scale-in."""

    def __init__(self, moto_clients, nodes: int):
        self.autoscaling = moto_clients("autoscaling")
        ec2 = moto_clients("ec2")
        self.name = f"tl-fif-gpu-{uuid.uuid4().hex[:8]}"
        ec2.create_launch_template(LaunchTemplateName=self.name, LaunchTemplateData={
            "ImageId": MOTO_AMI, "InstanceType": "g4dn.xlarge"})
        subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
        self.autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=self.name, MinSize=0, MaxSize=3, DesiredCapacity=nodes, VPCZoneIdentifier=subnet,
            LaunchTemplate={"LaunchTemplateName": self.name, "Version": "$Latest"},
            NewInstancesProtectedFromScaleIn=True)

    def describe(self) -> dict:
        return self.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[self.name])["AutoScalingGroups"][0]

    def nodes(self) -> list[str]:
        return sorted(i["InstanceId"] for i in self.describe()["Instances"])


def test_an_idle_group_node_leaves_its_group_and_is_not_replaced(redis_url, moto_endpoint, moto_clients, s3, queue):
    group = Group(moto_clients, nodes=2)
    leaving, staying = group.nodes()
    ssm = moto_clients("ssm")
    run_until_idle_exit(leaving, redis_url=redis_url, moto_endpoint=moto_endpoint, ssm=ssm, s3=s3, queue=queue,
                        logged="idle: leaving the GPU group", **{names.ENV_GPU_MODE: names.GPU_MODE_SCALE})
    assert group.describe()["DesiredCapacity"] == 1 and group.nodes() == [staying]  # no replacement launched
    assert instance_state(moto_clients, leaving) in ("shutting-down", "terminated")  # not a stopped group member
    assert instance_state(moto_clients, staying) == "running"
    assert ssm_value(ssm, names.ssm_ready_param(leaving)) is None
    stops = moto_clients("cloudwatch").list_metrics(Namespace=names.METRICS_NAMESPACE,
                                                    MetricName=names.METRIC_IDLE_STOPS)["Metrics"]
    assert len(stops) == 1


def test_a_failed_leave_is_tried_again_after_another_idle_period(redis_url, redis_client, s3, moto_clients):
    """Auto Scaling unreachable: the watcher keeps serving, tries again after each idle period, never stops."""
    group = Group(moto_clients, nodes=1)
    (instance_id,) = group.nodes()
    unreachable = boto3.client("autoscaling", region_name=names.DEFAULT_REGION,
                               endpoint_url=f"http://127.0.0.1:{free_port()}",
                               config=Config(retries={"max_attempts": 1}, connect_timeout=0.5))
    with ImdsEmulator(instance_id) as imds:
        control = InstanceControl(ImdsClient(imds.url), ec2=moto_clients("ec2"), ssm=moto_clients("ssm"),
                                  metrics=Metrics(moto_clients("cloudwatch")), autoscaling=unreachable)
        watcher = Watcher(make_config(redis_url, minute_seconds=0.1, default_idle_minutes=2,
                                      gpu_mode=names.GPU_MODE_SCALE),
                          redis_client=redis_client, s3=s3, engine=EchoEngine(0), instance=control)
        watcher.claim_timeout = 0.1
        with running(watcher) as handle:
            wait_for(lambda: watcher.ready, what="the engine")
            time.sleep(1.0)  # five idle periods, each ending in a refused leave
            assert handle.thread.is_alive() and watcher.exit_reason is None, (handle.error, watcher.exit_reason)
            assert watcher.idle.remaining() is not None  # re-armed, not given up
    assert instance_state(moto_clients, instance_id) == "running"  # never stopped instead: the group would replace it
    assert group.describe()["DesiredCapacity"] == 1
