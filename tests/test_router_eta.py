"""The cold-start ETA: the watcher records each boot (start mark → ready) in SSM, /ping and /infer answer the
median of the recent ones, the constant until a boot was recorded. Real router handler, moto SSM/EC2, real Redis."""
from __future__ import annotations

import json

import pytest

from tlfif_common import names
from tlfif_common.workqueue import WorkQueue
from tlfif_watcher.boot_time import LAUNCH_PHASE_S, boot_seconds, record_boot

from support.router_cloud import aws_cloud_fixture, cloud_fixture, invoke, load_event  # noqa: F401

pytestmark = pytest.mark.timeout(60)

JOB = {"prompt": "hi", "idle": 1}


@pytest.fixture(name="eta_cloud")
def eta_cloud_fixture(cloud):
    """The router test bed with no boot recorded yet (the parameter outlives tests within the module)."""
    _forget_boots(cloud)
    yield cloud
    _forget_boots(cloud)


def _forget_boots(cloud) -> None:
    try:
        cloud.clients["ssm"].delete_parameter(Name=names.SSM_BOOT_SECONDS)
    except cloud.clients["ssm"].exceptions.ParameterNotFound:
        pass


def boot(ssm, seconds: int, ready_ms: int = 1_800_000_000_000) -> int | None:
    """One watcher boot that took `seconds` from the router's start mark to ready, on a machine up that long."""
    return record_boot(ssm, ready_ms - seconds * 1000, ready_ms=ready_ms, uptime=lambda: seconds)


def ping_eta() -> int:
    answer = invoke(load_event("ping"))
    assert answer.status == 200 and {"status", "gpu", "queue_depth"} <= set(answer.body)  # nothing renamed
    return answer.body["eta"]


def test_eta_is_the_configured_constant_until_a_boot_was_recorded(eta_cloud):
    assert ping_eta() == names.BOOT_ETA_SECONDS
    eta_cloud.set_state("stopped")
    answer = invoke(load_event("infer", body=JOB))
    assert answer.status == 202 and answer.body["status"] == "starting"
    assert answer.body["eta"] == names.BOOT_ETA_SECONDS


def test_ping_and_infer_answer_the_median_of_the_recorded_boots(eta_cloud):
    ssm = eta_cloud.clients["ssm"]
    assert [boot(ssm, s) for s in (120, 60, 100)] == [120, 60, 100]
    assert ping_eta() == 100
    eta_cloud.set_state("stopped")
    answer = invoke(load_event("infer", body=JOB))
    assert answer.body["status"] == "starting" and answer.body["eta"] == 100


def test_only_the_newest_boots_count(eta_cloud):
    ssm = eta_cloud.clients["ssm"]
    for seconds in [500] * 3 + [70] * names.BOOT_SAMPLES:  # an old slow image, then a faster one
        boot(ssm, seconds)
    stored = json.loads(ssm.get_parameter(Name=names.SSM_BOOT_SECONDS)["Parameter"]["Value"])
    assert stored == [70] * names.BOOT_SAMPLES
    assert ping_eta() == 70


def test_the_routers_start_mark_times_the_boot(eta_cloud, redis_client):
    """End to end: /infer starts the stopped GPU and marks the start in Redis; the watcher reads that mark when its
    engine answers 75 s later; the next cold start is announced with 75 s."""
    eta_cloud.set_state("stopped")
    assert invoke(load_event("infer", body=JOB)).body["status"] == "starting"
    started_ms = WorkQueue(redis_client).gpu_started_at()
    assert started_ms is not None
    assert record_boot(eta_cloud.clients["ssm"], started_ms, ready_ms=started_ms + 75_000, uptime=lambda: 60.0) == 75
    assert ping_eta() == 75


@pytest.mark.parametrize("started_ms, ready_ms, uptime_s", [
    (None, 1_000_000, 60.0),  # no start mark at all
    (2_000_000, 1_000_000, 60.0),  # a mark after ready: a later start
    (1_000_000 - (60 + LAUNCH_PHASE_S + 1) * 1000, 1_000_000, 60.0),  # older than this boot could be: an earlier start
])
def test_a_boot_without_its_own_start_mark_is_not_recorded(eta_cloud, started_ms, ready_ms, uptime_s):
    assert boot_seconds(started_ms, ready_ms, uptime_s) is None
    assert record_boot(eta_cloud.clients["ssm"], started_ms, ready_ms=ready_ms, uptime=lambda: uptime_s) is None
    assert ping_eta() == names.BOOT_ETA_SECONDS


@pytest.mark.parametrize("value", ["not json", "{}", '[true, -5, "90", 1.5]', "[]"])
def test_a_damaged_parameter_gives_the_constant_and_the_next_boot_repairs_it(eta_cloud, value):
    ssm = eta_cloud.clients["ssm"]
    ssm.put_parameter(Name=names.SSM_BOOT_SECONDS, Value=value, Type="String", Overwrite=True)
    assert ping_eta() == names.BOOT_ETA_SECONDS
    boot(ssm, 80)
    assert json.loads(ssm.get_parameter(Name=names.SSM_BOOT_SECONDS)["Parameter"]["Value"]) == [80]
    assert ping_eta() == 80
