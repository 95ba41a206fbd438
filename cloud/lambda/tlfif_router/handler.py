"""Router Lambda entry point: `tlfif_router.handler.handler` (API Gateway HTTP API, payload format 2.0).

Thin on purpose: find the route, check the JWT claims, apply the per-user rate limit, call the route with the
injected `Deps`, and turn every outcome into one JSON answer plus one JSON log line carrying the API Gateway
request id and the Lambda request id. Answers: 4xx for the caller's mistakes, 502 when an AWS call failed
(naming the call), 503 when the queue is unreachable, 500 (no details) for a bug. Never a stack trace.

Importing this module creates no clients (see deps.py and bench/router_cold_import.py).
"""
from __future__ import annotations

import logging
import time
from typing import Any, Mapping

from tlfif_common import api, names

from .claims import check_claims, claims_of
from .config import RouterConfig
from .deps import Deps
from .errors import AwsCallFailed, ConfigError, HttpError, QueueUnavailable
from .log import get_logger, log
from .metrics import MetricBuffer
from .request import Request, json_response, request_id_of, route_key_of
from .routes import ROUTES, Route

logger = get_logger("router")
_deps: Deps | None = None


def handler(event: Mapping[str, Any], context: Any) -> dict:
    """The function API Gateway invokes. Builds the dependencies once per execution environment."""
    try:
        deps = get_deps()
    except ConfigError as err:
        log(logger, logging.ERROR, "router misconfigured", request_id=request_id_of(event),
            aws_request_id=getattr(context, "aws_request_id", None), error=str(err), status=500)
        return json_response(500, api.error_body(f"router misconfigured: {err}"))
    return handle(event, context, deps)


def get_deps() -> Deps:
    global _deps
    if _deps is None:
        _deps = Deps(RouterConfig.from_env())
    return _deps


def reset_deps(deps: Deps | None = None) -> None:
    """Drop (or replace) the cached dependencies: tests, and the local cloud after changing the environment."""
    global _deps
    _deps = deps


def handle(event: Mapping[str, Any], context: Any, deps: Deps) -> dict:
    started = time.monotonic()
    route_key = route_key_of(event)
    fields: dict[str, Any] = {"request_id": request_id_of(event),
                              "aws_request_id": getattr(context, "aws_request_id", None), "route": route_key}
    metrics = MetricBuffer()
    level, message = logging.INFO, "request"
    try:
        route = ROUTES.get(route_key)
        if route is None:
            raise HttpError(404, f"no such route: {route_key}")
        caller = check_claims(claims_of(event), deps.config, now=deps.clock())
        fields["user"] = caller.sub
        req = Request(event=event, route_key=route_key, request_id=fields["request_id"],
                      aws_request_id=fields["aws_request_id"], caller=caller, metrics=metrics)
        _rate_limit(req, route, deps)
        response = route.handle(req, deps)
    except AwsCallFailed as err:
        level, message = logging.ERROR, "AWS call failed"
        fields.update(error=err.message, aws_call=err.call, aws_code=err.code, aws_message=err.detail)
        response = json_response(err.status, api.error_body(err.message))
    except HttpError as err:
        level, message = (logging.WARNING, "request refused") if err.status < 500 else (logging.ERROR, "error")
        fields.update(error=err.message, **err.extra)
        response = json_response(err.status, api.error_body(err.message, **err.extra), err.headers)
    except QueueUnavailable as err:
        level, message = logging.ERROR, "queue unavailable"
        fields.update(error=str(err))
        response = json_response(503, api.error_body("queue unavailable"))
    except Exception as err:  # noqa: BLE001 - a bug: log it in full, tell the client only that it happened
        level, message = logging.ERROR, "unhandled error"
        fields.update(error=f"{type(err).__name__}: {err}", exception=_traceback())
        response = json_response(500, api.error_body("internal error", request_id=fields["request_id"]))

    status = response["statusCode"]
    if status >= 500:
        metrics.add(names.METRIC_ERRORS)
    _flush_metrics(metrics, deps, fields)
    log(logger, level, message, status=status, duration_ms=round((time.monotonic() - started) * 1000, 1),
        **fields)
    return response


def _rate_limit(req: Request, route: Route, deps: Deps) -> None:
    """5 requests/s per user (RQL 2.2) on every route; fail open where the route can live without the queue."""
    try:
        allowed, retry_after = deps.queue.allow(req.caller.sub, deps.config.rate_limit_rps)
    except QueueUnavailable as err:
        if route.needs_queue:
            raise
        req.queue_down = True
        log(logger, logging.WARNING, "rate limiter unreachable; failing open", **req.log_fields(), error=str(err))
        return
    if not allowed:
        limit = deps.config.rate_limit_rps
        what = f"at most {limit} requests per second per user" if limit else "per-user rate limit"
        raise HttpError(429, f"too many requests ({what}); retry after {retry_after} s",
                        headers={"Retry-After": str(retry_after)})


def _flush_metrics(metrics: MetricBuffer, deps: Deps, fields: dict) -> None:
    if not metrics.counts:
        return
    try:
        metrics.flush(deps.cloudwatch)
    except AwsCallFailed as err:
        log(logger, logging.ERROR, "could not send metrics",
            **{**fields, "error": err.message, "aws_call": err.call, "aws_code": err.code})


def _traceback() -> str:
    import traceback

    return traceback.format_exc()
