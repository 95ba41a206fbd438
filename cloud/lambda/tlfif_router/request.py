"""The parts of an API Gateway HTTP API (payload format 2.0) event the routes use, and the JSON answers."""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from tlfif_common import json_body as strict_json
from tlfif_common.jobs import MAX_MESSAGES, MAX_MESSAGES_BYTES, MAX_PROMPT_BYTES, RequestError
from tlfif_common.json_body import field_label

from .claims import Caller
from .errors import HttpError
from .metrics import MetricBuffer

JSON_HEADERS = {"Content-Type": "application/json"}
# The largest body a valid request can be: its text fields at their limits (prompt, params.system, messages),
# each byte escaped as 6 (\u0001), plus the JSON around them. Anything larger is refused before it is parsed.
MAX_BODY_BYTES = 6 * (2 * MAX_PROMPT_BYTES + MAX_MESSAGES_BYTES) + 64 * MAX_MESSAGES + 64 * 1024
MAX_ERROR_CHARS = 300


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

    def header(self, name: str) -> str | None:
        """A request header (payload 2.0 lower-cases the names and joins repeated ones with commas)."""
        for key, value in (self.event.get("headers") or {}).items():
            if isinstance(key, str) and key.lower() == name:
                return value if isinstance(value, str) else None
        return None

    def json_body(self) -> Any:
        """The decoded JSON body of a route that takes one; HttpError 400 (413 when too large) naming the field.

        Every route that reads a body reads it here: content type, size, encoding and the strict JSON rules of
        tlfif_common.json_body are checked once for all of them.
        """
        _check_content_type(self.header("content-type"))
        raw = self.event.get("body")
        if not isinstance(raw, str) or raw == "":
            raise HttpError(400, "the body must be a JSON object", field="body")
        if len(raw) > MAX_BODY_BYTES * 4 // 3 + 4:  # too large even as base64: not worth decoding
            raise _too_large()
        if self.event.get("isBase64Encoded"):
            try:
                data = base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError):
                raise HttpError(400, "the body is marked base64 but is not valid base64", field="body") from None
        else:
            try:
                data = raw.encode("utf-8")
            except UnicodeEncodeError:
                raise HttpError(400, "the body is not UTF-8 text", field="body") from None
        if len(data) > MAX_BODY_BYTES:
            raise _too_large()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise HttpError(400, "the body is not UTF-8 text", field="body") from None
        try:
            return strict_json.loads(text)
        except RequestError as err:
            raise bad_request(err) from None


def bad_request(err: RequestError) -> HttpError:
    """The 400 for a RequestError: its message and the field it names, cut short where they echo a client's key."""
    message = str(err)
    if len(message) > MAX_ERROR_CHARS:
        message = message[:MAX_ERROR_CHARS] + "…"
    return HttpError(400, message, field=field_label(err.field))


def _too_large() -> HttpError:
    return HttpError(413, f"the body is larger than {MAX_BODY_BYTES // 1024} KiB", field="body")


def _check_content_type(value: str | None) -> None:
    """No Content-Type, or application/json (charset UTF-8 if one is named); anything else is refused."""
    if value is None:
        return
    media_type, _, params = value.partition(";")
    charset = ""
    for param in params.split(";"):
        name, _, val = param.partition("=")
        if name.strip().lower() == "charset":
            charset = val.strip().strip('"').lower()
    if media_type.strip().lower() != "application/json" or charset not in ("", "utf-8", "utf8"):
        raise HttpError(400, f"Content-Type must be application/json (UTF-8), got "
                             f"{field_label(value)}", field="content-type")
