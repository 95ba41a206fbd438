"""Keep-warm at the watcher: the idle timer is held while `until` lies ahead, counts again from when keep-warm ends,
and the maximum lifetime stops the GPU at once. Real redis-server, moto EC2/SSM, IMDSv2 through the emulator, a
shortened "minute"; the decision logic also with injected clocks."""
from __future__ import annotations

import time

import pytest
import redis
from support.watcher_harness import (enqueue, instance_state, make_config, poll_until_final, running,
                                     running_instance, wait_for)

from tlfif_common import redis_keys as keys
from tlfif_local.imds import ImdsEmulator
from tlfif_local.ports import free_port
from tlfif_watcher.engines.echo import EchoEngine
from tlfif_watcher.imds import ImdsClient
from tlfif_watcher.instance import InstanceControl
from tlfif_watcher.metrics import Metrics
from tlfif_watcher.stop_policy import IDLE_STOP, KEEP_WARM_EXPIRED, KEEP_WARM_HOLD, KEEP_WARM_LIMIT, KEEP_WARM_OFF
from tlfif_watcher.watcher import Watcher

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def gpu(moto_clients):
    """A running instance in moto, its IMDSv2 emulator, and the InstanceControl a watcher stops it with."""
    instance_id = running_instance(moto_clients)
    with ImdsEmulator(instance_id) as imds:
        control = InstanceControl(ImdsClient(imds.url), ec2=moto_clients("ec2"), ssm=moto_clients("ssm"),
                                  metrics=Metrics(moto_clients("cloudwatch")))
        yield instance_id, control


@pytest.fixture
def make_watcher(redis_url, redis_client, s3):
    def make(instance=None, client=None, **config):
        watcher = Watcher(make_config(redis_url, **config), redis_client=client or redis_client, s3=s3,
                          engine=EchoEngine(0), instance=instance)
        watcher.claim_timeout = 0.1
        return watcher
    return make


def now_ms() -> int:
    return int(time.time() * 1000)


def test_held_past_the_idle_time_then_counts_from_when_keep_warm_ends(make_watcher, queue, gpu, moto_clients, s3):
    instance_id, control = gpu
    queue.set_keep_warm(now_ms() + 60_000)
    watcher = make_watcher(instance=control, minute_seconds=0.1, default_idle_minutes=2)  # idle: 0.2 s
    with running(watcher) as handle:
        job = enqueue(queue, "warm me", idle=1)  # after this job: 1 "minute" = 0.1 s of idle
        assert poll_until_final(s3, job.id)[-1]["status"] == "done"
        wait_for(lambda: watcher.stop_policy.keep_warm == KEEP_WARM_HOLD, what="the idle timer held")
        time.sleep(1.0)  # ten idle periods: without keep-warm the instance would have stopped long ago
        assert handle.thread.is_alive() and instance_state(moto_clients, instance_id) == "running"
        queue.clear_keep_warm()  # switched off (POST /keepwarm {"on": false})
        assert handle.join(timeout=10) == 0
    assert watcher.exit_reason == "idle stop"
    assert instance_state(moto_clients, instance_id) in ("stopping", "stopped")


def test_maximum_lifetime_stops_at_once_and_consumes_the_mark(make_watcher, queue, gpu, moto_clients):
    instance_id, control = gpu
    until = now_ms() + 1000
    queue.set_keep_warm(until)
    watcher = make_watcher(instance=control, minute_seconds=0.1, default_idle_minutes=600)  # idle: a minute
    started = time.monotonic()
    with running(watcher) as handle:
        assert handle.join(timeout=10) == 0
    assert time.monotonic() - started < 30, "the maximum lifetime stopped it, not the idle timer"
    assert now_ms() >= until, "held until the maximum lifetime"
    assert watcher.exit_reason == "keep-warm limit"
    assert instance_state(moto_clients, instance_id) in ("stopping", "stopped")
    assert queue.keep_warm_until() is None, "consumed, so that the next start is not stopped by it"


def test_a_waiting_job_is_served_before_the_maximum_lifetime_stop(make_watcher, queue, gpu, moto_clients, s3):
    instance_id, control = gpu
    queue.set_keep_warm(now_ms() - 1)  # passed, the key still there (it lives 60 s past its until)
    job = enqueue(queue, "one more")
    watcher = make_watcher(instance=control, minute_seconds=0.1, default_idle_minutes=600)
    with running(watcher) as handle:
        assert handle.join(timeout=10) == 0
    assert poll_until_final(s3, job.id)[-1]["status"] == "done"
    assert watcher.exit_reason == "keep-warm limit" and watcher.jobs_done == 1


def test_unreachable_redis_never_crashes_it_and_the_idle_timer_still_stops_the_gpu(make_watcher, gpu,
                                                                                     moto_clients):
    instance_id, control = gpu
    dead = redis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2,
                                socket_timeout=0.2)
    watcher = make_watcher(instance=control, client=dead, minute_seconds=0.1, default_idle_minutes=3)
    assert watcher.stop_policy.keep_warm_state(watcher.ready) == KEEP_WARM_OFF
    with running(watcher) as handle:
        assert handle.join(timeout=15) == 0
    assert watcher.exit_reason == "idle stop"
    assert instance_state(moto_clients, instance_id) in ("stopping", "stopped")


class Clocks:
    """Injected monotonic and wall clocks that tests move by hand."""

    def __init__(self) -> None:
        self.mono, self.wall = 1000.0, time.time()  # the mark's TTL is real: start the wall clock at now

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += seconds


class StopRecorder:
    """An InstanceControl stand-in for the decision tests: records stop requests, answers `stopped`."""

    def __init__(self) -> None:
        self.stops = 0

    def stop_self(self) -> str:
        self.stops += 1
        return "stopped"


def clocked_watcher(redis_url, redis_client, s3, clocks: Clocks, *, ready: bool = True) -> Watcher:
    watcher = Watcher(make_config(redis_url, minute_seconds=60.0, default_idle_minutes=5), redis_client=redis_client,
                      s3=s3, engine=EchoEngine(0), instance=StopRecorder(), clock=lambda: clocks.mono,
                      wall_clock=lambda: clocks.wall)
    watcher.ready = ready
    return watcher


def test_decisions_with_injected_clocks(redis_url, redis_client, s3, queue):
    clocks = Clocks()
    watcher = clocked_watcher(redis_url, redis_client, s3, clocks)
    queue.set_keep_warm(int((clocks.wall + 3600) * 1000))  # on for an hour
    clocks.advance(10 * 60)  # twice the idle time
    assert watcher.stop_policy.check(watcher.ready) is None and watcher.instance.stops == 0
    assert watcher.stop_policy.keep_warm == KEEP_WARM_HOLD
    clocks.advance(30 * 60)
    assert watcher.stop_policy.check(watcher.ready) is None
    queue.clear_keep_warm()  # off: five idle minutes from the last check
    clocks.advance(4 * 60)
    assert watcher.stop_policy.check(watcher.ready) is None and watcher.stop_policy.keep_warm == KEEP_WARM_OFF
    clocks.advance(61)
    assert watcher.stop_policy.check(watcher.ready) == IDLE_STOP


def test_expiry_with_injected_clocks_ignores_the_idle_timer(redis_url, redis_client, s3, queue):
    clocks = Clocks()
    watcher = clocked_watcher(redis_url, redis_client, s3, clocks)
    queue.set_keep_warm(int((clocks.wall + 120) * 1000))
    clocks.advance(60)
    assert watcher.stop_policy.check(watcher.ready) is None  # held
    clocks.advance(61)  # past until; the idle timer was restarted a minute ago and has four minutes left
    assert watcher.stop_policy.keep_warm_state(watcher.ready) == KEEP_WARM_EXPIRED
    assert watcher.stop_policy.check(watcher.ready) == KEEP_WARM_LIMIT
    assert watcher.instance.stops == 1 and not redis_client.exists(keys.KEEP_WARM)


def test_an_engine_that_is_not_ready_is_not_held_warm(redis_url, redis_client, s3, queue):
    clocks = Clocks()
    watcher = clocked_watcher(redis_url, redis_client, s3, clocks, ready=False)
    queue.set_keep_warm(int((clocks.wall + 3600) * 1000))
    clocks.advance(5 * 60)
    assert watcher.stop_policy.keep_warm_state(watcher.ready) == KEEP_WARM_OFF
    assert watcher.stop_policy.check(watcher.ready) == IDLE_STOP
