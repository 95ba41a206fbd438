"""Reads a deployed TL-FIF stack's outputs (CloudFormation `DescribeStacks`) and turns them into `AwsSettings`.

The root template `cloud/cfn/main.yaml` names these outputs; tests/test_configure.py holds the two in step.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

from app.models.settings import AwsSettings

OUTPUT_API_URL = "ApiUrl"
OUTPUT_CLIENT_ID = "UserPoolClientId"
OUTPUT_AUTH_DOMAIN = "HostedUiDomain"
OUTPUT_REGION = "Region"
OUTPUT_REDIRECT_PORT = "RedirectPort"  # optional: older stacks may not have it
REQUIRED_OUTPUTS = (OUTPUT_API_URL, OUTPUT_CLIENT_ID, OUTPUT_AUTH_DOMAIN)


class StackError(Exception):
    """The stack cannot be read or lacks an output; the message says which and where."""


def read_outputs(stack_name: str, *, region: str | None = None, client: Any = None) -> tuple[dict[str, str], str]:
    """(outputs as {key: value}, the region asked). `client` is a boto3 CloudFormation client (tests pass one)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

    try:
        if client is None:
            client = boto3.client("cloudformation", region_name=region or None)
        where = client.meta.region_name
        stacks = client.describe_stacks(StackName=stack_name)["Stacks"]
    except NoRegionError:
        raise StackError("no AWS region: give one (--region, the settings window, AWS_REGION or a profile "
                         "region)") from None
    except NoCredentialsError:
        raise StackError("no AWS credentials: configure the AWS CLI (aws configure / aws sso login) first") from None
    except ClientError as err:
        error = err.response.get("Error", {})
        message = error.get("Message", str(err))
        if error.get("Code") == "ValidationError" and "does not exist" in message:
            raise StackError(f"stack {stack_name!r} not found in region {client.meta.region_name}") from None
        raise StackError(f"cannot read stack {stack_name!r}: {error.get('Code', 'error')}: {message}") from None
    except BotoCoreError as err:
        raise StackError(f"cannot read stack {stack_name!r}: {err}") from None
    if not stacks:
        raise StackError(f"stack {stack_name!r} not found in region {where}")
    stack = stacks[0]
    outputs = {item["OutputKey"]: item.get("OutputValue", "") for item in stack.get("Outputs") or []}
    status = stack.get("StackStatus", "")
    if not outputs and status.endswith("_IN_PROGRESS"):
        raise StackError(f"stack {stack_name!r} is still {status}; try again when it is complete")
    return outputs, where


def aws_settings(outputs: Mapping[str, str], base: AwsSettings, *, region: str = "") -> AwsSettings:
    """`base` with the stack's values; StackError names every required output that is missing or empty."""
    missing = [key for key in REQUIRED_OUTPUTS if not (outputs.get(key) or "").strip()]
    if missing:
        raise StackError(f"the stack has no output {', '.join(missing)} - is it a TL-FIF stack (cloud/cfn/main.yaml)?")
    port = base.redirect_port
    raw_port = (outputs.get(OUTPUT_REDIRECT_PORT) or "").strip()
    if raw_port:
        try:
            port = int(raw_port)
        except ValueError:
            raise StackError(f"output {OUTPUT_REDIRECT_PORT} is not a port number: {raw_port!r}") from None
    return replace(base,
                   api_url=outputs[OUTPUT_API_URL].strip().rstrip("/"),
                   client_id=outputs[OUTPUT_CLIENT_ID].strip(),
                   auth_domain=outputs[OUTPUT_AUTH_DOMAIN].strip().rstrip("/"),
                   region=(outputs.get(OUTPUT_REGION) or "").strip() or region,
                   redirect_port=port)
