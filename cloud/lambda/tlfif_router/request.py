"""The parts of an API Gateway HTTP API (payload format 2.0) event the routes use, and the JSON answers."""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from .claims import Caller
from .errors import HttpError
from .metrics import MetricBuffer

JSON_HEADERS = {"Content-Type": "application/json"}


def route_key_of(event: Mapping[str, Any]) -> str:
    """`"POST /infer"`: the event's routeKey, or method + path when the route is `$default` or absent."""
    route_key = event.get("routeKey")
    if isinstance(route_key, str) and route_key and route_key != "$default":
        return route_key
    http = (event.get("requestContext") or {}).get("http") or {}
    method = str(http.get("method") or "").upper()
    path = http.get("path") or event.get("rawPath") or ""
    if path.startswith("/cancel/") and path.count("/") == 2:  # the one route with a path parameter
        path = "/cancel/{id}"
    return f"{method} {path}"


def path_parameter(event: Mapping[str, Any], name: str) -> str | None:
    """A path parameter (`{id}` in `/cancel/{id}`); from the raw path when the route was `$default`."""
    value = (event.get("pathParameters") or {}).get(name)
    if value is None:
        path = ((event.get("requestContext") or {}).get("http") or {}).get("path") or event.get("rawPath") or ""
        value = path.rsplit("/", 1)[-1] or None
    return value


def request_id_of(event: Mapping[str, Any]) -> str | None:
    return (event.get("requestContext") or {}).get("requestId")


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> dict:
    return {"statusCode": status, "headers": {**JSON_HEADERS, **(headers or {})},
            "body": json.dumps(body, separators=(",", ":"))}


@dataclass
class Request:
    event: Mapping[str, Any]
    route_key: str
    request_id: str | None
    aws_request_id: str | None
    caller: Caller
    metrics: MetricBuffer = field(default_factory=MetricBuffer)
    queue_down: bool = False  # set when the rate limiter failed open because the queue is unreachable

    def log_fields(self) -> dict[str, Any]:
        return {"request_id": self.request_id, "aws_request_id": self.aws_request_id, "route": self.route_key,
                "user": self.caller.sub}

    def json_body(self) -> Any:
        """The decoded JSON body; 400 naming `body` when it is missing, not base64/UTF-8, or not JSON."""
        raw = self.event.get("body")
        if raw is None or raw == "":
            raise HttpError(400, "the body must be a JSON object", field="body")
        if self.event.get("isBase64Encoded"):
            try:
                data = base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError):
                raise HttpError(400, "the body is marked base64 but is not valid base64", field="body") from None
        else:
            data = raw.encode("utf-8") if isinstance(raw, str) else raw
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise HttpError(400, "the body is not UTF-8 text", field="body") from None
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            raise HttpError(400, f"malformed JSON body: {err.msg} at line {err.lineno} column {err.colno}",
                            field="body") from None
        except RecursionError:
            raise HttpError(400, "malformed JSON body: nested too deeply", field="body") from None
