"""The same usage costs the same GPU time in both GPU modes; scale mode differs only in the lines its template adds
or changes (read from scale.yaml): a root volume that exists only while a node runs, the backlog alarm, the
PendingJobs metric. The group itself is free."""
from __future__ import annotations

import pytest

from app.cli import cost_estimate
from app.cli.cost_estimate import PROFILES, Usage, estimate
from support.cfn_support import CFN_DIR, evaluate
from tlfif_common import names, prices

SCALE_LINES = {"EBS root volume", "EBS root volumes", "CloudWatch alarms", "CloudWatch metrics"}


def bills(profile: str, usage: Usage):
    table = prices.load()
    return tuple(estimate(profile, usage, names.DEFAULT_REGION, table, table.table_usd_to_eur, gpu_mode=mode)
                 for mode in ("single", "scale"))


@pytest.mark.parametrize("profile", sorted(PROFILES))
@pytest.mark.parametrize("usage", [Usage(), Usage(sessions=90, minutes=45, idle=30), Usage(sessions=0)])
def test_the_same_usage_costs_the_same_gpu_time_in_both_modes(profile, usage):
    single, scale = bills(profile, usage)
    same = {line.component: line.usd for line in single.lines if line.component not in SCALE_LINES}
    assert same == {line.component: line.usd for line in scale.lines if line.component not in SCALE_LINES}
    gpu = f"GPU {PROFILES[profile].gpu_instance_type}"
    assert same[gpu] == pytest.approx(usage.gpu_hours * prices.load().ec2_hourly_usd(
        PROFILES[profile].gpu_instance_type, names.DEFAULT_REGION))
    # what differs is small and named: never more than the one extra alarm and metric
    table = prices.load()
    extra = (cost_estimate.SCALE_ALARMS * table.usd("cloudwatch.alarm.standard", names.DEFAULT_REGION)
             + cost_estimate.SCALE_METRICS_PER_SESSION * table.usd("cloudwatch.metric", names.DEFAULT_REGION))
    assert scale.total_eur <= single.total_eur + round(extra * single.usd_to_eur, 2) + 0.01


def test_scale_mode_bills_the_root_volume_only_while_a_node_runs():
    usage = Usage()
    single, scale = bills("lean", usage)
    (kept,) = [line for line in single.lines if line.component == "EBS root volume"]
    (per_node,) = [line for line in scale.lines if line.component == "EBS root volumes"]
    table = prices.load()
    assert per_node.usd == pytest.approx(kept.usd * usage.gpu_hours / table.hours_per_month)
    assert per_node.usd < kept.usd


def test_the_extra_alarm_and_metric_are_what_scale_yaml_builds():
    scale = evaluate(CFN_DIR / "scale.yaml")
    alarms = [r for r in scale.resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert len(alarms) == cost_estimate.SCALE_ALARMS
    assert {a["Properties"]["MetricName"] for a in alarms} == {names.METRIC_PENDING_JOBS}
    assert cost_estimate.SCALE_METRICS_PER_SESSION == 1  # PendingJobs, no dimensions
    assert all("Dimensions" not in a["Properties"] for a in alarms)
    # the group, its policy and the IAM policy carry no charge of their own
    assert {r["Type"] for r in scale.resources.values()} == {
        "AWS::AutoScaling::AutoScalingGroup", "AWS::AutoScaling::ScalingPolicy", "AWS::CloudWatch::Alarm",
        "AWS::IAM::Policy"}


def test_an_unknown_mode_is_refused():
    table = prices.load()
    with pytest.raises(ValueError, match="GPU mode"):
        estimate("lean", Usage(), names.DEFAULT_REGION, table, table.table_usd_to_eur, gpu_mode="many")
