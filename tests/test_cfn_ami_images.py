"""GPU image retention and rollback (cloud/gpu/image/ami_images.py, run by the pipeline's deploy stage and by hand)
against moto: pruning never takes the image the parameter names now or named before, nor one in use; rollback
points the parameter back and updates the stack so that it reads the parameter anew."""
from __future__ import annotations

import importlib.util
import json
from datetime import datetime, timezone

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ec2.models import ec2_backends

from support.cfn_support import CFN_DIR, REPO, evaluate, load
from tlfif_common import names

REGION = names.DEFAULT_REGION
_spec = importlib.util.spec_from_file_location("ami_images", REPO / "cloud" / "gpu" / "image" / "ami_images.py")
ami_images = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ami_images)


@pytest.fixture
def aws():
    with mock_aws():
        yield {service: boto3.client(service, region_name=REGION) for service in ("ec2", "ssm", "cloudformation")}


def _bake(ec2, instance: str, n: int) -> str:
    """A TL-FIF image made n days after 2026-01-01 (moto stamps every image with the same minute)."""
    image = ec2.create_image(InstanceId=instance, Name=f"tl-fif-{n}", TagSpecifications=[{
        "ResourceType": "image", "Tags": [{"Key": "Project", "Value": "tl-fif"}, {"Key": "Role", "Value": "gpu-ami"}]}])
    backend = ec2_backends[DEFAULT_ACCOUNT_ID][REGION]
    backend.amis[image["ImageId"]].creation_date = datetime(2026, 1, n + 1, tzinfo=timezone.utc)
    return image["ImageId"]


def _point(ssm, image: str) -> None:
    ssm.put_parameter(Name=ami_images.AMI_PARAMETER, Value=image, Type="String", Overwrite=True)


def test_prune_keeps_current_previous_and_in_use_images_and_five_besides(aws):
    ec2, ssm = aws["ec2"], aws["ssm"]
    builder = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    images = [_bake(ec2, builder, n) for n in range(10)]  # images[0] oldest .. images[9] newest
    node = ec2.run_instances(ImageId=images[1], MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    ec2.stop_instances(InstanceIds=[node])  # stopped still counts as in use: it boots from that image
    for image in (images[3], images[9], images[2]):  # deploy 3, deploy 9, roll back to 2
        _point(ssm, image)

    deleted = ami_images.prune(ec2, ssm, keep=5)

    left = {i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]}
    assert left == {images[2], images[9], images[1]} | set(images[4:9])  # current, previous, in use + 5 newest
    assert deleted == [images[3], images[0]]


def test_prune_deletes_the_snapshots_of_what_it_deregisters(aws):
    ec2, ssm = aws["ec2"], aws["ssm"]
    builder = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    ec2.terminate_instances(InstanceIds=[builder])
    images = [_bake(ec2, builder, n) for n in range(4)]
    _point(ssm, images[3])
    doomed = ec2.describe_images(ImageIds=[images[0]])["Images"][0]
    snapshots = {m["Ebs"]["SnapshotId"] for m in doomed["BlockDeviceMappings"] if "Ebs" in m}
    assert ami_images.prune(ec2, ssm, keep=2) == [images[0]]
    left = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert snapshots and not snapshots & left


def test_the_deploy_stage_prunes_with_it_and_its_role_allows_that():
    pipeline = evaluate(CFN_DIR / "pipeline.yaml")
    spec = pipeline.resources["DeployProject"]["Properties"]["Source"]["BuildSpec"]
    assert '.venv/bin/python cloud/gpu/image/ami_images.py prune --keep "$KEEP_IMAGES"' in spec
    env = {v["Name"]: v["Value"] for v in pipeline.resources["DeployProject"]["Properties"]["Environment"][
        "EnvironmentVariables"]}
    assert env["KEEP_IMAGES"] == "0"  # the default profile, lean: the current and previous images only
    assert "head -n -5" not in spec  # the old newest-5-by-date cut
    assert spec.index("make lambda-zip") < spec.index("ami_images.py prune")  # .venv exists by then
    statements = [s for p in pipeline.resources["DeployRole"]["Properties"]["Policies"]
                  for s in p["PolicyDocument"]["Statement"]]
    allowed = {a for s in statements for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
    assert {"ssm:GetParameterHistory", "ec2:DescribeInstances", "ec2:DeregisterImage", "ec2:DeleteSnapshot"} <= allowed


TEMPLATE = {
    "Parameters": {"LatestAmiId": {"Type": "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>",
                                   "Default": ami_images.AMI_PARAMETER},
                   "InstanceType": {"Type": "String", "Default": "g4dn.xlarge"}},
    "Resources": {"GpuInstance": {"Type": "AWS::EC2::Instance",
                                  "Properties": {"ImageId": {"Ref": "LatestAmiId"},
                                                 "InstanceType": {"Ref": "InstanceType"}}}},
}


def _resolved_ami(cloudformation) -> str:
    params = cloudformation.describe_stacks(StackName="tl-fif")["Stacks"][0]["Parameters"]
    return {p["ParameterKey"]: p.get("ResolvedValue", p["ParameterValue"]) for p in params}["LatestAmiId"]


def test_rollback_points_the_parameter_back_and_the_stack_reads_it_anew(aws):
    ec2, ssm, cloudformation = aws["ec2"], aws["ssm"], aws["cloudformation"]
    old, new = [i["ImageId"] for i in ec2.describe_images(Owners=["amazon"])["Images"][:2]]
    _point(ssm, old)
    cloudformation.create_stack(StackName="tl-fif", TemplateBody=json.dumps(TEMPLATE),
                                Parameters=[{"ParameterKey": "InstanceType", "ParameterValue": "g4dn.xlarge"}])
    _point(ssm, new)  # the deploy stage approved a new image
    assert ami_images.rollback(ssm, cloudformation, "tl-fif", to=new) == new
    assert _resolved_ami(cloudformation) == new  # the update read the parameter again

    assert ami_images.rollback(ssm, cloudformation, "tl-fif") == old  # default: the value before the current one
    assert ssm.get_parameter(Name=ami_images.AMI_PARAMETER)["Parameter"]["Value"] == old
    assert _resolved_ami(cloudformation) == old
    params = {p["ParameterKey"]: p["ParameterValue"]
              for p in cloudformation.describe_stacks(StackName="tl-fif")["Stacks"][0]["Parameters"]}
    assert params["InstanceType"] == "g4dn.xlarge"  # every other value kept


def test_a_new_image_replaces_the_node():
    """What moto cannot show (it updates an instance in place): in the real templates the image reaches the node
    only through a new launch template version, and a new version on AWS::EC2::Instance means replacement."""
    main = load(CFN_DIR / "main.yaml")
    assert main["Parameters"]["LatestAmiId"]["Type"] == "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>"
    assert main["Parameters"]["LatestAmiId"]["Default"] == ami_images.AMI_PARAMETER
    gpu = load(CFN_DIR / "gpu.yaml")["Resources"]
    assert gpu["LaunchTemplate"]["Properties"]["LaunchTemplateData"]["ImageId"] == {"Ref": "AmiId"}
    version = gpu["GpuInstance"]["Properties"]["LaunchTemplate"]["Version"]
    assert version == {"Fn::GetAtt": ["LaunchTemplate", "LatestVersionNumber"]}
    deploy = (REPO / "docs" / "deploy.md").read_text()
    assert "python cloud/gpu/image/ami_images.py rollback --stack tl-fif" in deploy


def test_rollback_without_an_earlier_image_says_so(aws):
    _point(aws["ssm"], "ami-12c6146b")
    with pytest.raises(SystemExit, match="no earlier value"):
        ami_images.rollback(aws["ssm"], aws["cloudformation"], "tl-fif")
