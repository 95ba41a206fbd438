"""GET /cost: what the CostLabel shows (issue "Cost"). Never calls Cost Explorer ($0.01 a request).

    200 {"month_to_date_eur": 3.21 | null, "as_of": "2026-11-26T12:00:03Z" | null,
         "gpu_state": "stopped|pending|running|stopping", "gpu_hourly_eur": 0.5659 | null,
         "session_eur": 0.0283 | null, "session_seconds": 180, "daily": [{"date": "2026-11-01", "eur": 0.12}, ...],
         "budget_eur": 17.2 | null}

- month_to_date_eur, as_of, daily: the cost reporter's last figures (SSM names.SSM_COST_MONTH_TO_DATE, one
  GetParameter). null / [] before its first run, and when its figures belong to an earlier month.
- gpu_hourly_eur: the instance type's on-demand price in this region from tlfif_common/prices.json × EUR per USD
  (TLFIF_USD_TO_EUR or the table's rate); null when the table has no price for the type or region.
- budget_eur: the stack's AWS Budgets limit (TLFIF_MONTHLY_BUDGET_USD, the Budget's USD) × EUR per USD: what
  the budget kill switch stops the GPU at. null when the router is not told it (the local cloud).
- session_seconds, session_eur: while the instance is `running`, the time since the session started × the hourly
  price, so the label moves every poll although Cost Explorer lags a day. The session started at the newer of
  EC2's LaunchTime (moved by every start) and the router's own start mark in the queue (`gpu_started_at`; moto
  never moves LaunchTime). 0 when the instance is not running. The queue being unreachable only loses the mark.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any

from tlfif_common import names

from .aws import aws_call
from .deps import Deps
from .errors import QueueUnavailable
from .gpu import describe_gpu
from .log import get_logger, log
from .request import Request, json_response

logger = get_logger("router")


def handle(req: Request, deps: Deps) -> dict:
    gpu = describe_gpu(deps.ec2, deps.config.gpu_instance_id)
    state, launch_ms = gpu.state, gpu.launch_time_ms
    now_ms = deps.now_ms()
    hourly_eur, rate = _hourly_eur(req, gpu.instance_type, deps.ec2.meta.region_name)

    session_seconds, session_eur = 0, 0.0
    if state == "running":
        started = [launch_ms] if launch_ms is not None else []
        if not req.queue_down:
            try:
                mark = deps.queue.gpu_started_at()
            except QueueUnavailable as err:
                log(logger, logging.WARNING, "queue unreachable; session timed from LaunchTime only",
                    **req.log_fields(), error=str(err))
            else:
                if mark is not None:
                    started.append(mark)
        session_seconds = max(0, (now_ms - max(started)) // 1000) if started else 0
        session_eur = None if hourly_eur is None else round(hourly_eur * session_seconds / 3600, 4)

    month = _month_to_date(req, deps, now_ms)
    return json_response(200, {
        "month_to_date_eur": month.get("month_to_date_eur"),
        "as_of": month.get("as_of"),
        "gpu_state": gpu.api_state,
        "gpu_hourly_eur": hourly_eur,
        "session_eur": session_eur,
        "session_seconds": int(session_seconds),
        "daily": month.get("daily", []),
        "budget_eur": None if deps.config.monthly_budget_usd is None or rate is None
        else round(deps.config.monthly_budget_usd * rate, 2),
    })


def _hourly_eur(req: Request, instance_type: str | None, region: str) -> tuple[float | None, float | None]:
    """(the GPU's EUR per hour, EUR per USD); None where the table or the setting fails."""
    from tlfif_common import prices

    try:
        table = prices.load()
        rate = prices.usd_to_eur(table=table)
    except (LookupError, ValueError) as err:
        log(logger, logging.WARNING, "no EUR rate; /cost answers without prices", **req.log_fields(), error=str(err))
        return None, None
    try:
        usd = table.ec2_hourly_usd(instance_type or "", region)
    except (LookupError, ValueError) as err:
        log(logger, logging.WARNING, "no GPU price; /cost answers without it", **req.log_fields(),
            instance_type=instance_type, region=region, error=str(err))
        return None, rate
    return round(usd * rate, 4), rate


def _month_to_date(req: Request, deps: Deps, now_ms: int) -> dict[str, Any]:
    ssm = deps.ssm
    with aws_call("ssm:GetParameter"):
        try:
            value = ssm.get_parameter(Name=names.SSM_COST_MONTH_TO_DATE)["Parameter"]["Value"]
        except ssm.exceptions.ParameterNotFound:
            return {}
    try:
        data = json.loads(value)
        figures = {"month_to_date_eur": float(data["month_to_date_eur"]), "as_of": str(data["as_of"]),
                   "daily": [{"date": str(d["date"]), "eur": float(d["eur"])} for d in data.get("daily", [])]}
        month = str(data["month"])
    except (ValueError, TypeError, KeyError) as err:
        log(logger, logging.WARNING, "unreadable month-to-date parameter; /cost answers without it",
            **req.log_fields(), parameter=names.SSM_COST_MONTH_TO_DATE, error=f"{type(err).__name__}: {err}")
        return {}
    this_month = time.strftime("%Y-%m", time.gmtime(now_ms / 1000))
    if month != this_month:  # the reporter has not run since the month began: last month's figure is not this one
        return {"as_of": figures["as_of"]}
    return figures
