"""The budget kill switch stays thrown: after BudgetKiller stopped the GPU this month, /infer does not restart it."""
from __future__ import annotations

import json
import time

from tlfif_common import names
from tlfif_common import redis_keys as keys

from support.router_cloud import aws_cloud_fixture, cloud_fixture, invoke, load_event  # noqa: F401

GOOD = {"prompt": "hello", "idle": 5}


def mark_budget_stop(cloud, month: str) -> None:
    cloud.clients["ssm"].put_parameter(
        Name=names.SSM_BUDGET_STOP, Type="String", Overwrite=True,
        Value=json.dumps({"month": month, "stopped_at": f"{month}-20T10:00:00Z", "budget": "tl-fif", "amount": 20.1}))


def this_month() -> str:
    return time.strftime("%Y-%m", time.gmtime())


def test_stopped_gpu_is_not_restarted_in_the_month_the_budget_ran_out(cloud, redis_client):
    cloud.set_state("stopped")
    mark_budget_stop(cloud, this_month())
    answer = invoke(load_event("infer", body=GOOD))
    assert answer.status == 403 and "budget" in answer.error
    assert cloud.state() == "stopped" and cloud.calls == []
    assert redis_client.llen(keys.PENDING) == 0


def test_last_months_budget_stop_does_not_hold(cloud):
    cloud.set_state("stopped")
    mark_budget_stop(cloud, "2001-01")
    answer = invoke(load_event("infer", body=GOOD))
    assert answer.status == 202 and answer.body["status"] == "starting" and cloud.state() == "running"


def test_a_gpu_someone_started_by_hand_still_takes_jobs(cloud):
    cloud.set_state("running")
    mark_budget_stop(cloud, this_month())
    answer = invoke(load_event("infer", body=GOOD))
    assert answer.status == 202 and answer.body["status"] == "queued"
