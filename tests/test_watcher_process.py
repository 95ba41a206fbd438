"""`python -m tlfif_watcher` as a real process: crash recovery (SIGKILL), SIGTERM/SIGINT, idle self-stop through
IMDSv2, configuration errors. Redis is the real redis-server; AWS is the moto server (AWS_ENDPOINT_URL)."""
from __future__ import annotations

import signal

import pytest
from support.watcher_harness import (
    WatcherProcess, enqueue, instance_state, poll_until_final, read_result, running_instance, ssm_value,
    run_until_idle_exit, wait_for, watcher_env,
)

from tlfif_common import names
from tlfif_common import redis_keys as keys

pytestmark = pytest.mark.timeout(60)

PROMPT = " ".join(f"word{i}" for i in range(40))


def job_lines(proc: WatcherProcess, msg: str, job_id: str) -> list[dict]:
    return [line for line in proc.log_lines() if line.get("msg") == msg and line.get("job_id") == job_id]


def test_killed_between_claim_and_ack_is_redelivered_and_finished_once(redis_url, moto_endpoint, s3, queue,
                                                                       redis_client):
    slow = watcher_env(redis_url, moto_endpoint, **{names.ENV_ECHO_DELAY_MS: "100"})
    job = enqueue(queue, PROMPT)
    with WatcherProcess(slow) as first:
        wait_for(lambda: (read_result(s3, job.id) or {}).get("status") == "running", timeout=20,
                 what="the first watcher to be generating")
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(5)
        partial = read_result(s3, job.id)
        assert redis_client.lrange(keys.PROCESSING, 0, -1) == [job.id.encode()]  # claimed, never acknowledged
        assert job_lines(first, "job done", job.id) == []

    with WatcherProcess(watcher_env(redis_url, moto_endpoint)) as second:  # its reaper finds the orphan
        versions = poll_until_final(s3, job.id, timeout=20)
        wait_for(lambda: redis_client.llen(keys.PROCESSING) == 0, what="the ack")
        wait_for(lambda: job_lines(second, "job done", job.id), what="the second watcher's log")
        final_owner = redis_client.get(keys.final(job.id)).decode()
        second.proc.send_signal(signal.SIGTERM)
        assert second.wait() == 0
        started = job_lines(second, "job started", job.id)
        done = job_lines(second, "job done", job.id)
        requeued = job_lines(second, "job requeued: its worker stopped heart-beating", job.id)
        second_worker = next(line["worker_id"] for line in second.log_lines() if line.get("msg") == "watcher starting")

    final = versions[-1]
    assert partial["status"] == "running" and len(partial["text"]) < len(final["text"])
    assert final["status"] == "done" and final["text"].endswith(PROMPT)
    assert [v["status"] for v in versions].count("done") == 1
    assert len(requeued) == 1 and [line["attempt"] for line in started] == [2] and len(done) == 1
    assert final_owner == second_worker  # the final result was written by the second watcher, once
    assert queue.depth() == 0 and not redis_client.exists(keys.job(job.id))
    assert redis_client.hget(keys.ATTEMPTS, job.id) is None


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_while_generating_returns_the_job_to_pending_and_exits_0(redis_url, moto_endpoint, s3, queue,
                                                                         redis_client, signum):
    env = watcher_env(redis_url, moto_endpoint, **{names.ENV_ECHO_DELAY_MS: "100"})
    job = enqueue(queue, PROMPT)
    with WatcherProcess(env) as proc:
        wait_for(lambda: (read_result(s3, job.id) or {}).get("status") == "running", timeout=20,
                 what="the watcher to be generating")
        proc.proc.send_signal(signum)
        assert proc.wait() == 0
        assert proc.logged("job released to pending")

    assert redis_client.lrange(keys.PENDING, 0, -1) == [job.id.encode()]
    assert redis_client.llen(keys.PROCESSING) == 0
    assert int(redis_client.hget(keys.ATTEMPTS, job.id)) == 0  # the interrupted claim does not count
    assert not redis_client.exists(keys.final(job.id))
    assert read_result(s3, job.id)["status"] == "running"


def test_idle_watcher_stops_its_own_instance_through_imdsv2(redis_url, moto_endpoint, moto_clients, s3, queue):
    instance_id = running_instance(moto_clients)
    ssm = moto_clients("ssm")
    run_until_idle_exit(instance_id, redis_url=redis_url, moto_endpoint=moto_endpoint, ssm=ssm, s3=s3, queue=queue,
                        logged="idle: stopping own instance")
    assert instance_state(moto_clients, instance_id) in ("stopping", "stopped")
    assert ssm_value(ssm, names.ssm_ready_param(instance_id)) is None
    stops = moto_clients("cloudwatch").list_metrics(Namespace=names.METRICS_NAMESPACE,
                                                    MetricName=names.METRIC_IDLE_STOPS)["Metrics"]
    assert len(stops) == 1


def test_missing_configuration_exits_2_naming_the_variable(redis_url, moto_endpoint):
    env = watcher_env(redis_url, moto_endpoint)
    del env[names.ENV_RESPONSES_BUCKET]
    with WatcherProcess(env) as proc:
        assert proc.wait() == 2
        lines = proc.log_lines()
    assert lines[-1]["component"] == "watcher" and lines[-1]["level"] == "error"
    assert names.ENV_RESPONSES_BUCKET in lines[-1]["error"]


def test_a_burst_of_signals_still_stops_it(redis_url, moto_endpoint):
    """A second SIGTERM can land while the first one's handler is inside the stop Event's lock (a dying parent's
    PDEATHSIG and a supervisor's kill, say); the watcher must still stop, not wait on that lock for ever."""
    import os

    with WatcherProcess(watcher_env(redis_url, moto_endpoint)) as proc:
        wait_for(lambda: any(line.get("msg") == "watcher starting" for line in proc.log_lines()),
                 what="the watcher up")
        for _ in range(300):
            os.kill(proc.proc.pid, signal.SIGTERM)
        assert proc.wait() == 0
