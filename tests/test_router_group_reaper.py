"""The idle-miss net of GpuMode scale: the group reaper against an Auto Scaling group, EC2 and CloudWatch in moto.
A node whose watcher pulse (WatcherDeadlineSeconds) was missing or overdue for the whole window leaves the group
with one fewer desired; a node on time, or still booting, stays."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tlfif_common import names
from tlfif_router import group_reaper
from tlfif_watcher.deadline_metric import DIMENSION, DeadlineReporter

pytestmark = pytest.mark.timeout(60)
MOTO_AMI = "ami-12c6146b"
GROUP = "tl-fif-gpu"


@pytest.fixture
def aws(moto_clients):
    clients = {s: moto_clients(s) for s in ("autoscaling", "ec2", "cloudwatch", "ssm")}
    clients["ec2"].create_launch_template(LaunchTemplateName=GROUP, LaunchTemplateData={
        "ImageId": MOTO_AMI, "InstanceType": "g4dn.xlarge"})
    clients["autoscaling"].create_auto_scaling_group(
        AutoScalingGroupName=GROUP, MinSize=0, MaxSize=3, DesiredCapacity=3,
        LaunchTemplate={"LaunchTemplateName": GROUP, "Version": "$Latest"},
        VPCZoneIdentifier=clients["ec2"].describe_subnets()["Subnets"][0]["SubnetId"],
        NewInstancesProtectedFromScaleIn=True)
    return clients


def group(aws) -> tuple[int, list[str]]:
    (g,) = aws["autoscaling"].describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"]
    return g["DesiredCapacity"], sorted(i["InstanceId"] for i in g["Instances"])


def pulse(aws, instance_id: str, values: list[float], now: datetime) -> None:
    """One datapoint a minute for the last len(values) minutes, as the watcher's DeadlineReporter sends them."""
    for minutes_ago, value in enumerate(reversed(values)):
        aws["cloudwatch"].put_metric_data(Namespace=names.METRICS_NAMESPACE, MetricData=[{
            "MetricName": names.METRIC_WATCHER_DEADLINE, "Value": value, "Unit": "Seconds",
            "Timestamp": now - timedelta(minutes=minutes_ago, seconds=30),
            "Dimensions": [{"Name": DIMENSION, "Value": instance_id}]}])


def ready(aws, instance_id: str) -> None:
    aws["ssm"].put_parameter(Name=names.ssm_ready_param(instance_id), Value="1", Type="String", Overwrite=True)


def test_dead_and_hung_watchers_nodes_leave_the_group_the_live_one_stays(aws):
    now = datetime.now(timezone.utc)
    live, hung, dead = group(aws)[1]
    pulse(aws, live, [300.0 - 60 * m for m in range(5)] + [-30.0] * 13, now)  # counting down, late by < 1 min
    pulse(aws, hung, [-120.0 - 60 * m for m in range(18)], now)  # mid-job past its budget the whole window
    for node in (live, hung, dead):
        ready(aws, node)
    gone = group_reaper.reap(**aws, group_name=GROUP, now=now + timedelta(seconds=1), min_age_s=0)
    assert sorted(gone) == sorted([hung, dead])
    assert group(aws) == (1, [live])  # nothing launched in their place
    markers = aws["ssm"].describe_parameters()["Parameters"]
    assert [p["Name"] for p in markers] == [names.ssm_ready_param(live)]


def test_a_booting_node_gets_time_to_report_first(aws):
    now = datetime.now(timezone.utc)
    assert group_reaper.reap(**aws, group_name=GROUP, now=now) == []  # all three launched just now, none reporting
    assert group(aws)[0] == 3


def test_one_on_time_minute_in_the_window_keeps_a_node(aws):
    now = datetime.now(timezone.utc)
    nodes = group(aws)[1]
    for node in nodes:
        pulse(aws, node, [-600.0] * 17 + [540.0], now)  # a new job just started: its budget is ahead again
    assert group_reaper.reap(**aws, group_name=GROUP, now=now + timedelta(seconds=1), min_age_s=0) == []


def test_the_reporter_and_the_reaper_agree_on_the_metric(aws):
    """What the watcher sends is what the reaper reads: a pulse from DeadlineReporter keeps its node."""
    nodes = group(aws)[1]
    for node in nodes:
        DeadlineReporter(aws["cloudwatch"], node).tick(250.0)
    now = datetime.now(timezone.utc) + timedelta(seconds=5)
    assert group_reaper.reap(**aws, group_name=GROUP, now=now, min_age_s=0) == []


def test_the_handler_needs_its_group(monkeypatch):
    monkeypatch.delenv(names.ENV_GPU_GROUP, raising=False)
    with pytest.raises(RuntimeError, match=names.ENV_GPU_GROUP):
        group_reaper.handler({}, None)
