"""`tl-fif status --stack NAME [--region R]`: the stack's state, its outputs, the GPU's state, the month's spend.

The spend is the cost reporter's last figure (the SSM parameter GET /cost reads), not a new Cost Explorer request.
Exit codes: 0 printed, 2 usage error or no such stack.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable

from app.cli.aws_clients import Clients, run_stack_command
from app.services import stack_outputs
from tlfif_common import names

PROG = "tl-fif status"
OUTPUT_GPU_INSTANCE = "GpuInstanceId"


def gpu_state(ec2: Any, instance_id: str) -> str:
    from botocore.exceptions import ClientError

    if not instance_id.startswith("i-"):
        return "no single GPU instance (scale mode: nodes come and go with the queue)"
    try:
        reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    except ClientError as error:
        return f"unknown ({error.response.get('Error', {}).get('Code', 'error')})"
    instances = [i for r in reservations for i in r["Instances"]]
    if not instances:
        return "not found"
    instance = instances[0]
    return f"{instance['State']['Name']} ({instance_id}, {instance.get('InstanceType', '?')})"


def month_to_date(ssm: Any) -> str:
    from botocore.exceptions import ClientError

    try:
        raw = ssm.get_parameter(Name=names.SSM_COST_MONTH_TO_DATE)["Parameter"]["Value"]
        figures = json.loads(raw)
        return f"€{float(figures['month_to_date_eur']):.2f} in {figures.get('month', '?')} " \
               f"(as of {figures.get('as_of', '?')})"
    except ClientError:
        return "no figure yet (the cost reporter has not run)"
    except (ValueError, KeyError, TypeError):
        return "unreadable figure in " + names.SSM_COST_MONTH_TO_DATE


def status(args: argparse.Namespace, clients: Clients, out: Callable[[str], None] = print) -> int:
    cfn = clients("cloudformation")
    try:
        outputs, region = stack_outputs.read_outputs(args.stack, region=clients.region, client=cfn)
    except stack_outputs.StackError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 2
    stack = cfn.describe_stacks(StackName=args.stack)["Stacks"][0]
    out(f"Stack {args.stack} in {region}: {stack['StackStatus']}"
        + (f" ({stack['StackStatusReason']})" if stack.get("StackStatusReason") else ""))
    out("Outputs:")
    for key in sorted(outputs):
        out(f"  {key} = {outputs[key]}")
    out(f"GPU: {gpu_state(clients('ec2'), outputs.get(OUTPUT_GPU_INSTANCE, ''))}")
    out(f"Spend this month: {month_to_date(clients('ssm'))}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True, metavar="NAME", help="the stack's name")
    parser.add_argument("--region", metavar="R", help="AWS region (default: the AWS CLI's)")
    return run_stack_command(PROG, parser, argv, status)
