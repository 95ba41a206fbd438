"""Router POST /stop and every GET /ping state, against moto EC2/SSM and the real redis-server."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest

from tlfif_common import names
from tlfif_common import redis_keys as keys
from tlfif_common.jobs import JOB_TTL_SECONDS

from support.router_cloud import aws_cloud_fixture, cloud_fixture, invoke, load_event  # noqa: F401

ETA = names.BOOT_ETA_SECONDS  # /ping's cold-start ETA while no boot has been recorded

pytestmark = pytest.mark.timeout(60)


def _ms(dt) -> int:
    return int(dt.timestamp() * 1000)


def test_stop_stops_the_gpu_and_forgets_readiness(cloud):
    cloud.set_ready(str(_ms(cloud.launch_time()) + 60_000))
    answer = invoke(load_event("stop"))
    assert answer.status == 200 and answer.body == {"status": "stopping"}
    assert cloud.state() == "stopped" and cloud.calls == ["StopInstances"]
    assert cloud.ready_param() is None
    assert cloud.metric(names.METRIC_MANUAL_STOPS) == 1


@pytest.mark.parametrize("state", ["stopped", "stopping"])
def test_stop_is_idempotent(cloud, state):
    cloud.set_state(state)
    for _ in range(2):
        answer = invoke(load_event("stop"))
        assert answer.status == 200 and answer.body == {"status": "stopping"}
    assert cloud.state() == "stopped"
    assert cloud.metric(names.METRIC_MANUAL_STOPS) == 2


@pytest.mark.parametrize("ec2_state, gpu", [
    ("stopped", "stopped"),
    ("pending", "pending"),
    ("running", "running"),
    ("stopping", "stopping"),
    ("shutting-down", "stopped"),
    ("terminated", "stopped"),
])
def test_ping_reports_the_gpu_state(cloud, ec2_state, gpu):
    cloud.set_state(ec2_state)
    answer = invoke(load_event("ping"))
    assert answer.status == 200 and answer.body == {"status": "ok", "gpu": gpu, "queue_depth": 0, "eta": ETA}
    assert cloud.calls == []  # a ping never starts or stops anything on its own


def test_ping_counts_the_queue(cloud):
    for _ in range(3):
        assert invoke(load_event("infer", body={"prompt": "hi", "idle": 1})).status == 202
    assert invoke(load_event("ping")).body["queue_depth"] == 3


@pytest.mark.parametrize("stamp", [
    lambda launch: str(_ms(launch) + 5_000),  # epoch ms, what the watcher writes
    lambda launch: str(_ms(launch) // 1000 + 5),  # epoch seconds (`date +%s` in rc.local)
    lambda launch: (launch + timedelta(seconds=5)).isoformat(),  # ISO 8601 with offset
    lambda launch: (launch + timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
])
def test_ping_is_ready_once_the_marker_is_newer_than_the_launch(cloud, stamp):
    cloud.set_ready(stamp(cloud.launch_time()))
    assert invoke(load_event("ping")).body["gpu"] == "ready"


@pytest.mark.parametrize("value", [
    lambda launch: str(_ms(launch) - 5_000),  # from before this launch
    lambda launch: "not a time",
])
def test_ping_is_running_when_the_marker_is_stale_or_garbage(cloud, value):
    cloud.set_ready(value(cloud.launch_time()))
    assert invoke(load_event("ping")).body["gpu"] == "running"


def test_ready_marker_must_also_be_newer_than_the_routers_start_mark(cloud, redis_client):
    """moto keeps LaunchTime on a restart: the router's own start mark in Redis decides then."""
    launch = _ms(cloud.launch_time())
    cloud.set_ready(str(launch + 10_000))  # written during the previous run
    redis_client.set(keys.GPU_STARTED_AT, launch + 20_000)  # the router restarted the GPU after that
    assert invoke(load_event("ping")).body["gpu"] == "running"
    cloud.set_ready(str(launch + 30_000))  # the watcher says ready again
    assert invoke(load_event("ping")).body["gpu"] == "ready"


def test_ready_needs_the_instance_running(cloud):
    cloud.set_ready(str(_ms(cloud.launch_time()) + 5_000))
    cloud.set_state("stopping")
    assert invoke(load_event("ping")).body["gpu"] == "stopping"


def test_full_cycle_stop_start_ready(cloud):
    """stop → /infer starts the GPU → running until the watcher writes a fresh marker → ready."""
    cloud.set_ready(str(_ms(cloud.launch_time()) + 1_000))
    assert invoke(load_event("ping")).body["gpu"] == "ready"
    assert invoke(load_event("stop")).status == 200
    assert invoke(load_event("ping")).body["gpu"] == "stopped"
    answer = invoke(load_event("infer", body={"prompt": "hi", "idle": 2}))
    assert answer.body["status"] == "starting"
    assert invoke(load_event("ping")).body == {"status": "ok", "gpu": "running", "queue_depth": 1, "eta": ETA}
    import time

    cloud.set_ready(str(int(time.time() * 1000) + 1))
    assert invoke(load_event("ping")).body["gpu"] == "ready"


def test_stop_marks_when_the_user_stopped_the_gpu_so_the_watcher_ends_older_jobs(cloud, redis_client):
    before = int(time.time() * 1000)
    assert invoke(load_event("stop")).status == 200
    stopped_at = int(redis_client.get(keys.USER_STOP))
    assert before <= stopped_at <= int(time.time() * 1000)
    assert 0 < redis_client.ttl(keys.USER_STOP) <= JOB_TTL_SECONDS
