"""GpuMode scale as the templates build it: an Auto Scaling group of 0..MaxGpus from the single node's launch
template, scale-in protected, scaled out by an alarm on the PendingJobs metric the router publishes; the nodes may
only leave their own group; the router gets the group's name and exactly the rights its code uses.
Read from the templates with the parameters the root stack passes, in both cost profiles."""
from __future__ import annotations

import fnmatch

import pytest

import test_cfn_iam_covers_code as iam_scan
from support.cfn_support import CFN_DIR, PROFILES, ROOT_TEMPLATE, as_list, evaluate, gpu_env_file, load, sub_text
from tlfif_common import names

SCALE, GPU, API = CFN_DIR / "scale.yaml", CFN_DIR / "gpu.yaml", CFN_DIR / "api.yaml"


def child(name: str) -> dict:
    """How the root stack passes parameters to one child."""
    return load(ROOT_TEMPLATE)["Resources"][name]["Properties"]["Parameters"]


def gpu_stack(profile: str, mode: str):
    return evaluate(GPU, {"CostProfile": profile, "GpuMode": mode})


def scale_stack():
    passed = gpu_stack("lean", "scale").resources["Scale"]["Properties"]["Parameters"]
    return evaluate(SCALE, {key: value for key, value in passed.items() if isinstance(value, str)})


def test_the_root_passes_the_mode_to_the_gpu_and_api_stacks():
    root = load(ROOT_TEMPLATE)["Parameters"]
    assert root["GpuMode"]["Default"] == "single" and set(root["GpuMode"]["AllowedValues"]) == {"single", "scale"}
    assert child("Gpu")["GpuMode"] == child("Api")["GpuMode"] == {"Ref": "GpuMode"}
    assert child("Gpu")["MaxGpus"] == {"Ref": "MaxGpus"}
    assert child("Api")["GpuGroupName"] == {"Fn::GetAtt": ["Gpu", "Outputs.GroupName"]}


@pytest.mark.parametrize("profile", PROFILES)
def test_single_mode_is_one_instance_and_no_group(profile):
    gpu = gpu_stack(profile, "single")
    assert "GpuInstance" in gpu.resources and "Scale" not in gpu.resources
    assert gpu.outputs["InstanceId"]["Value"] == {"Ref": "GpuInstance"} and gpu.outputs["GroupName"]["Value"] == "none"
    env = evaluate(API, {"CostProfile": profile}).resources["RouterFunction"]["Properties"]["Environment"]["Variables"]
    assert env[names.ENV_GPU_GROUP] == ""  # the router then drives the instance


@pytest.mark.parametrize("profile", PROFILES)
def test_scale_mode_is_a_group_from_the_same_launch_template_and_no_instance(profile):
    gpu = gpu_stack(profile, "scale")
    assert "GpuInstance" not in gpu.resources
    passed = gpu.resources["Scale"]["Properties"]["Parameters"]
    assert passed["LaunchTemplateId"] == {"Ref": "LaunchTemplate"}
    assert passed["LaunchTemplateVersion"] == {"Fn::GetAtt": ["LaunchTemplate", "LatestVersionNumber"]}
    assert passed["GpuRoleName"] == {"Ref": "GpuRole"} and passed["MaxGpus"] == {"Ref": "MaxGpus"}
    assert gpu.outputs["InstanceId"]["Value"] == "none"
    assert gpu.outputs["GroupName"]["Value"] == {"Fn::GetAtt": ["Scale", "Outputs.GroupName"]}
    if profile == "full":  # the NLB reaches whichever nodes run: the group registers them
        assert passed["TargetGroupArn"] == {"Ref": "NlbTargetGroup"}
        assert "Targets" not in gpu.resources["NlbTargetGroup"]["Properties"]
    assert gpu_env_file([gpu], "/etc/tl-fif/watcher.env")[names.ENV_GPU_MODE] == "X"  # ${GpuMode}
    assert f"{names.ENV_GPU_MODE}=${{GpuMode}}" in sub_text(
        gpu.resources["LaunchTemplate"]["Properties"]["LaunchTemplateData"]["UserData"]["Fn::Base64"])


def test_the_group_runs_zero_to_max_nodes_protected_from_scale_in():
    group = scale_stack().resources["GpuGroup"]["Properties"]
    assert group["MinSize"] == "0" and group["MaxSize"] == {"Ref": "MaxGpus"}
    assert "DesiredCapacity" not in group  # a stack update must not reset what the router set
    assert group["LaunchTemplate"] == {"LaunchTemplateId": {"Ref": "LaunchTemplateId"},
                                       "Version": {"Ref": "LaunchTemplateVersion"}}
    assert group["NewInstancesProtectedFromScaleIn"] is True
    tags = {t["Key"]: t for t in group["Tags"]}  # the router's and ops' tag conditions match group nodes too
    assert tags[names.TAG_ROLE_KEY]["Value"] == names.TAG_ROLE_GPU and tags[names.TAG_ROLE_KEY]["PropagateAtLaunch"]
    assert load(SCALE)["Parameters"]["MaxGpus"]["Default"] == load(ROOT_TEMPLATE)["Parameters"]["MaxGpus"]["Default"]


def test_a_backlog_of_pending_jobs_adds_one_node_at_a_time():
    stack = scale_stack()
    alarm = stack.resources["BacklogAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == (names.METRICS_NAMESPACE, names.METRIC_PENDING_JOBS)
    assert alarm["Statistic"] == "Maximum" and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["Threshold"] == {"Ref": "JobsPerGpu"} and int(stack.params["JobsPerGpu"]) >= 1
    assert alarm["TreatMissingData"] == "notBreaching"  # the router publishes only while it is used
    (action,) = alarm["AlarmActions"]
    policy = stack.resources[action["Ref"]]["Properties"]
    assert policy["AutoScalingGroupName"] == {"Ref": "GpuGroup"}
    assert policy["PolicyType"] == "StepScaling" and policy["AdjustmentType"] == "ChangeInCapacity"
    assert policy["StepAdjustments"] == [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]
    assert policy["EstimatedInstanceWarmup"] == {"Ref": "NodeWarmupSeconds"}


def test_nodes_may_only_leave_their_own_group():
    stack = scale_stack()
    (policy,) = [r["Properties"] for r in stack.resources.values() if r["Type"] == "AWS::IAM::Policy"]
    assert policy["Roles"] == [{"Ref": "GpuRoleName"}]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow" and "Condition" not in statement
    assert as_list(statement["Action"]) == ["autoscaling:TerminateInstanceInAutoScalingGroup"]
    assert sub_text(statement["Resource"]).endswith(":autoScalingGroup:*:autoScalingGroupName/${GpuGroup}")


def _allowed(action: str, statements: list[dict]) -> bool:
    return any(fnmatch.fnmatchcase(action.lower(), pattern.lower())
               for s in statements if s.get("Effect") == "Allow" for pattern in as_list(s.get("Action")))


@pytest.fixture(name="autoscaling_calls")
def autoscaling_calls_fixture(monkeypatch):
    """The IAM scanner of test_cfn_iam_covers_code, taught the Auto Scaling client; its autoscaling:* findings."""
    monkeypatch.setitem(iam_scan.CLIENT_NAMES, "autoscaling", "autoscaling")

    def calls(files):
        return {a: w for a, w in iam_scan.aws_actions(files).items() if a.startswith("autoscaling:")}
    return calls


@pytest.mark.parametrize("profile", PROFILES)
def test_the_router_may_make_every_group_call_its_code_makes(profile, autoscaling_calls):
    needed = autoscaling_calls(iam_scan.router_files())
    assert set(needed) == {"autoscaling:DescribeAutoScalingGroups", "autoscaling:SetDesiredCapacity",
                           "autoscaling:SetInstanceProtection"}
    role = evaluate(API, {"CostProfile": profile, "GpuMode": "scale"}).resources["RouterRole"]["Properties"]
    statements = [s for p in role["Policies"] for s in as_list(p["PolicyDocument"]["Statement"])]
    assert all(_allowed(action, statements) for action in needed), needed
    scoped = [s for s in statements if "autoscaling:SetDesiredCapacity" in as_list(s["Action"])]
    assert [sub_text(s["Resource"]).rsplit("/", 1)[1] for s in scoped] == ["${GpuGroupName}"]
    single = evaluate(API, {"CostProfile": profile}).resources["RouterRole"]["Properties"]
    assert not any(a.startswith("autoscaling:") for p in single["Policies"]
                   for s in as_list(p["PolicyDocument"]["Statement"]) for a in as_list(s["Action"]))
    env = evaluate(API, {"CostProfile": profile, "GpuMode": "scale"}).resources["RouterFunction"]["Properties"]
    assert env["Environment"]["Variables"][names.ENV_GPU_GROUP] == {"Ref": "GpuGroupName"}


def test_the_watcher_makes_only_the_group_call_its_policy_allows(autoscaling_calls):
    needed = autoscaling_calls(sorted(iam_scan.WATCHER_DIR.rglob("*.py")))
    assert set(needed) == {"autoscaling:TerminateInstanceInAutoScalingGroup"}
    (policy,) = [r["Properties"] for r in scale_stack().resources.values() if r["Type"] == "AWS::IAM::Policy"]
    assert all(_allowed(action, as_list(policy["PolicyDocument"]["Statement"])) for action in needed)


@pytest.mark.parametrize("published, expect_alarm", [
    ({0: [1.0, 2.0, 3.0]}, False),  # three jobs waiting: the running nodes keep up
    ({0: [1.0, 4.0]}, True),  # JobsPerGpu jobs waiting at one moment: one datapoint adds a node
    ({0: [6.0], 1: [5.0], 2: [2.0]}, True),
    ({}, False),  # the router publishes only while used: silence is no backlog
])
def test_the_backlog_alarm_on_what_the_router_publishes(published, expect_alarm):
    """BacklogAlarm read from scale.yaml, evaluated by tests/support/cw_alarms on PendingJobs series: it fires for a
    backlog of JobsPerGpu waiting jobs and goes back to OK once the router stops seeing one."""
    from support import cw_alarms

    stack = scale_stack()
    alarm = cw_alarms.MetricAlarm.from_template("BacklogAlarm", stack.resources["BacklogAlarm"]["Properties"],
                                                {"JobsPerGpu": stack.params["JobsPerGpu"]})
    series = {(names.METRICS_NAMESPACE, names.METRIC_PENDING_JOBS, frozenset()): published}
    history = cw_alarms.run({"BacklogAlarm": alarm}, {}, series, 0, 15, delay=lambda _alarm: 1)["BacklogAlarm"]
    assert (cw_alarms.ALARM in history.values()) == expect_alarm
    assert history[14] == cw_alarms.OK  # long after the last datapoint
