"""The idle-miss pulse from the watcher's real loop: what `WatcherDeadlineSeconds` says before the first job, while
a job runs, after it and under keep-warm, read back from CloudWatch (moto server). Real redis-server, IMDSv2
through the emulator; `python -m tlfif_watcher` publishes it under the configured namespace with its instance id."""
from __future__ import annotations

import itertools
import math
import time
from datetime import datetime, timezone

import pytest
from support.watcher_harness import (WatcherProcess, enqueue, make_config, poll_until_final, read_result, running,
                                     running_instance, wait_for, watcher_env)

from tlfif_common import names
from tlfif_local.imds import ImdsEmulator
from tlfif_watcher import deadline_metric
from tlfif_watcher.deadline_metric import DeadlineReporter
from tlfif_watcher.engines.echo import EchoEngine
from tlfif_watcher.imds import ImdsClient
from tlfif_watcher.instance import InstanceControl
from tlfif_watcher.metrics import Metrics
from tlfif_watcher.watcher import Watcher

pytestmark = pytest.mark.timeout(90)

SLOW_PROMPT = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen"


def deadline_stats(cloudwatch, instance_id: str, start: float, end: float,
                   namespace: str = names.METRICS_NAMESPACE) -> dict | None:
    """Minimum, Maximum and SampleCount of the pulse between two whole epoch seconds; None when nothing came."""
    points = cloudwatch.get_metric_statistics(
        Namespace=namespace, MetricName=names.METRIC_WATCHER_DEADLINE,
        Dimensions=[{"Name": deadline_metric.DIMENSION, "Value": instance_id}],
        StartTime=datetime.fromtimestamp(start, timezone.utc), EndTime=datetime.fromtimestamp(end, timezone.utc),
        Period=3600, Statistics=["Minimum", "Maximum", "SampleCount"])["Datapoints"]
    return points[0] if points else None


def one_second_window(cloudwatch, instance_id: str) -> dict:
    """The pulse over the next whole second (CloudWatch timestamps have second resolution)."""
    start = math.ceil(time.time())
    wait_for(lambda: time.time() >= start + 1.05, what="a whole second")
    stats = deadline_stats(cloudwatch, instance_id, start, start + 1)
    assert stats is not None, "no pulse for a whole second"
    return stats


def test_the_pulse_follows_the_watchers_own_deadline(redis_url, redis_client, s3, queue, moto_clients):
    instance_id = running_instance(moto_clients)
    cloudwatch = moto_clients("cloudwatch")
    # Every tick is "a minute later" for the reporter, so each housekeeping tick sends: the test sees each phase.
    reporter = DeadlineReporter(cloudwatch, instance_id, clock=itertools.count(0, 60).__next__)
    with ImdsEmulator(instance_id) as imds:
        control = InstanceControl(ImdsClient(imds.url), ec2=moto_clients("ec2"), ssm=moto_clients("ssm"),
                                  metrics=Metrics(cloudwatch))
        config = make_config(redis_url, minute_seconds=60.0, default_idle_minutes=5)
        watcher = Watcher(config, redis_client=redis_client,
                          s3=s3, engine=EchoEngine(delay_ms=150), instance=control, deadline=reporter)
        watcher.claim_timeout = 0.1
        with running(watcher):
            wait_for(lambda: watcher.ready, what="the engine")
            before = one_second_window(cloudwatch, instance_id)
            assert 280 < before["Minimum"] <= before["Maximum"] <= 300  # the default 5 idle minutes count down

            job = enqueue(queue, SLOW_PROMPT, idle=2)
            wait_for(lambda: (read_result(s3, job.id) or {}).get("status") == "running", what="the job to run")
            during = one_second_window(cloudwatch, instance_id)
            budget = deadline_metric.JOB_BUDGET_S
            assert budget - 5 < during["Minimum"] <= during["Maximum"] < budget  # the job's time budget runs

            assert poll_until_final(s3, job.id)[-1]["status"] == "done"
            after = one_second_window(cloudwatch, instance_id)
            assert 110 < after["Minimum"] <= after["Maximum"] <= 120  # the job asked for 2 idle minutes

            queue.set_keep_warm(int(time.time() * 1000) + 3_600_000)
            wait_for(lambda: watcher.stop_policy.keep_warm == "hold", what="keep-warm to hold")
            warm = one_second_window(cloudwatch, instance_id)
            assert 3590 < warm["Minimum"] <= warm["Maximum"] <= 3600  # kept warm for an hour: no overdue alarm
    assert watcher.exit_reason != "idle stop"


def test_the_watcher_process_publishes_its_pulse_under_its_namespace(redis_url, moto_endpoint, moto_clients, s3,
                                                                      queue):
    instance_id = running_instance(moto_clients)
    cloudwatch = moto_clients("cloudwatch")
    started = math.floor(time.time())
    with ImdsEmulator(instance_id) as imds:
        env = watcher_env(redis_url, moto_endpoint, **{names.ENV_IMDS_URL: imds.url,
                                                       names.ENV_METRICS_NAMESPACE: "TL-FIF-DR"})
        with WatcherProcess(env) as proc:
            job = enqueue(queue, "hello", idle=5)
            assert poll_until_final(s3, job.id, timeout=30)[-1]["status"] == "done"
            stats = wait_for(lambda: deadline_stats(cloudwatch, instance_id, started, time.time() + 2, "TL-FIF-DR"),
                             timeout=20, what="the pulse")
            proc.proc.terminate()
            assert proc.wait() == 0
    assert 0 < stats["Maximum"] <= deadline_metric.JOB_BUDGET_S
    assert deadline_stats(cloudwatch, instance_id, started, time.time() + 2) is None  # nothing under TL-FIF
    job_metrics = cloudwatch.list_metrics(Namespace="TL-FIF-DR", MetricName=names.METRIC_JOB_LATENCY)["Metrics"]
    assert job_metrics, "the job metrics follow the namespace too"
