"""Lean profile: the small in-VPC function that performs the router's queue operations on Redis.

Handler: `tlfif_router.queue_handler.handler` (same zip as the router; environment: TLFIF_REDIS_URL only).
The router, running outside the VPC, invokes it synchronously (`LambdaQueuePort`) with a JSON payload:

    {"op": "enqueue", "job": Job.to_dict(), "idempotency_key": str (optional)}
                                                the router validated the request: the job is stored as given
    {"op": "depth"}
    {"op": "allow", "user": str, "limit": int (optional)}
    {"op": "mark_gpu_started", "now_ms": int}
    {"op": "gpu_started_at"} | {"op": "want_start"} | {"op": "take_start_wanted"} | {"op": "clear_start_wanted"}
    {"op": "mark_user_stop"}
    {"op": "cancel", "job_id": uuid, "user": str}
    {"op": "set_keep_warm", "until_ms": int} | {"op": "clear_keep_warm"}

and gets `{"ok": true, "result": ...}`, or `{"ok": false, "error": "...", "unavailable": true}` when Redis cannot
be reached, or `{"ok": false, "error": "..."}` for a payload it refuses. Each operation is a `RedisQueuePort`
call, so both profiles share one implementation. Only the router may invoke this function (IAM), so a job is not
checked again beyond its shape (`Job.from_dict`: a UUID id, known fields, the required ones present).
"""
from __future__ import annotations

import json
import logging
import os
from typing import Any, Callable, Mapping

from tlfif_common import names
from tlfif_common.jobs import Job, RequestError, is_job_id, validate_idempotency_key

from .errors import QueueUnavailable
from .log import get_logger, log
from .queue_port import RedisQueuePort

logger = get_logger("queue")
_port: RedisQueuePort | None = None
MAX_USER_LENGTH = 256


class PayloadError(ValueError):
    pass


def handler(event: Any, context: Any) -> dict:
    fields = {"aws_request_id": getattr(context, "aws_request_id", None)}
    try:
        op, call = parse(event)
    except PayloadError as err:
        log(logger, logging.ERROR, "refused payload", **fields, error=str(err))
        return {"ok": False, "error": str(err)}
    fields["op"] = op
    try:
        result = call(get_port())
    except QueueUnavailable as err:
        log(logger, logging.ERROR, "queue unavailable", **fields, error=str(err))
        return {"ok": False, "error": "queue unavailable", "unavailable": True}
    return {"ok": True, "result": result}


def get_port() -> RedisQueuePort:
    global _port
    if _port is None:
        url = os.environ.get(names.ENV_REDIS_URL, "").strip()
        if not url:
            raise QueueUnavailable(f"{names.ENV_REDIS_URL} is not set")
        _port = RedisQueuePort.from_url(url)
    return _port


def reset_port(port: RedisQueuePort | None = None) -> None:
    global _port
    _port = port


def parse(event: Any) -> tuple[str, Callable[[RedisQueuePort], Any]]:
    """The operation named by the payload and a call performing it; PayloadError when the payload is wrong."""
    if isinstance(event, (str, bytes)):
        try:
            event = json.loads(event)
        except ValueError:
            raise PayloadError("payload is not JSON") from None
    if not isinstance(event, Mapping):
        raise PayloadError("payload must be a JSON object")
    op = event.get("op")
    spec = OPERATIONS.get(op) if isinstance(op, str) else None
    if spec is None:
        raise PayloadError(f"unknown op {op!r}; expected one of {', '.join(OPERATIONS)}")
    allowed, build = spec
    extra = sorted(set(event) - {"op"} - set(allowed))
    if extra:
        raise PayloadError(f"op {op}: unknown field {extra[0]}")
    return op, build(event)


def _int(event: Mapping[str, Any], name: str, *, required: bool) -> int | None:
    value = event.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < (1 if name == "limit" else 0):
        raise PayloadError(f"{name} must be a {'positive' if name == 'limit' else 'non-negative'} integer")
    return value


def _user(event: Mapping[str, Any]) -> str:
    user = event.get("user")
    if not isinstance(user, str) or not user or len(user) > MAX_USER_LENGTH:
        raise PayloadError(f"user must be a non-empty string of at most {MAX_USER_LENGTH} characters")
    return user


def _job(event: Mapping[str, Any]) -> Job:
    data = event.get("job")
    if not isinstance(data, Mapping):
        raise PayloadError("job must be an object")
    try:
        return Job.from_dict(data)
    except ValueError as err:
        raise PayloadError(f"job: {err}") from None


def _enqueue(event: Mapping[str, Any]) -> Callable[[RedisQueuePort], Any]:
    job = _job(event)
    key = event.get("idempotency_key")
    try:
        key = validate_idempotency_key(key if isinstance(key, str) or key is None else "")
    except RequestError as err:
        raise PayloadError(f"idempotency_key: {err}") from None
    return lambda port: port.enqueue(job, key)


def _allow(event: Mapping[str, Any]) -> Callable[[RedisQueuePort], Any]:
    user, limit = _user(event), _int(event, "limit", required=False)
    return lambda port: list(port.allow(user, limit))


def _mark(event: Mapping[str, Any]) -> Callable[[RedisQueuePort], Any]:
    now_ms = _int(event, "now_ms", required=True)
    return lambda port: port.mark_gpu_started(now_ms)


def _cancel(event: Mapping[str, Any]) -> Callable[[RedisQueuePort], Any]:
    job_id, user = event.get("job_id"), _user(event)
    if not isinstance(job_id, str) or not is_job_id(job_id):
        raise PayloadError("job_id must be a job id (a UUID)")
    return lambda port: port.cancel(job_id, user)


def _keep_warm(event: Mapping[str, Any]) -> Callable[[RedisQueuePort], Any]:
    until_ms = _int(event, "until_ms", required=True)
    return lambda port: port.set_keep_warm(until_ms)


OPERATIONS: dict[str, tuple[tuple[str, ...], Callable[[Mapping[str, Any]], Callable[[RedisQueuePort], Any]]]] = {
    "enqueue": (("job", "idempotency_key"), _enqueue),
    "depth": ((), lambda event: lambda port: port.depth()),
    "allow": (("user", "limit"), _allow),
    "mark_gpu_started": (("now_ms",), _mark),
    "gpu_started_at": ((), lambda event: lambda port: port.gpu_started_at()),
    "want_start": ((), lambda event: lambda port: port.want_start()),
    "take_start_wanted": ((), lambda event: lambda port: port.take_start_wanted()),
    "clear_start_wanted": ((), lambda event: lambda port: port.clear_start_wanted()),
    "mark_user_stop": ((), lambda event: lambda port: port.mark_user_stop()),
    "cancel": (("job_id", "user"), _cancel),
    "set_keep_warm": (("until_ms",), _keep_warm),
    "clear_keep_warm": ((), lambda event: lambda port: port.clear_keep_warm()),
}
