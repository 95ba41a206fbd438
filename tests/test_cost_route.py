"""GET /cost on the router: moto for EC2/SSM/CloudWatch, the real redis-server for the router's start mark."""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone

import pytest

from tlfif_common import names
from tlfif_router import handler
from tlfif_router.config import RouterConfig
from tlfif_router.deps import Deps
from tlfif_router.queue_port import RedisQueuePort

pytestmark = pytest.mark.timeout(60)
MOTO_AMI = "ami-12c6146b"  # one of the images moto always has
ISSUER, AUDIENCE = "https://cognito-idp.eu-central-1.amazonaws.com/eu-central-1_TEST", "client-123"
HOURLY_EUR = round(0.658 * 0.86, 4)  # g4dn.xlarge in eu-central-1 × the table's EUR per USD = 0.5659


@pytest.fixture
def gpu(moto_clients):
    ec2 = moto_clients("ec2")
    instance = ec2.run_instances(ImageId=MOTO_AMI, InstanceType="g4dn.xlarge", MinCount=1, MaxCount=1)
    instance_id = instance["Instances"][0]["InstanceId"]
    launch = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["LaunchTime"]
    return {"ec2": ec2, "ssm": moto_clients("ssm"), "cloudwatch": moto_clients("cloudwatch"),
            "id": instance_id, "launch_ms": int(launch.timestamp() * 1000)}


@pytest.fixture(autouse=True)
def table_rate(monkeypatch):
    monkeypatch.delenv(names.ENV_USD_TO_EUR, raising=False)


def make_deps(gpu, queue, now_ms: int, budget_usd: float | None = None) -> Deps:
    config = RouterConfig(responses_bucket="tl-fif-responses", gpu_instance_id=gpu["id"], jwt_issuer=ISSUER,
                          jwt_audience=AUDIENCE, redis_url="redis://unused", monthly_budget_usd=budget_usd)
    return Deps(config, queue=queue, clock=lambda: now_ms / 1000, ec2=gpu["ec2"], ssm=gpu["ssm"],
                cloudwatch=gpu["cloudwatch"])


def get_cost(deps: Deps) -> tuple[int, dict]:
    now = deps.clock()
    event = {"version": "2.0", "routeKey": "GET /cost", "rawPath": "/cost",
             "requestContext": {"requestId": "req-cost-1", "http": {"method": "GET", "path": "/cost"},
                                "authorizer": {"jwt": {"claims": {
                                    "sub": "user-1", "token_use": "id", "iss": ISSUER, "aud": AUDIENCE,
                                    "exp": str(int(now) + 3600), "iat": str(int(now))}}}}}
    response = handler.handle(event, None, deps)
    return response["statusCode"], json.loads(response["body"])


def put_month(ssm, month: str, total: float, daily: list[dict]) -> None:
    ssm.put_parameter(Name=names.SSM_COST_MONTH_TO_DATE, Type="String", Overwrite=True, Value=json.dumps(
        {"month": month, "as_of": f"{month}-03T06:00:04Z", "month_to_date_eur": total, "currency": "USD",
         "usd_to_eur": 0.86, "daily": daily}))


def test_running_session_is_timed_from_the_newer_start_mark(gpu, redis_client):
    now_ms = gpu["launch_ms"] + 3_600_000  # an hour after moto's LaunchTime (moto never moves it on a start)
    queue = RedisQueuePort(redis_client, clock=lambda: now_ms / 1000)
    queue.mark_gpu_started(now_ms - 180_000)  # the router started the GPU 3 minutes ago
    month = time.strftime("%Y-%m", time.gmtime(now_ms / 1000))
    daily = [{"date": f"{month}-01", "eur": 1.5}, {"date": f"{month}-02", "eur": 0.25}]
    put_month(gpu["ssm"], month, 1.75, daily)

    status, body = get_cost(make_deps(gpu, queue, now_ms, budget_usd=20))
    assert status == 200
    # 180 s × €0.5659/h = €0.028295 → 0.0283; the budget $20 × 0.86 = €17.20
    assert body == {"month_to_date_eur": 1.75, "as_of": f"{month}-03T06:00:04Z", "gpu_state": "running",
                    "gpu_hourly_eur": HOURLY_EUR, "session_eur": 0.0283, "session_seconds": 180, "daily": daily,
                    "budget_eur": 17.2}


def test_without_a_start_mark_the_launch_time_counts(gpu, redis_client, monkeypatch):
    monkeypatch.setenv(names.ENV_USD_TO_EUR, "1")
    now_ms = gpu["launch_ms"] + 600_000
    status, body = get_cost(make_deps(gpu, RedisQueuePort(redis_client), now_ms))
    assert status == 200
    # 600 s × $0.658/h at 1 EUR per USD = 0.10967 → 0.1097; no cost report yet → null month, empty series
    assert (body["session_seconds"], body["session_eur"], body["gpu_hourly_eur"]) == (600, 0.1097, 0.658)
    assert (body["month_to_date_eur"], body["as_of"], body["daily"]) == (None, None, [])
    # A start mark older than LaunchTime (an earlier session) does not stretch this one.
    RedisQueuePort(redis_client).mark_gpu_started(gpu["launch_ms"] - 86_400_000)
    assert get_cost(make_deps(gpu, RedisQueuePort(redis_client), now_ms))[1]["session_seconds"] == 600


def test_stopped_gpu_costs_nothing_and_last_months_figures_are_not_shown(gpu, redis_client):
    gpu["ec2"].stop_instances(InstanceIds=[gpu["id"]])
    now_ms = int(datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc).timestamp() * 1000)
    put_month(gpu["ssm"], "2026-11", 17.5, [{"date": "2026-11-30", "eur": 0.4}])
    status, body = get_cost(make_deps(gpu, RedisQueuePort(redis_client), now_ms))
    assert status == 200
    assert body == {"month_to_date_eur": None, "as_of": "2026-11-03T06:00:04Z", "gpu_state": "stopped",
                    "gpu_hourly_eur": HOURLY_EUR, "session_eur": 0.0, "session_seconds": 0, "daily": [],
                    "budget_eur": None}


def test_answers_while_the_queue_is_down(gpu):
    from tlfif_local.ports import free_port

    down = RedisQueuePort.from_url(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    now_ms = gpu["launch_ms"] + 90_000
    status, body = get_cost(make_deps(gpu, down, now_ms))
    assert status == 200 and body["gpu_state"] == "running" and body["session_seconds"] == 90


def test_unknown_instance_is_a_502_naming_the_call(gpu, redis_client):
    gpu["id"] = "i-0123456789abcdef0"
    status, body = get_cost(make_deps(gpu, RedisQueuePort(redis_client), gpu["launch_ms"]))
    assert status == 502 and body["error"].startswith("ec2:DescribeInstances: ")


def test_no_price_for_the_region_leaves_the_money_fields_null(moto_endpoint, redis_client):
    import boto3

    clients = {s: boto3.client(s, region_name="ap-south-1", endpoint_url=moto_endpoint)
               for s in ("ec2", "ssm", "cloudwatch")}
    instance = clients["ec2"].run_instances(ImageId=MOTO_AMI, InstanceType="g4dn.xlarge", MinCount=1, MaxCount=1)
    launch = instance["Instances"][0]["LaunchTime"]
    gpu = {**clients, "id": instance["Instances"][0]["InstanceId"], "launch_ms": int(launch.timestamp() * 1000)}
    status, body = get_cost(make_deps(gpu, RedisQueuePort(redis_client), gpu["launch_ms"] + 60_000))
    assert status == 200 and body["session_seconds"] == 60
    assert body["gpu_hourly_eur"] is None and body["session_eur"] is None
