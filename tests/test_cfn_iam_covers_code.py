"""Every AWS call the code makes is allowed by the IAM role its template gives it, in both cost profiles.

The calls are read from the code itself (the AST: `<client>.<operation>(...)` on a variable named after its
service), so an operation added to the router, the watcher or an ops function without its permission fails here
instead of with AccessDenied on AWS. Checked in both GpuModes: the Auto Scaling calls are needed in `scale` only.
Actions only: resource scoping is checked by test_cfn_security.py.
"""
from __future__ import annotations

import ast
import fnmatch
from pathlib import Path

import pytest

from support.cfn_support import PROFILES, REPO, app_stack, as_list
from tlfif_common import names

ROUTER_DIR = REPO / "cloud" / "lambda" / "tlfif_router"
WATCHER_DIR = REPO / "cloud" / "gpu" / "tlfif_watcher"

# variable (or attribute) name -> IAM service prefix
CLIENT_NAMES = {"ec2": "ec2", "ssm": "ssm", "s3": "s3", "cloudwatch": "cloudwatch", "dynamodb": "dynamodb",
                "ce": "ce", "lambda_client": "lambda", "autoscaling": "autoscaling"}
# boto3 methods that are not one-to-one with an IAM action
SPECIAL = {("s3", "generate_presigned_url"): "s3:GetObject", ("s3", "download_file"): "s3:GetObject",
           ("s3", "get_paginator"): "s3:ListBucket"}
NOT_CALLS = {"exceptions", "meta", "close"}


def _pascal(method: str) -> str:
    return "".join(part.capitalize() for part in method.split("_"))


def aws_actions(files: list[Path]) -> dict[str, str]:
    """IAM action → where the code needs it (first place found)."""
    found: dict[str, str] = {}
    for path in files:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            target, method = node.func.value, node.func.attr
            name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", None)
            name = (name or "").lstrip("_")
            if name == "client" and method == "invoke":  # LambdaQueuePort: self.client.invoke(...)
                action = "lambda:InvokeFunction"
            elif name in CLIENT_NAMES and method not in NOT_CALLS:
                service = CLIENT_NAMES[name]
                action = SPECIAL.get((service, method), f"{service}:{_pascal(method)}")
            else:
                continue
            found.setdefault(action, f"{path.relative_to(REPO)}:{node.lineno}")
    return found


def _allowed(document: dict) -> list[str]:
    return [str(a) for statement in as_list(document.get("Statement")) if statement.get("Effect") == "Allow"
            for a in as_list(statement.get("Action"))]


def role_actions(profile: str, role: str, gpu_mode: str = "single") -> list[str]:
    """The role's inline policies plus any AWS::IAM::Policy attached to it (also from a nested stack it is passed
    to, as scale.yaml's LeaveGroupPolicy)."""
    stacks = app_stack(profile, gpu_mode)
    allowed, found = [], False
    for stack in stacks:
        resource = stack.resources.get(role)
        if resource and resource["Type"] == "AWS::IAM::Role":
            found = True
            for policy in as_list(resource["Properties"].get("Policies")):
                allowed += _allowed(policy["PolicyDocument"])
        for policy in stack.of_type("AWS::IAM::Policy").values():
            refs = [r["Ref"] for r in as_list(policy["Properties"].get("Roles")) if isinstance(r, dict)]
            if any(ref == role or stack.params.get(ref) == f"<ref {role}>" for ref in refs):
                allowed += _allowed(policy["Properties"]["PolicyDocument"])
    if not found:
        raise AssertionError(f"no role {role} in the {profile} profile")
    return allowed


def router_files() -> list[Path]:
    others = {"budget_killer.py", "cost_reporter.py", "queue_handler.py", "group_reaper.py"}  # own functions and roles
    return [p for p in sorted(ROUTER_DIR.glob("*.py")) if p.name not in others]


CASES = {
    "RouterRole": router_files,
    "BudgetKillerRole": lambda: [ROUTER_DIR / "budget_killer.py", ROUTER_DIR / "gpu_group.py"],
    "CostReporterRole": lambda: [ROUTER_DIR / "cost_reporter.py"],
    "GroupReaperRole": lambda: [ROUTER_DIR / "group_reaper.py"],
    "QueueRole": lambda: [ROUTER_DIR / "queue_handler.py"],
    "GpuRole": lambda: sorted(WATCHER_DIR.rglob("*.py")),
}


# The queue function (and its role) exists only in the lean profile, the group reaper only in GpuMode scale.
ROLE_PROFILES = [(role, profile, mode) for role in sorted(CASES) for profile in PROFILES for mode in names.GPU_MODES
                 if not (role == "QueueRole" and profile == "full")
                 and not (role == "GroupReaperRole" and mode == names.GPU_MODE_SINGLE)]


@pytest.mark.parametrize("role, profile, gpu_mode", ROLE_PROFILES)
def test_role_allows_every_call_its_code_makes(role, profile, gpu_mode):
    needed = aws_actions(CASES[role]())
    if role == "RouterRole" and profile == "full":
        needed.pop("lambda:InvokeFunction", None)  # the queue function exists only in the lean profile
    if gpu_mode == names.GPU_MODE_SINGLE:  # no group to scale, drain or leave
        needed = {action: where for action, where in needed.items() if not action.startswith("autoscaling:")}
    allowed = role_actions(profile, role, gpu_mode)
    missing = {action: where for action, where in needed.items()
               if not any(fnmatch.fnmatchcase(action.lower(), pattern.lower()) for pattern in allowed)}
    assert not missing, f"{role} ({profile}) lacks {missing}"


def test_the_scanner_finds_the_calls_it_must():
    """The scanner itself: the router's known calls are found (a scanner that finds nothing would pass above)."""
    needed = aws_actions(router_files())
    assert {"ec2:StartInstances", "ec2:StopInstances", "ec2:DescribeInstances", "ssm:GetParameter",
            "ssm:DeleteParameter", "s3:GetObject", "dynamodb:PutItem", "cloudwatch:PutMetricData",
            "lambda:InvokeFunction"} <= set(needed)
    assert {"s3:PutObject", "s3:GetObject", "ec2:StopInstances", "ssm:PutParameter",
            "autoscaling:TerminateInstanceInAutoScalingGroup"} <= set(aws_actions(CASES["GpuRole"]()))
    assert {"autoscaling:SetDesiredCapacity", "autoscaling:SetInstanceProtection",
            "autoscaling:DescribeAutoScalingGroups", "ec2:StopInstances"} \
        <= set(aws_actions(CASES["BudgetKillerRole"]()))
