"""The ops template's RQL 8 items: IAM Access Analyzer, and MFA delete only where S3 allows it (DECISIONS: not on a
bucket with lifecycle rules), with docs/deploy.md saying the same."""
from __future__ import annotations

import pytest

from support.cfn_support import (CFN_DIR, PROFILES, REPO, ROOT_TEMPLATE, app_stack, evaluate, load, nested_stacks,
                                  resources)
from tlfif_common import names


@pytest.mark.parametrize("profile", PROFILES)
def test_an_access_analyzer_watches_the_account(profile):
    (_stack, _name, analyzer), = resources(app_stack(profile), "AWS::AccessAnalyzer::Analyzer")
    assert analyzer["Properties"]["Type"] == "ACCOUNT"
    assert "AnalyzerName" not in analyzer["Properties"]  # no fixed physical name to collide with


def test_the_root_stack_lets_the_deployer_turn_the_analyzer_off():
    """An account or organisation with an analyzer already: main.yaml must expose the switch, not only ops.yaml."""
    root = load(ROOT_TEMPLATE)
    ops_params = load(CFN_DIR / "ops.yaml")["Parameters"]
    passed = nested_stacks(root)["Ops"][1]
    assert passed["CreateAccessAnalyzer"] == {"Ref": "CreateAccessAnalyzer"}
    allowed = ops_params["CreateAccessAnalyzer"]["AllowedValues"]
    assert root["Parameters"]["CreateAccessAnalyzer"]["AllowedValues"] == allowed
    for profile in PROFILES:
        assert not list(resources(app_stack_with(profile, CreateAccessAnalyzer="false"),
                                  "AWS::AccessAnalyzer::Analyzer"))


def app_stack_with(profile: str, **root_params: str):
    """app_stack with root parameters set: the Ops child gets what main.yaml passes it."""
    passed = nested_stacks(load(ROOT_TEMPLATE))["Ops"][1]
    overrides = {key: root_params[value["Ref"]] for key, value in passed.items()
                 if isinstance(value, dict) and value.get("Ref") in root_params}
    return [evaluate(CFN_DIR / "ops.yaml", overrides)]


@pytest.mark.parametrize("mode", names.GPU_MODES)
def test_the_budget_killer_and_the_idle_miss_net_follow_the_gpu_mode(mode):
    """single: the killer stops the instance and the idle-miss alarms watch it; scale: the killer drains the
    group (a stopped group node would be replaced) and no alarm watches the instance id "none"."""
    root = load(ROOT_TEMPLATE)
    passed = nested_stacks(root)["Ops"][1]
    assert passed["GpuMode"] == {"Ref": "GpuMode"}
    assert passed["GpuGroupName"] == {"Fn::GetAtt": ["Gpu", "Outputs.GroupName"]}
    group = "tl-fif-gpu-group" if mode == names.GPU_MODE_SCALE else "none"
    instance = "none" if mode == names.GPU_MODE_SCALE else "i-0123456789abcdef0"
    ops = evaluate(CFN_DIR / "ops.yaml", {"GpuMode": mode, "GpuGroupName": group, "GpuInstanceId": instance})
    env = ops.resources["BudgetKillerFunction"]["Properties"]["Environment"]["Variables"]
    assert env[names.ENV_GPU_GROUP] == ("" if mode == names.GPU_MODE_SINGLE else {"Ref": "GpuGroupName"})
    watched = [res["Properties"] for res in ops.of_type("AWS::CloudWatch::Alarm").values()
               if any(d.get("Name") == "InstanceId" for d in res["Properties"].get("Dimensions", []))]
    reaper = {"GroupReaperFunction", "GroupReaperSchedule", "GroupReaperPermission", "GroupReaperRole"}
    if mode == names.GPU_MODE_SINGLE:
        assert watched and {"IdleMissAlarm", "IdleMissStopRule"} <= set(ops.resources)
        assert not reaper & set(ops.resources)
    else:
        assert not watched and not {"IdleMissAlarm", "IdleMissStopRule", "StopAutomationRole"} & set(ops.resources)
        assert reaper <= set(ops.resources)
        function = ops.resources["GroupReaperFunction"]["Properties"]
        assert function["Handler"] == "tlfif_router.group_reaper.handler"
        assert function["Environment"]["Variables"] == {names.ENV_GPU_GROUP: {"Ref": "GpuGroupName"}}


def test_the_group_reaper_judges_a_node_as_the_overdue_alarm_judges_the_instance():
    """The scale net and the single net agree: same metric, dimension, window and threshold."""
    from tlfif_router import group_reaper
    from tlfif_watcher import deadline_metric

    alarm = evaluate(CFN_DIR / "ops.yaml").resources["WatcherOverdueAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == (names.METRICS_NAMESPACE, names.METRIC_WATCHER_DEADLINE)
    assert [d["Name"] for d in alarm["Dimensions"]] == [group_reaper.DIMENSION] == [deadline_metric.DIMENSION]
    assert alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"] == group_reaper.WINDOW_MINUTES
    assert alarm["Threshold"] == group_reaper.OVERDUE_S and alarm["Period"] == 60


def _config_rules(ops) -> dict[str, dict]:
    return {name: res["Properties"] for name, res in ops.of_type("AWS::Config::ConfigRule").items()}


def test_mfa_delete_is_required_only_of_buckets_without_lifecycle_rules():
    ops = evaluate(CFN_DIR / "ops.yaml")
    mfa_rules = [p for p in _config_rules(ops).values()
                 if p.get("InputParameters", {}).get("isMfaDeleteEnabled") == "true"]
    assert mfa_rules, "a Config rule checks MFA delete (RQL 8)"
    for props in mfa_rules:
        target = props["Scope"]["ComplianceResourceId"]
        assert set(target) == {"Ref"} and target["Ref"] in ops.resources, f"{target} is not a bucket of this stack"
        bucket = ops.resources[target["Ref"]]
        assert bucket["Type"] == "AWS::S3::Bucket"
        assert "LifecycleConfiguration" not in bucket["Properties"], "S3 refuses MFA delete with lifecycle rules"
        assert bucket["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}


def test_the_lifecycle_buckets_are_checked_for_versioning_instead():
    data = evaluate(CFN_DIR / "data.yaml")
    ops = evaluate(CFN_DIR / "ops.yaml")
    scopes = [p["Scope"] for p in _config_rules(ops).values()
              if p["Source"]["SourceIdentifier"] == "S3_BUCKET_VERSIONING_ENABLED"
              and "isMfaDeleteEnabled" not in p.get("InputParameters", {})]
    assert len(scopes) == 1 and "ComplianceResourceId" not in scopes[0]
    for bucket in ("ResponsesBucket", "ModelsBucket"):
        props = data.resources[bucket]["Properties"]
        assert props["LifecycleConfiguration"]["Rules"]
        assert {"Key": scopes[0]["TagKey"], "Value": scopes[0]["TagValue"]} in props["Tags"], bucket


def test_deploy_doc_agrees_with_the_template():
    deploy = (REPO / "docs" / "deploy.md").read_text()
    assert "lifecycle expiry still works" not in deploy
    assert "TrailMfaDeleteRule" in deploy and "CloudTrail bucket" in deploy
    ops = evaluate(CFN_DIR / "ops.yaml")
    assert "TrailMfaDeleteRule" in ops.resources and "TrailBucketName" in ops.outputs
