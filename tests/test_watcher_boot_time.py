"""The cold-start ETA from the watcher's real loop: once the engine answers and the ready mark is written, the boot
(from the router's start mark in Redis to ready) joins the samples in SSM that /ping's ETA is the median of. Real
redis-server, moto (server) SSM, IMDSv2 through the emulator."""
from __future__ import annotations

import json
import time

import pytest
import redis
from support.watcher_harness import make_config, running, running_instance, ssm_value, wait_for

from tlfif_common import names
from tlfif_local.imds import ImdsEmulator
from tlfif_local.ports import free_port
from tlfif_router.boot_eta import boot_eta_seconds
from tlfif_watcher.engines.echo import EchoEngine
from tlfif_watcher.imds import ImdsClient
from tlfif_watcher.instance import InstanceControl
from tlfif_watcher.metrics import Metrics
from tlfif_watcher.watcher import Watcher

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def node(moto_clients):
    instance_id = running_instance(moto_clients)
    with ImdsEmulator(instance_id) as imds:
        yield instance_id, InstanceControl(ImdsClient(imds.url), ec2=moto_clients("ec2"), ssm=moto_clients("ssm"),
                                           metrics=Metrics(moto_clients("cloudwatch")))


def start_watcher(redis_url, client, s3, control) -> Watcher:
    watcher = Watcher(make_config(redis_url), redis_client=client, s3=s3, engine=EchoEngine(0), instance=control)
    watcher.claim_timeout = 0.1
    return watcher


def test_each_boot_is_recorded_once_ready_and_feeds_the_eta(redis_url, redis_client, s3, queue, node, moto_clients):
    instance_id, control = node
    ssm = moto_clients("ssm")
    recorded: list[int] = []
    for boot_seconds in (42, 50, 44):  # three cold starts of the same node
        queue.mark_gpu_started(int(time.time() * 1000) - boot_seconds * 1000)  # the router's StartInstances
        recorded.append(boot_seconds)
        with running(start_watcher(redis_url, redis_client, s3, control)):
            wait_for(lambda: ssm_value(ssm, names.ssm_ready_param(instance_id)), what="the ready mark")
            wait_for(lambda: len(json.loads(ssm_value(ssm, names.SSM_BOOT_SECONDS) or "[]")) == len(recorded),
                     what="the boot sample")
    samples = json.loads(ssm_value(ssm, names.SSM_BOOT_SECONDS))
    # whole seconds from the mark to ready
    assert all(0 <= s - b <= 2 for s, b in zip(samples, recorded, strict=True)), samples
    assert boot_eta_seconds(ssm, names.BOOT_ETA_SECONDS) == sorted(samples)[1]  # what /ping answers: their median


def test_redis_down_at_ready_still_marks_ready_without_a_sample(redis_url, s3, node, moto_clients):
    instance_id, control = node
    ssm = moto_clients("ssm")
    dead = redis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2, socket_timeout=0.2)
    watcher = start_watcher(redis_url, dead, s3, control)
    with running(watcher):
        wait_for(lambda: ssm_value(ssm, names.ssm_ready_param(instance_id)), what="the ready mark")
        assert watcher.ready
    assert ssm_value(ssm, names.SSM_BOOT_SECONDS) is None
