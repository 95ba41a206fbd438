"""Cost reporter Lambda: `tlfif_router.cost_reporter.handler`, run on a schedule (RQL 6 "CurrentSpendEUR").

One run = ONE Cost Explorer request: `GetCostAndUsage` for this month, DAILY granularity, `UnblendedCost`, from
the 1st of the month (UTC) to tomorrow (the end date is exclusive, so today's partial spend is included; on the
1st the period is [1st, 2nd) rather than the invalid start == end, and on the last day the end is the 1st of the
next month, the latest end Cost Explorer accepts). The daily series summed is the month-to-date spend.

Why every 6 hours and not hourly (DECISIONS, RQL 6): each Cost Explorer request costs $0.01, so an hourly poll
would be $7.30/month - a third of the EUR 20 budget - for figures Cost Explorer refreshes only a few times a day.
Every 24 h (names.COST_POLL_HOURS; the templates make it a parameter; Cost Explorer refreshes at least once every
24 hours) is ~30 requests, ~$0.30/month.

Each run:
  1. puts the metric `CurrentSpendEUR` (namespace names.METRICS_NAMESPACE, no dimensions) - the EUR 15 alarm;
  2. writes SSM parameter names.SSM_COST_MONTH_TO_DATE (standard tier, free) as JSON:
        {"month": "2026-11", "as_of": "2026-11-26T12:00:03Z", "month_to_date_eur": 3.21, "currency": "USD",
         "usd_to_eur": 0.86, "daily": [{"date": "2026-11-01", "eur": 0.12}, ...]}
     so that GET /cost answers with one GetParameter and never pays for a Cost Explorer request.
Amounts billed in USD are converted with TLFIF_USD_TO_EUR (else the rate in tlfif_common/prices.json); amounts
Cost Explorer already reports in EUR are taken as they are. Any other currency is an error (nothing is written).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Mapping

from tlfif_common import names

from .log import get_logger, log

COST_EXPLORER_REGION = "us-east-1"  # Cost Explorer has one endpoint, ce.us-east-1.amazonaws.com
METRIC = "UnblendedCost"
SSM_VALUE_LIMIT = 4096  # standard-tier parameter size limit

logger = get_logger("cost-reporter")
_clients: dict[str, Any] = {}


@dataclass(frozen=True)
class Spend:
    month: str
    as_of: str
    month_to_date_eur: float
    currency: str
    usd_to_eur: float
    daily: list[dict[str, Any]]

    def to_json(self) -> str:
        return json.dumps({"month": self.month, "as_of": self.as_of, "month_to_date_eur": self.month_to_date_eur,
                           "currency": self.currency, "usd_to_eur": self.usd_to_eur, "daily": self.daily},
                          separators=(",", ":"))


def month_period(today: date) -> tuple[str, str]:
    """The Cost Explorer TimePeriod (Start inclusive, End exclusive) for this month up to and including today."""
    return today.replace(day=1).isoformat(), (today + timedelta(days=1)).isoformat()


def fetch_spend(ce: Any, *, now: datetime, usd_to_eur: float) -> Spend:
    """One GetCostAndUsage (more only if Cost Explorer paginates, which a one-month daily query does not)."""
    today = now.astimezone(timezone.utc).date()
    start, end = month_period(today)
    request: dict[str, Any] = {"TimePeriod": {"Start": start, "End": end}, "Granularity": "DAILY",
                               "Metrics": [METRIC]}
    daily: list[dict[str, Any]] = []
    currencies: set[str] = set()
    while True:
        response = ce.get_cost_and_usage(**request)
        for period in response.get("ResultsByTime") or []:
            day = (period.get("TimePeriod") or {}).get("Start")
            amount = ((period.get("Total") or {}).get(METRIC)) or {}
            if not day:
                continue
            value = float(amount.get("Amount") or 0.0)
            unit = (amount.get("Unit") or "USD").upper()
            currencies.add(unit)
            daily.append({"date": day, "eur": _to_eur(value, unit, usd_to_eur)})
        token = response.get("NextPageToken")
        if not token:
            break
        request["NextPageToken"] = token
    daily.sort(key=lambda d: d["date"])
    total = sum(d["eur"] for d in daily)
    for d in daily:
        d["eur"] = round(d["eur"], 4)
    return Spend(month=today.strftime("%Y-%m"), as_of=now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                 month_to_date_eur=round(total, 4), currency="+".join(sorted(currencies)) or "USD",
                 usd_to_eur=usd_to_eur, daily=daily)


def _to_eur(amount: float, unit: str, usd_to_eur: float) -> float:
    if unit == "EUR":
        return amount
    if unit == "USD":
        return amount * usd_to_eur
    raise ValueError(f"Cost Explorer reported the currency {unit!r}; the cost reporter converts only USD and EUR")


def publish(spend: Spend, *, cloudwatch: Any, ssm: Any) -> None:
    cloudwatch.put_metric_data(Namespace=names.METRICS_NAMESPACE, MetricData=[
        {"MetricName": names.METRIC_CURRENT_SPEND_EUR, "Value": spend.month_to_date_eur, "Unit": "None"}])
    value = spend.to_json()
    if len(value) > SSM_VALUE_LIMIT:  # cannot happen for 31 days, but never let a put fail on it
        value = json.dumps({**json.loads(value), "daily": []}, separators=(",", ":"))
    ssm.put_parameter(Name=names.SSM_COST_MONTH_TO_DATE, Value=value, Type="String", Overwrite=True,
                      Tier="Standard", Description="TL-FIF month-to-date spend (cost reporter)")


def report(*, ce: Any, cloudwatch: Any, ssm: Any, now: datetime, usd_to_eur: float) -> Spend:
    spend = fetch_spend(ce, now=now, usd_to_eur=usd_to_eur)
    publish(spend, cloudwatch=cloudwatch, ssm=ssm)
    log(logger, logging.INFO, "month-to-date spend reported", month=spend.month,
        month_to_date_eur=spend.month_to_date_eur, currency=spend.currency, usd_to_eur=usd_to_eur,
        days=len(spend.daily))
    return spend


def _client(service: str) -> Any:
    if service not in _clients:
        import boto3

        kwargs = {"region_name": COST_EXPLORER_REGION} if service == "ce" else {}
        _clients[service] = boto3.client(service, **kwargs)
    return _clients[service]


def handler(event: Mapping[str, Any] | None, context: Any) -> dict:
    """The scheduled entry point (EventBridge). The event's content is not used."""
    from tlfif_common import prices

    from botocore.exceptions import BotoCoreError, ClientError

    rate = prices.usd_to_eur()
    try:
        spend = report(ce=_client("ce"), cloudwatch=_client("cloudwatch"), ssm=_client("ssm"),
                       now=datetime.now(timezone.utc), usd_to_eur=rate)
    except (ClientError, BotoCoreError, ValueError) as err:
        # Logged as one JSON line, then raised: the run shows as failed (Lambda Errors metric) and the next
        # scheduled run tries again; nothing half-written is left behind (the metric goes first, SSM second).
        log(logger, logging.ERROR, "cost report failed", error=f"{type(err).__name__}: {err}",
            aws_request_id=getattr(context, "aws_request_id", None))
        raise
    return {"month": spend.month, "month_to_date_eur": spend.month_to_date_eur, "as_of": spend.as_of}
