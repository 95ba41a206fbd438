"""BudgetKiller against moto with real SNS event shapes (tests/events/sns_budget_*.json)."""
from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tlfif_common import names
from tlfif_router import budget_killer

pytestmark = pytest.mark.timeout(60)
EVENTS = Path(__file__).parent / "events"
MOTO_AMI = "ami-12c6146b"  # one of the images moto always has


def load_event(name: str) -> dict:
    return json.loads((EVENTS / f"sns_budget_{name}.json").read_text(encoding="utf-8"))


@pytest.fixture
def aws(moto_clients):
    ec2 = moto_clients("ec2")
    instance = ec2.run_instances(ImageId=MOTO_AMI, InstanceType="g4dn.xlarge", MinCount=1, MaxCount=1)
    return {"ec2": ec2, "cloudwatch": moto_clients("cloudwatch"), "ssm": moto_clients("ssm"),
            "instance_id": instance["Instances"][0]["InstanceId"]}


def state(aws) -> str:
    reservations = aws["ec2"].describe_instances(InstanceIds=[aws["instance_id"]])["Reservations"]
    return reservations[0]["Instances"][0]["State"]["Name"]


def budget_stops(aws) -> float:
    now = datetime.now(timezone.utc)
    stats = aws["cloudwatch"].get_metric_statistics(
        Namespace=names.METRICS_NAMESPACE, MetricName=names.METRIC_BUDGET_STOPS, StartTime=now - timedelta(hours=1),
        EndTime=now + timedelta(hours=1), Period=3600, Statistics=["Sum"])
    return sum(point["Sum"] for point in stats["Datapoints"])


def run(aws, event) -> dict:
    return budget_killer.handle_event(event, ec2=aws["ec2"], cloudwatch=aws["cloudwatch"], ssm=aws["ssm"],
                                      instance_id=aws["instance_id"], now=datetime(2026, 11, 26, 9, 13, 2,
                                                                                   tzinfo=timezone.utc))


def test_the_real_message_is_parsed():
    notice = budget_killer.parse_notice(load_event("actual")["Records"][0]["Sns"]["Message"])
    assert notice == budget_killer.BudgetNotice(budget="tl-fif-monthly", alert_type="ACTUAL", amount="$23.71",
                                                threshold="> $23.26", budgeted="$23.26")


def test_an_actual_overrun_stops_the_gpu_and_counts_it(aws):
    assert state(aws) == "running"
    answer = run(aws, load_event("actual"))
    assert answer == {"stopped": True, "previous_state": "running", "ignored": 0, "notifications": 1}
    assert state(aws) in ("stopping", "stopped")
    assert budget_stops(aws) == 1.0
    marker = json.loads(aws["ssm"].get_parameter(Name=names.SSM_BUDGET_STOP)["Parameter"]["Value"])
    assert marker == {"month": "2026-11", "stopped_at": "2026-11-26T09:13:02Z", "budget": "tl-fif-monthly",
                      "amount": "$23.71"}
    # SNS delivers at least once: the same notification again is harmless.
    assert run(aws, load_event("actual"))["stopped"] is True
    assert state(aws) == "stopped"


def test_a_forecast_leaves_the_gpu_running(aws):
    answer = run(aws, load_event("forecasted"))
    assert answer == {"stopped": False, "ignored": 0, "notifications": 1}
    assert state(aws) == "running" and budget_stops(aws) == 0


@pytest.mark.parametrize("event", [
    load_event("malformed"),  # a CloudWatch alarm on the same topic
    {},
    {"Records": "not a list"},
    {"Records": [{"EventSource": "aws:sns"}]},
    {"Records": [{"Sns": {"Message": None}}]},
    {"Records": [{"Sns": {"Message": "AWS Budget Notification but nothing else"}}]},
    "a string",
], ids=["cloudwatch-alarm", "empty", "records-not-list", "no-sns", "no-message", "anchor-only", "string"])
def test_a_malformed_message_is_logged_and_ignored(aws, event, capsys):
    answer = run(aws, event)
    assert answer["stopped"] is False and answer["ignored"] >= 1
    assert state(aws) == "running"
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert any(line["component"] == "budget-killer" and line["level"] == "warning" for line in lines)


def test_one_malformed_record_does_not_hide_a_real_one(aws):
    event = load_event("malformed")
    event["Records"] += load_event("actual")["Records"]
    assert run(aws, event) == {"stopped": True, "previous_state": "running", "ignored": 1, "notifications": 1}


def test_handler_end_to_end_and_a_failed_stop_raises(aws, moto_endpoint, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setattr(budget_killer, "_clients", {})
    monkeypatch.delenv(names.ENV_GPU_INSTANCE_ID, raising=False)
    with pytest.raises(RuntimeError, match=names.ENV_GPU_INSTANCE_ID):
        budget_killer.handler(load_event("actual"), None)

    monkeypatch.setenv(names.ENV_GPU_INSTANCE_ID, aws["instance_id"])
    assert budget_killer.handler(load_event("malformed"), None)["stopped"] is False
    assert budget_killer.handler(load_event("actual"), None)["stopped"] is True
    assert state(aws) in ("stopping", "stopped")

    # A stop that fails is not swallowed: Lambda retries the asynchronous invocation (twice, then gives up).
    monkeypatch.setenv(names.ENV_GPU_INSTANCE_ID, "i-0123456789abcdef0")
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError):
        budget_killer.handler(copy.deepcopy(load_event("actual")), None)


@pytest.fixture
def group(moto_clients):
    """GpuMode scale: a group of two GPU nodes protected from scale-in, as scale.yaml makes it."""
    autoscaling, ec2 = moto_clients("autoscaling"), moto_clients("ec2")
    ec2.create_launch_template(LaunchTemplateName="tl-fif-gpu", LaunchTemplateData={
        "ImageId": MOTO_AMI, "InstanceType": "g4dn.xlarge"})
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="tl-fif-gpu", MinSize=0, MaxSize=3, DesiredCapacity=2,
        LaunchTemplate={"LaunchTemplateName": "tl-fif-gpu", "Version": "$Latest"},
        VPCZoneIdentifier=ec2.describe_subnets()["Subnets"][0]["SubnetId"], NewInstancesProtectedFromScaleIn=True)
    return autoscaling


def group_nodes(autoscaling) -> tuple[int, list[str]]:
    (described,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["tl-fif-gpu"])["AutoScalingGroups"]
    return described["DesiredCapacity"], [i["InstanceId"] for i in described["Instances"]]


def test_in_scale_mode_an_actual_overrun_drains_the_protected_group(aws, group, moto_endpoint, monkeypatch):
    assert group_nodes(group)[0] == 2
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setattr(budget_killer, "_clients", {})
    monkeypatch.setenv(names.ENV_GPU_INSTANCE_ID, "none")  # what gpu.yaml's InstanceId output says in scale mode
    monkeypatch.setenv(names.ENV_GPU_GROUP, "tl-fif-gpu")
    answer = budget_killer.handler(load_event("actual"), None)
    assert answer == {"stopped": True, "previous_state": "2 nodes", "ignored": 0, "notifications": 1}
    assert group_nodes(group) == (0, [])  # nothing left running, nothing launched in their place
    assert budget_stops(aws) == 1.0
    assert json.loads(aws["ssm"].get_parameter(Name=names.SSM_BUDGET_STOP)["Parameter"]["Value"])["budget"] \
        == "tl-fif-monthly"
    assert state(aws) == "running"  # the single instance variable is not used in scale mode
    assert budget_killer.handler(load_event("actual"), None)["previous_state"] == "0 nodes"  # a repeat is harmless


def test_in_scale_mode_a_missing_group_raises_so_lambda_retries(aws, moto_clients):
    from tlfif_router.errors import AwsCallFailed

    with pytest.raises(AwsCallFailed, match="autoscaling:DescribeAutoScalingGroups"):
        budget_killer.handle_event(load_event("actual"), ec2=aws["ec2"], cloudwatch=aws["cloudwatch"], ssm=aws["ssm"],
                                   instance_id="none", autoscaling=moto_clients("autoscaling"),
                                   group_name="no-such-group")
    assert budget_stops(aws) == 0
