"""Cost reporter against moto: Cost Explorer results are set up through moto's own API
(`/moto-api/static/ce/cost-and-usage-results`), the metric and the SSM parameter are read back from moto."""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import boto3
import pytest
import requests

from tlfif_common import names
from tlfif_router import cost_reporter

pytestmark = pytest.mark.timeout(60)


def ce_results(moto_endpoint: str, *days: tuple[str, str, str]) -> None:
    """Queue one GetCostAndUsage answer: (day, amount, unit) per day."""
    result = {"ResultsByTime": [
        {"TimePeriod": {"Start": day, "End": (date.fromisoformat(day) + timedelta(days=1)).isoformat()},
         "Total": {"UnblendedCost": {"Amount": amount, "Unit": unit}}, "Groups": [], "Estimated": True}
        for day, amount, unit in days], "DimensionValueAttributes": []}
    response = requests.post(f"{moto_endpoint}/moto-api/static/ce/cost-and-usage-results",
                             json={"results": [result]}, timeout=5)
    assert response.status_code == 201


@pytest.fixture
def clients(moto_endpoint):
    ce = boto3.client("ce", region_name=cost_reporter.COST_EXPLORER_REGION, endpoint_url=moto_endpoint)
    requests_seen: list[dict] = []
    ce.meta.events.register("provide-client-params.ce.GetCostAndUsage",
                            lambda params, **_: requests_seen.append(dict(params)))
    return {"ce": ce, "seen": requests_seen,
            "cloudwatch": boto3.client("cloudwatch", region_name=names.DEFAULT_REGION, endpoint_url=moto_endpoint),
            "ssm": boto3.client("ssm", region_name=names.DEFAULT_REGION, endpoint_url=moto_endpoint)}


def stored(ssm) -> dict:
    return json.loads(ssm.get_parameter(Name=names.SSM_COST_MONTH_TO_DATE)["Parameter"]["Value"])


def metric_values(cloudwatch, now: datetime) -> list[float]:
    stats = cloudwatch.get_metric_statistics(
        Namespace=names.METRICS_NAMESPACE, MetricName=names.METRIC_CURRENT_SPEND_EUR,
        StartTime=now - timedelta(hours=1), EndTime=now + timedelta(hours=1), Period=3600, Statistics=["Maximum"])
    return [point["Maximum"] for point in stats["Datapoints"]]


def test_month_to_date_in_usd_becomes_eur_metric_and_ssm_figures(clients, moto_endpoint):
    ce_results(moto_endpoint, ("2026-11-01", "1.25", "USD"), ("2026-11-02", "0.50", "USD"),
               ("2026-11-03", "2.25", "USD"))
    now = datetime.now(timezone.utc).replace(microsecond=0)
    spend = cost_reporter.report(ce=clients["ce"], cloudwatch=clients["cloudwatch"], ssm=clients["ssm"],
                                 now=now, usd_to_eur=0.9)
    # (1.25 + 0.50 + 2.25) USD × 0.9 = 3.60 EUR
    assert spend.month_to_date_eur == pytest.approx(3.6)
    assert metric_values(clients["cloudwatch"], now) == [pytest.approx(3.6)]
    data = stored(clients["ssm"])
    assert data["month_to_date_eur"] == pytest.approx(3.6) and data["usd_to_eur"] == 0.9
    assert data["as_of"] == now.strftime("%Y-%m-%dT%H:%M:%SZ") and data["month"] == now.strftime("%Y-%m")
    assert data["daily"] == [{"date": "2026-11-01", "eur": 1.125}, {"date": "2026-11-02", "eur": 0.45},
                             {"date": "2026-11-03", "eur": 2.025}]
    assert data["currency"] == "USD"
    # One Cost Explorer request per run ($0.01 each), month to date, daily, unblended.
    (request,) = clients["seen"]
    assert request["Granularity"] == "DAILY" and request["Metrics"] == ["UnblendedCost"]
    assert request["TimePeriod"] == {"Start": now.date().replace(day=1).isoformat(),
                                     "End": (now.date() + timedelta(days=1)).isoformat()}


@pytest.mark.parametrize(("today", "start", "end"), [
    ("2026-11-01", "2026-11-01", "2026-11-02"),  # first day: never start == end (Cost Explorer refuses that)
    ("2026-11-17", "2026-11-01", "2026-11-18"),
    ("2026-11-30", "2026-11-01", "2026-12-01"),  # last day: the end is the 1st of next month, the latest allowed
    ("2026-12-31", "2026-12-01", "2027-01-01"),
])
def test_the_period_is_always_valid(clients, moto_endpoint, today, start, end):
    assert cost_reporter.month_period(date.fromisoformat(today)) == (start, end)
    ce_results(moto_endpoint, (start, "0.10", "USD"))
    now = datetime.fromisoformat(today + "T00:05:00+00:00")
    cost_reporter.report(ce=clients["ce"], cloudwatch=clients["cloudwatch"], ssm=clients["ssm"], now=now,
                         usd_to_eur=1.0)
    assert clients["seen"][-1]["TimePeriod"] == {"Start": start, "End": end}
    assert stored(clients["ssm"])["month"] == today[:7]


def test_eur_amounts_are_not_converted_and_no_data_is_zero(clients, moto_endpoint):
    ce_results(moto_endpoint, ("2026-11-01", "4.00", "EUR"))
    spend = cost_reporter.report(ce=clients["ce"], cloudwatch=clients["cloudwatch"], ssm=clients["ssm"],
                                 now=datetime(2026, 11, 2, 6, tzinfo=timezone.utc), usd_to_eur=0.5)
    assert spend.month_to_date_eur == 4.0 and spend.currency == "EUR"
    # Nothing queued: moto answers with no results, like a brand-new account.
    spend = cost_reporter.report(ce=clients["ce"], cloudwatch=clients["cloudwatch"], ssm=clients["ssm"],
                                 now=datetime(2026, 11, 3, 6, tzinfo=timezone.utc), usd_to_eur=0.5)
    assert (spend.month_to_date_eur, spend.daily) == (0.0, [])
    assert stored(clients["ssm"])["month_to_date_eur"] == 0.0


def test_an_unknown_currency_writes_nothing(clients, moto_endpoint):
    ce_results(moto_endpoint, ("2026-11-01", "400", "JPY"))
    with pytest.raises(ValueError, match="JPY"):
        cost_reporter.report(ce=clients["ce"], cloudwatch=clients["cloudwatch"], ssm=clients["ssm"],
                             now=datetime(2026, 11, 2, tzinfo=timezone.utc), usd_to_eur=0.9)
    with pytest.raises(clients["ssm"].exceptions.ParameterNotFound):
        clients["ssm"].get_parameter(Name=names.SSM_COST_MONTH_TO_DATE)


def test_handler_end_to_end_with_the_configured_rate(moto_endpoint, monkeypatch, capsys):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv(names.ENV_USD_TO_EUR, "0.8")
    monkeypatch.setattr(cost_reporter, "_clients", {})
    today = datetime.now(timezone.utc).date()
    ce_results(moto_endpoint, (today.replace(day=1).isoformat(), "10", "USD"))
    scheduled = {"version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Scheduled Event",
                 "source": "aws.events", "account": "123456789012", "time": "2026-11-26T12:00:00Z",
                 "region": "eu-central-1", "resources": ["arn:aws:events:eu-central-1:123456789012:rule/cost"],
                 "detail": {}}
    answer = cost_reporter.handler(scheduled, None)
    assert answer["month_to_date_eur"] == pytest.approx(8.0)
    ssm = boto3.client("ssm", region_name=names.DEFAULT_REGION, endpoint_url=moto_endpoint)
    assert stored(ssm)["usd_to_eur"] == 0.8
    log_line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert log_line["component"] == "cost-reporter" and log_line["month_to_date_eur"] == pytest.approx(8.0)
