"""GpuMode scale through the router's public routes: an Auto Scaling group in moto (0..3 nodes, scale-in protected,
one launch template), the real handler, the real redis-server.

/infer on an empty group starts one node and publishes PendingJobs; /ping summarises the group; an idle node leaves
without the group replacing it (the watcher's group_exit); /stop drains the group to 0 although its nodes are
protected from scale-in.
"""
from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from tlfif_common import names
from tlfif_router import handler as router
from tlfif_router.config import RouterConfig
from tlfif_router.deps import Deps
from tlfif_router.gpu_group import GpuGroup, GroupNode, summarise
from tlfif_watcher.group_exit import LEFT, leave_group

from support.router_cloud import (AMI, REGION, SERVICES, create_gpu_cloud, invoke, load_event, router_clients,
                                  router_env)

pytestmark = pytest.mark.timeout(60)

MAX_GPUS = 3
JOB = {"prompt": "hi", "idle": 1}


@pytest.fixture(scope="module", name="aws")
def aws_fixture():
    from moto import mock_aws

    with mock_aws():
        clients = router_clients(SERVICES + ("autoscaling",))
        create_gpu_cloud(clients)
        clients["ec2"].create_launch_template(
            LaunchTemplateName="tl-fif-gpu",
            LaunchTemplateData={"ImageId": AMI, "InstanceType": "g4dn.xlarge", "TagSpecifications": [
                {"ResourceType": "instance", "Tags": [{"Key": names.TAG_PROJECT_KEY, "Value": names.TAG_PROJECT_VALUE},
                                                      {"Key": names.TAG_ROLE_KEY, "Value": names.TAG_ROLE_GPU}]}]})
        yield clients
    router.reset_deps()


class ScaleCloud:
    def __init__(self, clients: dict, group: str):
        self.clients = clients
        self.group = group

    @property
    def autoscaling(self):
        return self.clients["autoscaling"]

    def describe(self) -> dict:
        return self.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[self.group])["AutoScalingGroups"][0]

    def desired(self) -> int:
        return self.describe()["DesiredCapacity"]

    def nodes(self) -> list[str]:
        return [i["InstanceId"] for i in self.describe()["Instances"]]

    def scale_to(self, count: int) -> list[str]:
        """What the PendingJobs alarm's policy does: the group launches nodes up to `count`."""
        self.autoscaling.set_desired_capacity(AutoScalingGroupName=self.group, DesiredCapacity=count)
        return self.nodes()

    def set_ready(self, instance_id: str) -> None:
        self.clients["ssm"].put_parameter(Name=names.ssm_ready_param(instance_id), Value=str(int(time.time() * 1000)),
                                          Type="String", Overwrite=True)

    def ready_marker(self, instance_id: str) -> str | None:
        try:
            return self.clients["ssm"].get_parameter(Name=names.ssm_ready_param(instance_id))["Parameter"]["Value"]
        except self.clients["ssm"].exceptions.ParameterNotFound:
            return None

    def pending_jobs_published(self) -> list[float]:
        now = datetime.now(timezone.utc)
        points = self.clients["cloudwatch"].get_metric_statistics(
            Namespace=names.METRICS_NAMESPACE, MetricName=names.METRIC_PENDING_JOBS,
            StartTime=now - timedelta(hours=1), EndTime=now + timedelta(minutes=5), Period=60,
            Statistics=["Maximum"])["Datapoints"]
        return sorted(p["Maximum"] for p in points)


@pytest.fixture(name="scale")
def scale_fixture(aws, redis_url, monkeypatch) -> ScaleCloud:
    """A fresh empty group for each test (min 0, max 3, desired 0, new nodes protected) and a router configured
    for it from the environment, as the API template sets it."""
    from moto.cloudwatch.models import cloudwatch_backends
    from moto.core import DEFAULT_ACCOUNT_ID

    cloudwatch_backends[DEFAULT_ACCOUNT_ID][REGION].reset()
    name = f"tl-fif-gpu-{uuid.uuid4().hex[:8]}"
    subnet = aws["ec2"].describe_subnets()["Subnets"][0]["SubnetId"]
    aws["autoscaling"].create_auto_scaling_group(
        AutoScalingGroupName=name, MinSize=0, MaxSize=MAX_GPUS, DesiredCapacity=0,
        LaunchTemplate={"LaunchTemplateName": "tl-fif-gpu", "Version": "$Latest"}, VPCZoneIdentifier=subnet,
        NewInstancesProtectedFromScaleIn=True)
    router_env(monkeypatch, redis_url=redis_url, instance_id="none")
    monkeypatch.setenv(names.ENV_GPU_GROUP, name)
    router.reset_deps(Deps(RouterConfig.from_env(), **aws))
    yield ScaleCloud(aws, name)
    router.reset_deps()


def ping() -> dict:
    answer = invoke(load_event("ping"))
    assert answer.status == 200
    return answer.body


def test_an_empty_group_reports_stopped(scale):
    body = ping()
    assert body["gpu"] == "stopped" and body["queue_depth"] == 0 and body["eta"] == names.BOOT_ETA_SECONDS
    assert body["group"] == {"desired": 0, "max": MAX_GPUS, "ready": 0, "running": 0, "pending": 0, "stopping": 0}


def test_the_first_job_scales_the_group_from_zero_to_one(scale):
    first = invoke(load_event("infer", body=JOB))
    assert first.status == 202 and first.body["status"] == "starting" and first.body["eta"] == names.BOOT_ETA_SECONDS
    assert scale.desired() == 1 and len(scale.nodes()) == 1
    second = invoke(load_event("infer", body=JOB))
    assert second.status == 202 and second.body["status"] == "queued"
    assert scale.desired() == 1  # the router starts the first node only; the PendingJobs alarm adds the others
    assert scale.pending_jobs_published() == [2.0]  # the backlog after each job, as a Maximum per minute


def test_ping_summarises_the_group_and_publishes_the_backlog(scale):
    for _ in range(3):
        invoke(load_event("infer", body=JOB))
    first, second = scale.scale_to(2)
    assert ping()["gpu"] == "running"
    scale.set_ready(second)
    body = ping()
    assert body["gpu"] == "ready" and body["queue_depth"] == 3
    assert body["group"] == {"desired": 2, "max": MAX_GPUS, "ready": 1, "running": 1, "pending": 0, "stopping": 0}
    assert max(scale.pending_jobs_published()) == 3.0


def test_an_idle_node_leaves_the_group_and_is_not_replaced(scale):
    invoke(load_event("infer", body=JOB))
    staying, leaving = scale.scale_to(2)
    scale.set_ready(leaving)
    assert leave_group(scale.autoscaling, scale.clients["ssm"], leaving) == LEFT
    assert scale.desired() == 1 and scale.nodes() == [staying]
    assert scale.ready_marker(leaving) is None
    assert ping()["group"]["running"] == 1
    assert leave_group(scale.autoscaling, scale.clients["ssm"], staying) == LEFT
    assert scale.desired() == 0 and scale.nodes() == []
    assert ping()["gpu"] == "stopped"


def test_protected_nodes_survive_a_plain_scale_in(scale):
    """Why /stop lifts the protection first: desired 0 alone leaves protected nodes running (and billed)."""
    nodes = scale.scale_to(2)
    scale.autoscaling.set_desired_capacity(AutoScalingGroupName=scale.group, DesiredCapacity=0)
    assert scale.nodes() == nodes


def test_stop_drains_the_group_to_zero(scale):
    invoke(load_event("infer", body=JOB))
    nodes = scale.scale_to(MAX_GPUS)
    for node in nodes:
        scale.set_ready(node)
    answer = invoke(load_event("stop"))
    assert answer.status == 200 and answer.body == {"status": "stopping"}
    assert scale.desired() == 0 and scale.nodes() == []
    assert [scale.ready_marker(node) for node in nodes] == [None] * MAX_GPUS
    assert ping()["gpu"] == "stopped"
    assert invoke(load_event("stop")).status == 200  # idempotent on an empty group
    again = invoke(load_event("infer", body=JOB))
    assert again.body["status"] == "starting" and scale.desired() == 1  # the next job starts a node again


def test_the_budget_kill_switch_keeps_the_group_empty(scale):
    month = time.strftime("%Y-%m", time.gmtime())
    scale.clients["ssm"].put_parameter(Name=names.SSM_BUDGET_STOP, Type="String", Overwrite=True,
                                       Value=json.dumps({"month": month, "stopped_at": f"{month}-20T10:00:00Z"}))
    try:
        answer = invoke(load_event("infer", body=JOB))
        assert answer.status == 403 and "budget" in answer.error
        assert scale.desired() == 0 and ping()["queue_depth"] == 0  # nothing started, nothing queued
    finally:
        scale.clients["ssm"].delete_parameter(Name=names.SSM_BUDGET_STOP)


def test_a_missing_group_is_a_502_naming_the_call(scale, monkeypatch):
    monkeypatch.setenv(names.ENV_GPU_GROUP, "no-such-group")
    router.reset_deps(Deps(RouterConfig.from_env(), **scale.clients))
    answer = invoke(load_event("ping"))
    assert answer.status == 502 and "autoscaling:DescribeAutoScalingGroups" in answer.error


@pytest.mark.parametrize("lifecycles, desired, state", [
    ([], 0, "stopped"),
    ([], 1, "pending"),  # the launch is on its way
    (["Pending"], 1, "pending"),
    (["Pending:Wait", "InService"], 2, "running"),
    (["InService", "InService*"], 2, "ready"),  # * = its ready marker exists
    (["Terminating"], 0, "stopping"),
    (["Terminating:Wait"], 1, "pending"),  # one leaves, the group already wants a new one
    (["Standby"], 0, "stopped"),
])
def test_the_group_reports_its_most_advanced_node(lifecycles, desired, state):
    nodes = tuple(GroupNode(f"i-{n}", lc.rstrip("*")) for n, lc in enumerate(lifecycles))
    ready = {f"i-{n}" for n, lc in enumerate(lifecycles) if lc.endswith("*")}
    group = GpuGroup(name="g", desired=desired, max_size=3, nodes=nodes)
    assert summarise(group, ready.__contains__)[0] == state
