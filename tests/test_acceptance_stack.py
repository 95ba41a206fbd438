"""`tl-fif acceptance --stack`: the AWS path against moto's server, for what moto serves (its CloudFormation, S3,
EC2). moto's CloudFormation does not apply a bucket's PublicAccessBlockConfiguration or an instance's security
groups, so the test sets those through the S3 and EC2 APIs after the stack is created."""
from __future__ import annotations

import json

import pytest

from app.cli import acceptance

STACK = "tl-fif-acceptance"
BLOCK_ALL = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
             "RestrictPublicBuckets": True}
TEMPLATE = {
    "Resources": {
        "ResponsesBucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "acc-responses"}},
        "ModelsBucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "acc-models"}},
        "GpuGroup": {"Type": "AWS::EC2::SecurityGroup", "Properties": {"GroupDescription": "GPU: no ingress"}},
        "LaunchTemplate": {"Type": "AWS::EC2::LaunchTemplate", "Properties": {
            "LaunchTemplateData": {"MetadataOptions": {"HttpTokens": "required"}}}},
        "Gpu": {"Type": "AWS::EC2::Instance", "Properties": {
            "ImageId": "ami-12c6146b", "InstanceType": "g4dn.xlarge",
            "BlockDeviceMappings": [{"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 30, "Encrypted": True}}]}},
    },
    "Outputs": {"ApiUrl": {"Value": "https://api.example.invalid"}, "UserPoolClientId": {"Value": "client"},
                "HostedUiDomain": {"Value": "https://auth.example.invalid"}},
}


@pytest.fixture
def stack(moto_clients, monkeypatch, moto_endpoint):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)  # what `--stack` builds its clients with
    cfn, s3 = moto_clients("cloudformation"), moto_clients("s3")
    cfn.create_stack(StackName=STACK, TemplateBody=json.dumps(TEMPLATE))
    resources = {r["LogicalResourceId"]: r["PhysicalResourceId"]
                 for r in cfn.list_stack_resources(StackName=STACK)["StackResourceSummaries"]}
    for bucket in ("acc-responses", "acc-models"):
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=BLOCK_ALL)
    ec2 = moto_clients("ec2")
    ec2.modify_instance_attribute(InstanceId=resources["Gpu"], Groups=[resources["GpuGroup"]])
    return resources


def _security(tmp_path) -> tuple[int, dict]:
    report = tmp_path / "stack.json"
    code = acceptance.main(["--stack", STACK, "--region", "eu-central-1", "--only", "security",
                            "--report", str(report)])
    [check] = json.loads(report.read_text())["checks"]
    return code, check


def test_the_security_check_passes_on_a_stack_built_as_the_templates_build_it(stack, tmp_path):
    code, check = _security(tmp_path)
    assert code == 0 and check["verdict"] == "pass", check
    assert "buckets 0 finding(s)" in check["figure"] and "launch template 0 finding(s)" in check["figure"]


def test_the_security_check_fails_on_a_public_bucket_and_an_open_gpu_port(stack, moto_clients, tmp_path):
    moto_clients("s3").delete_public_access_block(Bucket="acc-responses")
    moto_clients("ec2").authorize_security_group_ingress(GroupId=stack["GpuGroup"], IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])

    code, check = _security(tmp_path)

    assert code == 1 and check["verdict"] == "fail"
    assert check["details"]["findings"] == ["bucket acc-responses does not block public access",
                                            f"{stack['GpuGroup']} allows 0.0.0.0/0 on 443-443"]


def test_a_missing_stack_is_named_with_its_region(moto_endpoint, monkeypatch, capsys):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    assert acceptance.main(["--stack", "nope", "--region", "eu-central-1", "--only", "security"]) == 2
    assert "stack 'nope' not found in region eu-central-1" in capsys.readouterr().err


def test_the_cost_check_reads_the_stack_s_profile_and_budget(moto_clients, moto_endpoint, monkeypatch):
    from app.cli.acceptance.target import StackTarget

    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    template = dict(TEMPLATE, Parameters={"CostProfile": {"Type": "String", "Default": "lean"},
                                          "MonthlyBudget": {"Type": "Number", "Default": 20}})
    moto_clients("cloudformation").create_stack(
        StackName=STACK, TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": "CostProfile", "ParameterValue": "full"},
                    {"ParameterKey": "MonthlyBudget", "ParameterValue": "150"}])
    target = StackTarget(STACK, "eu-central-1")
    assert (target.cost_profile, target.budget_eur) == ("full", 150.0)


def test_the_gui_check_is_not_run_without_a_signed_in_user(stack, tmp_path, monkeypatch):
    # The app signs in to a stack through the hosted login in a browser: no token, no GUI run (and no failure).
    monkeypatch.delenv("TLFIF_ACCEPTANCE_TOKEN", raising=False)
    report = tmp_path / "stack.json"
    code = acceptance.main(["--stack", STACK, "--region", "eu-central-1", "--only", "security,gui",
                            "--report", str(report)])
    data = json.loads(report.read_text())
    verdicts = {c["name"]: c["verdict"] for c in data["checks"]}
    assert code == 0 and data["passed"] and verdicts == {"security": "pass", "gui": "not run"}, data
    [gui] = [c for c in data["checks"] if c["name"] == "gui"]
    assert "needs a signed-in user" in gui["figure"] and "TLFIF_ACCEPTANCE_TOKEN" in gui["figure"]
    assert gui["screenshots"] == []
