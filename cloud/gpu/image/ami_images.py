"""The baked GPU images: keep a safe set, and roll the node back to an older one. Run by the pipeline's deploy stage
(`prune`) and by hand (`rollback`, docs/deploy.md):

    python cloud/gpu/image/ami_images.py prune [--keep 5]
    python cloud/gpu/image/ami_images.py rollback --stack tl-fif [--to ami-…]

prune never deregisters an image that /tl-fif/latest_ami_id names now or named before (a rollback target), nor
one an instance was launched from; of the rest it keeps the newest `keep`. rollback points the parameter at the
previous image (or `--to`) and updates the root stack with its own template and values: the stack re-reads the
parameter, the launch template gets a new version and CloudFormation replaces the node - a restart alone would
keep the old root volume.
"""
from __future__ import annotations

import argparse
import sys

import boto3

AMI_PARAMETER = "/tl-fif/latest_ami_id"
IMAGE_FILTERS = [{"Name": "tag:Project", "Values": ["tl-fif"]}, {"Name": "tag:Role", "Values": ["gpu-ami"]}]
KEEP = 5
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]


def parameter_history(ssm) -> list[str]:
    """The parameter's values, newest first, without repeats."""
    values: list[str] = []
    kwargs = {"Name": AMI_PARAMETER, "MaxResults": 50}
    entries = []
    while True:
        page = ssm.get_parameter_history(**kwargs)
        entries.extend(page["Parameters"])
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    for entry in sorted(entries, key=lambda e: e["Version"], reverse=True):
        if entry["Value"] not in values:
            values.append(entry["Value"])
    return values


def images_in_use(ec2, image_ids: list[str]) -> set[str]:
    if not image_ids:
        return set()
    found = set()
    for page in ec2.get_paginator("describe_instances").paginate(Filters=[{"Name": "image-id", "Values": image_ids}]):
        for reservation in page["Reservations"]:
            for instance in reservation["Instances"]:
                if instance["State"]["Name"] != "terminated":
                    found.add(instance["ImageId"])
    return found


def plan_prune(ec2, ssm, keep: int = KEEP) -> tuple[list[dict], set[str]]:
    """(images to delete, protected image ids)."""
    images = sorted(ec2.describe_images(Owners=["self"], Filters=IMAGE_FILTERS)["Images"],
                    key=lambda image: image["CreationDate"], reverse=True)
    protected = set(parameter_history(ssm)[:2]) | images_in_use(ec2, [i["ImageId"] for i in images])
    others = [image for image in images if image["ImageId"] not in protected]
    return others[keep:], protected


def prune(ec2, ssm, keep: int = KEEP) -> list[str]:
    doomed, protected = plan_prune(ec2, ssm, keep)
    for image in doomed:
        ec2.deregister_image(ImageId=image["ImageId"])
        for mapping in image.get("BlockDeviceMappings", []):
            snapshot = mapping.get("Ebs", {}).get("SnapshotId")
            if snapshot:
                ec2.delete_snapshot(SnapshotId=snapshot)
        print(f"deleted {image['ImageId']} ({image.get('Name', '')})")
    print(f"kept {sorted(protected)} (current, previous, in use) and the newest {keep} besides")
    return [image["ImageId"] for image in doomed]


def rollback(ssm, cloudformation, stack: str, to: str | None = None) -> str:
    """Point the parameter at `to` (default: the value before the current one) and replace the node with it."""
    history = parameter_history(ssm)
    target = to or (history[1] if len(history) > 1 else None)
    if target is None:
        raise SystemExit(f"{AMI_PARAMETER} has no earlier value to roll back to; pass --to ami-...")
    ssm.put_parameter(Name=AMI_PARAMETER, Value=target, Type="String", DataType="aws:ec2:image", Overwrite=True)
    described = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    summary = cloudformation.get_template_summary(StackName=stack)["Parameters"]
    ssm_typed = {p["ParameterKey"]: p.get("DefaultValue") for p in summary
                 if p["ParameterType"].startswith("AWS::SSM::Parameter::Value")}
    parameters = []
    for p in described.get("Parameters", []):
        key = p["ParameterKey"]
        if key in ssm_typed:  # passed by its name again, so that the update reads the parameter anew
            name = p["ParameterValue"] if p["ParameterValue"].startswith("/") else ssm_typed[key]
            parameters.append({"ParameterKey": key, "ParameterValue": name})
        else:
            parameters.append({"ParameterKey": key, "UsePreviousValue": True})
    cloudformation.update_stack(StackName=stack, UsePreviousTemplate=True, Capabilities=CAPABILITIES,
                                Parameters=parameters)
    cloudformation.get_waiter("stack_update_complete").wait(StackName=stack)
    print(f"{stack}: the GPU node now runs {target}")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_prune = sub.add_parser("prune", help="delete old TL-FIF images, never the current, previous or in use")
    p_prune.add_argument("--keep", type=int, default=KEEP)
    p_back = sub.add_parser("rollback", help="put the previous image back and replace the node")
    p_back.add_argument("--stack", required=True, help="the root stack made from main.yaml")
    p_back.add_argument("--to", help="an image id; default: the parameter's previous value")
    args = parser.parse_args(argv)
    if args.command == "prune":
        prune(boto3.client("ec2"), boto3.client("ssm"), args.keep)
    else:
        rollback(boto3.client("ssm"), boto3.client("cloudformation"), args.stack, args.to)
    return 0


if __name__ == "__main__":
    sys.exit(main())
