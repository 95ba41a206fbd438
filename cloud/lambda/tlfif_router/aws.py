"""Turns botocore failures into `AwsCallFailed` naming the call (→ 502 `{"error": "ec2:StartInstances: ..."}`)."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from botocore.exceptions import BotoCoreError, ClientError

from .errors import AwsCallFailed


@contextmanager
def aws_call(name: str) -> Iterator[None]:
    """`with aws_call("ec2:StartInstances"): ec2.start_instances(...)`."""
    try:
        yield
    except ClientError as err:
        error = err.response.get("Error", {})
        raise AwsCallFailed(name, error.get("Code", "Unknown"), error.get("Message", "")) from err
    except BotoCoreError as err:  # EndpointConnectionError, ReadTimeoutError, NoCredentialsError, ...
        raise AwsCallFailed(name, type(err).__name__, str(err)) from err
