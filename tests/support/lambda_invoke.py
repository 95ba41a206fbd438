"""`lambda:Invoke` without Lambda: a real boto3 Lambda client whose HTTP send is answered in-process.

Lambda functions cannot run on this machine (moto's Lambda needs Docker), so a `before-send` hook hands the
serialized request payload to a Python handler and returns the reply the way the Lambda service does
(status 200, body = the function's JSON result, `X-Amz-Function-Error: Unhandled` plus an error document when
the handler raised). botocore serializes the request and parses the response exactly as it would against AWS.
The hook is registered first, ahead of moto's own stub, so it also works inside `mock_aws()`.
"""
from __future__ import annotations

import json
import traceback
from typing import Any, Callable

import boto3
from botocore.awsrequest import AWSResponse

from support.lambda_context import FakeLambdaContext


class _RawBody:
    def __init__(self, data: bytes):
        self._data = data

    def stream(self, **_: Any):
        yield self._data

    def read(self, *_: Any) -> bytes:
        data, self._data = self._data, b""
        return data


def lambda_client_calling(functions: dict[str, Callable[[Any, Any], Any]], *, region: str = "eu-central-1"):
    """A boto3 `lambda` client whose Invoke runs `functions[FunctionName](payload, context)` in this process."""
    client = boto3.client("lambda", region_name=region, endpoint_url="https://lambda.invalid")
    client.invocations = []  # type: ignore[attr-defined]  # (function name, decoded payload) per invoke

    def send(request, **_: Any):
        # /2015-03-31/functions/<name>/invocations
        name = request.url.split("/functions/", 1)[1].split("/", 1)[0]
        from urllib.parse import unquote

        name = unquote(name)
        headers = {"Content-Type": "application/json", "X-Amz-Executed-Version": "$LATEST",
                   "x-amzn-RequestId": "00000000-0000-0000-0000-000000000000"}
        if name not in functions:
            body = json.dumps({"Type": "User", "message": f"Function not found: {name}"}).encode()
            headers["x-amzn-ErrorType"] = "ResourceNotFoundException"
            return AWSResponse(request.url, 404, headers, _RawBody(body))
        payload = json.loads(request.body or b"null")
        client.invocations.append((name, payload))
        try:
            result = functions[name](payload, FakeLambdaContext(function_name=name))
            body = json.dumps(result).encode()
        except Exception as err:  # noqa: BLE001 - what the Lambda service does with an unhandled exception
            body = json.dumps({"errorMessage": str(err), "errorType": type(err).__name__,
                               "stackTrace": traceback.format_exc().splitlines()}).encode()
            headers["X-Amz-Function-Error"] = "Unhandled"
        return AWSResponse(request.url, 200, headers, _RawBody(body))

    client.meta.events.register_first("before-send.lambda.Invoke", send)
    return client
