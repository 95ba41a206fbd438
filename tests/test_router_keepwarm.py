"""POST /keepwarm on the router: the keep-warm mark in the queue (the watcher reads it), bounded and validated."""
from __future__ import annotations

import time

import pytest

from tlfif_common import names
from tlfif_common.keepwarm import DEFAULT_MAX_MINUTES
from tlfif_common.workqueue import KEEP_WARM_GRACE_MS, WorkQueue
from tlfif_common import redis_keys as keys
from tlfif_local.ports import free_port

from support.router_cloud import aws_cloud_fixture, cloud_fixture, invoke, load_event  # noqa: F401


def keepwarm(body=None, **kwargs):
    return invoke(load_event("keepwarm", **({"body": body} if body is not None else {}), **kwargs))


def test_sample_event_switches_on_for_its_max_minutes(cloud, redis_client):
    before = int(time.time() * 1000)
    answer = keepwarm()  # the sample event's own body: {"on": true, "max_minutes": 120}
    after = int(time.time() * 1000)
    assert answer.status == 200 and answer.body["status"] == "on" and set(answer.body) == {"status", "until"}
    assert before + 120 * 60_000 <= answer.body["until"] <= after + 120 * 60_000
    assert WorkQueue(redis_client).keep_warm_until() == answer.body["until"]
    ttl_ms = redis_client.pttl(keys.KEEP_WARM)  # the mark outlives `until` by the grace, so the watcher sees it pass
    assert 120 * 60_000 < ttl_ms <= 120 * 60_000 + KEEP_WARM_GRACE_MS
    assert cloud.calls == [], "keep-warm neither starts nor stops the GPU"


def test_max_minutes_defaults_to_two_hours(cloud, redis_client):
    before = int(time.time() * 1000)
    answer = keepwarm({"on": True})
    assert answer.status == 200
    assert DEFAULT_MAX_MINUTES == 120
    assert before + 120 * 60_000 <= answer.body["until"] <= int(time.time() * 1000) + 120 * 60_000


def test_switching_on_again_moves_until_and_off_clears(cloud, redis_client):
    first = keepwarm({"on": True, "max_minutes": 480}).body["until"]
    second = keepwarm({"on": True, "max_minutes": 1})
    assert second.status == 200 and second.body["until"] < first
    assert WorkQueue(redis_client).keep_warm_until() == second.body["until"]
    off = keepwarm({"on": False})
    assert off.status == 200 and off.body == {"status": "off"}
    assert not redis_client.exists(keys.KEEP_WARM)
    assert keepwarm({"on": False, "max_minutes": 5}).body == {"status": "off"}  # idempotent; max ignored


@pytest.mark.parametrize("body, field", [
    ({}, "on"),
    ({"on": "yes"}, "on"),
    ({"on": 1}, "on"),
    ({"on": True, "max_minutes": 0}, "max_minutes"),
    ({"on": True, "max_minutes": 481}, "max_minutes"),
    ({"on": True, "max_minutes": 30.5}, "max_minutes"),
    ({"on": True, "max_minutes": "60"}, "max_minutes"),
    ({"on": True, "max_minutes": True}, "max_minutes"),
    ({"on": True, "until": 1}, "until"),
    ([True], "body"),
])
def test_bad_bodies_are_400_naming_the_field(cloud, redis_client, body, field):
    answer = keepwarm(body)
    assert answer.status == 400 and answer.body["field"] == field, answer.body
    assert field in answer.error or field == "body"
    assert not redis_client.exists(keys.KEEP_WARM)


def test_missing_or_malformed_body_is_400_naming_body(cloud):
    event = load_event("keepwarm")
    del event["body"]
    assert invoke(event).body["field"] == "body"
    assert invoke(load_event("keepwarm", raw_body="{on: true")).body["field"] == "body"
    answer = invoke(load_event("keepwarm", body={"on": True, "max_minutes": 3}, base64_body=True))
    assert answer.status == 200 and answer.body["status"] == "on"


def test_stop_switches_keep_warm_off(cloud, redis_client):
    assert keepwarm({"on": True}).status == 200
    assert invoke(load_event("stop")).status == 200
    assert not redis_client.exists(keys.KEEP_WARM), "the user's stop wins over keep-warm"


def test_a_shortened_minute_shortens_the_maximum_lifetime(cloud, monkeypatch):
    monkeypatch.setenv(names.ENV_MINUTE_SECONDS, "0.5")  # as the local cloud's --minute-seconds sets it
    cloud.rebuild()
    before = int(time.time() * 1000)
    until = keepwarm({"on": True, "max_minutes": 4}).body["until"]
    assert before + 2000 <= until <= int(time.time() * 1000) + 2000


def test_without_a_token_it_is_refused(cloud, redis_client):
    answer = keepwarm({"on": True}, no_claims=True)
    assert answer.status == 401
    assert not redis_client.exists(keys.KEEP_WARM)


def test_redis_down_is_503(cloud, monkeypatch):
    monkeypatch.setenv(names.ENV_REDIS_URL, f"redis://127.0.0.1:{free_port()}/0")
    cloud.rebuild()
    answer = keepwarm({"on": True})
    assert answer.status == 503 and answer.error == "queue unavailable"


def test_lean_profile_goes_through_the_queue_function(redis_url, redis_client, monkeypatch):
    """Lambda cannot run here (moto's Lambda needs Docker): `lambda_client_calling` answers Invoke in-process."""
    from tlfif_router import queue_handler
    from tlfif_router.queue_port import LambdaQueuePort

    from support.lambda_invoke import lambda_client_calling

    monkeypatch.setenv(names.ENV_REDIS_URL, redis_url)
    queue_handler.reset_port()
    try:
        port = LambdaQueuePort(lambda_client_calling({"q": queue_handler.handler}), "q")
        until = int(time.time() * 1000) + 60_000
        port.set_keep_warm(until)
        assert WorkQueue(redis_client).keep_warm_until() == until
        port.clear_keep_warm()
        assert WorkQueue(redis_client).keep_warm_until() is None
        for bad in ({"op": "set_keep_warm"}, {"op": "set_keep_warm", "until_ms": "soon"},
                    {"op": "clear_keep_warm", "until_ms": 1}):
            refused = queue_handler.handler(bad, None)
            assert refused["ok"] is False and "until_ms" in refused["error"], refused
    finally:
        queue_handler.reset_port()
