"""The watcher loop in-process: real redis-server, moto (server) S3/EC2/SSM/CloudWatch, the echo engine and the vLLM
engine against the fake OpenAI-compatible server, IMDSv2 through the emulator."""
from __future__ import annotations

import time

import pytest
from support.fake_openai import FakeOpenAI
from support.watcher_harness import (
    BUCKET, MODELS_BUCKET, enqueue, instance_state, make_bucket, make_config, poll_until_final, read_result,
    running, running_instance, ssm_value, wait_for,
)

from tlfif_common import names
from tlfif_common import redis_keys as keys
from tlfif_common.workqueue import WorkQueue
from tlfif_local.imds import ImdsEmulator
from tlfif_watcher.engines.adapters import AdapterFetcher, lora_name
from tlfif_watcher.engines.echo import ECHO_LABEL, EchoEngine
from tlfif_watcher.engines.vllm import VllmEngine
from tlfif_watcher.idle import IdleTimer
from tlfif_watcher.imds import ImdsClient
from tlfif_watcher.instance import InstanceControl
from tlfif_watcher.metrics import Metrics
from tlfif_watcher.watcher import Watcher

pytestmark = pytest.mark.timeout(60)

LONG_PROMPT = "please repeat these words back to me slowly so that the answer grows while I keep polling it"


@pytest.fixture
def make_watcher(redis_url, redis_client, s3, moto_clients):
    def make(engine=None, instance=None, metrics=None, **config):
        watcher = Watcher(make_config(redis_url, **config), redis_client=redis_client, s3=s3,
                          engine=engine or EchoEngine(0), metrics=metrics, instance=instance)
        watcher.claim_timeout = 0.2
        return watcher
    return make


def grows(versions: list[dict]) -> None:
    running_docs = [v for v in versions if v["status"] == "running"]
    assert len(running_docs) >= 2, versions
    lengths = [len(v["text"]) for v in running_docs]
    assert lengths == sorted(lengths) and lengths[0] < lengths[-1] < len(versions[-1]["text"])


def assert_forgotten(redis_client, job_id: str) -> None:
    assert redis_client.lrange(keys.PROCESSING, 0, -1) == []
    assert redis_client.llen(keys.PENDING) == 0
    assert not redis_client.exists(keys.job(job_id), keys.lease(job_id))
    assert redis_client.hget(keys.ATTEMPTS, job_id) is None and redis_client.hget(keys.CLAIMED, job_id) is None


def test_echo_job_result_grows_then_is_done(make_watcher, queue, s3, redis_client):
    with running(make_watcher(EchoEngine(delay_ms=40))) as handle:
        job = enqueue(queue, LONG_PROMPT, idle=3)
        versions = poll_until_final(s3, job.id)
        wait_for(lambda: redis_client.llen(keys.PROCESSING) == 0, what="the ack")
        assert handle.stop() == 0

    grows(versions)
    final = versions[-1]
    assert final["status"] == "done"
    assert final["text"] == f"{ECHO_LABEL} You said: {LONG_PROMPT}"
    assert final["tokens"] == len(final["text"].split())
    assert final["model"] == "echo" and final["error"] is None
    assert 0 <= final["ttft_ms"] <= final["latency_ms"]
    assert all(v["id"] == job.id for v in versions)
    assert_forgotten(redis_client, job.id)


def test_vllm_job_through_the_fake_server_sends_messages_and_params(make_watcher, queue, s3, redis_client):
    reply = "The sky looks blue because air scatters short blue wavelengths far more than red ones today"
    history = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi!"}]
    with FakeOpenAI(reply=reply, chunk_delay=0.04, model="TinyLlama-1.1B") as srv:
        with running(make_watcher(VllmEngine(srv.base_url))):
            job = enqueue(queue, "Why is the sky blue?", messages=history,
                          params={"temperature": 0.3, "max_tokens": 200, "system": "Answer briefly."})
            versions = poll_until_final(s3, job.id)
        sent = srv.chat_requests

    grows(versions)
    final = versions[-1]
    assert final["status"] == "done" and final["text"] == reply
    assert final["model"] == "TinyLlama-1.1B" and final["tokens"] == len(reply.split())
    assert len(sent) == 1
    assert sent[0].body["messages"] == [{"role": "system", "content": "Answer briefly."}, *history,
                                        {"role": "user", "content": "Why is the sky blue?"}]
    assert sent[0].body["temperature"] == 0.3 and sent[0].body["max_tokens"] == 200
    assert sent[0].body["stream"] is True


@pytest.mark.parametrize("mode", ["drop", "error"])
def test_engine_failure_mid_stream_ends_in_an_error_result(make_watcher, queue, s3, redis_client, mode):
    with FakeOpenAI(reply="one two three four five", fail_after=3, fail_mode=mode) as srv:
        with running(make_watcher(VllmEngine(srv.base_url, model="fake-model"))):
            job = enqueue(queue)
            final = poll_until_final(s3, job.id)[-1]
            wait_for(lambda: redis_client.llen(keys.PROCESSING) == 0, what="the ack")

    assert final["status"] == "error"
    assert final["error"]["code"] == "engine_error" and final["error"]["message"]
    assert final["text"] == "one two three"
    assert_forgotten(redis_client, job.id)


def test_engine_down_ends_in_an_error_result(make_watcher, queue, s3):
    with FakeOpenAI(status=503) as srv:
        engine = VllmEngine(srv.base_url, model="fake-model", max_retries=0)
        with running(make_watcher(engine)):
            job = enqueue(queue)
            final = poll_until_final(s3, job.id)[-1]
    assert final["status"] == "error" and "503" in final["error"]["message"]


def test_expired_job_gets_a_job_expired_result(make_watcher, queue, s3, redis_client):
    job = enqueue(queue)
    redis_client.delete(keys.job(job.id))
    with running(make_watcher()):
        final = poll_until_final(s3, job.id)[-1]
        wait_for(lambda: redis_client.llen(keys.PROCESSING) == 0, what="the ack")
    assert final["status"] == "error" and final["error"]["code"] == "job_expired"


def test_unreadable_job_gets_a_bad_job_result(make_watcher, queue, s3, redis_client):
    job = enqueue(queue)
    redis_client.set(keys.job(job.id), b"[1, 2")
    with running(make_watcher()):
        final = poll_until_final(s3, job.id)[-1]
        wait_for(lambda: redis_client.llen(keys.PROCESSING) == 0, what="the ack")
    assert final["status"] == "error" and final["error"]["code"] == "bad_job"


def test_redelivered_job_with_a_final_result_is_only_acknowledged(make_watcher, queue, s3, redis_client):
    with FakeOpenAI(reply="the one answer") as srv:
        with running(make_watcher(VllmEngine(srv.base_url, model="fake-model"))):
            job = enqueue(queue)
            first = poll_until_final(s3, job.id)[-1]
            wait_for(lambda: redis_client.llen(keys.PROCESSING) == 0, what="the ack")
            etag = s3.head_object(Bucket=BUCKET, Key=f"{job.id}.json")["ETag"]
            # At-least-once delivery: the same id shows up again (its job key is still there, say).
            redis_client.set(keys.job(job.id), job.to_json())
            redis_client.rpush(keys.PENDING, job.id)
            wait_for(lambda: redis_client.llen(keys.PENDING) == 0 and redis_client.llen(keys.PROCESSING) == 0,
                     what="the duplicate to be acknowledged")
        assert len(srv.chat_requests) == 1  # the engine ran once

    assert first["status"] == "done"
    assert s3.head_object(Bucket=BUCKET, Key=f"{job.id}.json")["ETag"] == etag
    assert read_result(s3, job.id) == first


def test_final_marker_without_a_result_is_taken_over(make_watcher, queue, s3, redis_client):
    job = enqueue(queue)
    redis_client.set(keys.final(job.id), "dead-worker")  # it won claim_final and died before writing
    with running(make_watcher()):
        final = poll_until_final(s3, job.id)[-1]
    assert final["status"] == "done"


def test_dead_lettered_job_gets_a_dead_letter_result(make_watcher, queue, s3, redis_client):
    job = enqueue(queue)
    redis_client.rpop(keys.PENDING)
    redis_client.lpush(keys.PROCESSING, job.id)  # claimed three times, its last worker died too
    redis_client.hset(keys.ATTEMPTS, job.id, 3)
    redis_client.hset(keys.CLAIMED, job.id, 1)
    with running(make_watcher()):
        final = poll_until_final(s3, job.id)[-1]
    assert final["status"] == "error" and final["error"]["code"] == "dead_letter"
    assert redis_client.lrange(keys.DEAD, 0, -1) == [job.id.encode()]


def test_heartbeats_keep_a_long_job_from_being_reaped(make_watcher, queue, s3, redis_client):
    """Lease 1 s, job ~2.5 s: a reaper running all along must never take the job away."""
    reaper = WorkQueue(redis_client, lease_seconds=1)
    with running(make_watcher(EchoEngine(delay_ms=70), lease_seconds=1)):
        job = enqueue(queue, LONG_PROMPT)
        requeued = []

        def reaped_and_final():
            requeued.extend(reaper.reap().requeued)
            doc = read_result(s3, job.id)
            return doc is not None and doc["status"] == "done"

        wait_for(reaped_and_final, timeout=15, interval=0.1, what="the job to finish")
    assert requeued == []
    assert redis_client.hget(keys.ATTEMPTS, job.id) is None


def test_same_adapter_is_loaded_once_for_two_jobs(make_watcher, queue, s3, moto_clients, tmp_path):
    make_bucket(s3, MODELS_BUCKET)
    s3.put_object(Bucket=MODELS_BUCKET, Key="adapters/bob/adapter_config.json", Body=b"{}")
    uri = f"s3://{MODELS_BUCKET}/adapters/bob"
    with FakeOpenAI(reply="adapted", strict_model=True) as srv:
        engine = VllmEngine(srv.base_url, model="fake-model", adapters=AdapterFetcher(s3, str(tmp_path)))
        with running(make_watcher(engine)):
            jobs = [enqueue(queue, f"q{i}", adapter_uri=uri) for i in range(2)]
            finals = [poll_until_final(s3, j.id)[-1] for j in jobs]
            missing = enqueue(queue, "q3", adapter_uri=f"s3://{MODELS_BUCKET}/adapters/nobody")
            failed = poll_until_final(s3, missing.id)[-1]
        loads = srv.lora_loads
        models = [r.body["model"] for r in srv.chat_requests]

    assert [f["status"] for f in finals] == ["done", "done"]
    assert [f["model"] for f in finals] == [lora_name(uri)] * 2
    assert len(loads) == 1 and models == [lora_name(uri)] * 2
    assert failed["status"] == "error" and failed["error"]["code"] == "adapter_error"


def control(moto_clients, imds_url: str, metrics: Metrics) -> InstanceControl:
    return InstanceControl(ImdsClient(imds_url), ec2=moto_clients("ec2"), ssm=moto_clients("ssm"), metrics=metrics)


def test_ready_then_idle_stop_through_imdsv2(make_watcher, queue, s3, moto_clients):
    instance_id = running_instance(moto_clients)
    ssm, cloudwatch = moto_clients("ssm"), moto_clients("cloudwatch")
    metrics = Metrics(cloudwatch)
    with ImdsEmulator(instance_id) as imds, FakeOpenAI(api_key="later") as srv:
        engine = VllmEngine(srv.base_url, model="fake-model", api_key="now")  # refused: not ready yet
        watcher = make_watcher(engine, instance=control(moto_clients, imds.url, metrics), metrics=metrics,
                               minute_seconds=0.3, default_idle_minutes=100)
        with running(watcher) as handle:
            wait_for(lambda: len(srv.requests) >= 1, what="a readiness probe")
            assert not watcher.ready
            with pytest.raises(ssm.exceptions.ParameterNotFound):
                ssm.get_parameter(Name=names.ssm_ready_param(instance_id))
            before = int(time.time() * 1000)
            srv.api_key = None  # the engine answers from now on
            param = wait_for(lambda: ssm_value(ssm, names.ssm_ready_param(instance_id)), what="the ready parameter")
            assert before <= int(param) <= int(time.time() * 1000)
            job = enqueue(queue, "last words", idle=1)  # idle 1 "minute" = 0.3 s after this job
            assert poll_until_final(s3, job.id)[-1]["status"] == "done"
            assert handle.join(timeout=10) == 0  # exits by itself after the idle time

    assert watcher.exit_reason == "idle stop"
    assert instance_state(moto_clients, instance_id) in ("stopping", "stopped")
    assert ssm_value(ssm, names.ssm_ready_param(instance_id)) is None
    metric_names = {m["MetricName"] for m in cloudwatch.list_metrics(Namespace=names.METRICS_NAMESPACE)["Metrics"]}
    assert {names.METRIC_IDLE_STOPS, names.METRIC_JOB_LATENCY, names.METRIC_JOB_TOKENS,
            names.METRIC_TTFT} <= metric_names


def test_without_imds_the_idle_expiry_keeps_serving(make_watcher, queue, s3, moto_clients):
    metrics = Metrics(moto_clients("cloudwatch"))
    watcher = make_watcher(instance=control(moto_clients, "http://127.0.0.1:9", metrics), metrics=metrics,
                           minute_seconds=0.05, default_idle_minutes=1)
    with running(watcher) as handle:
        wait_for(lambda: watcher.idle.deadline is None, what="the idle timer to run out")
        job = enqueue(queue)
        assert poll_until_final(s3, job.id)[-1]["status"] == "done"
        assert handle.thread.is_alive()
        assert handle.stop() == 0


def test_stop_request_while_generating_releases_the_job(make_watcher, queue, s3, redis_client):
    watcher = make_watcher(EchoEngine(delay_ms=100))
    with running(watcher) as handle:
        job = enqueue(queue, LONG_PROMPT)
        wait_for(lambda: (read_result(s3, job.id) or {}).get("status") == "running", what="a running result")
        assert handle.stop() == 0
    assert redis_client.lrange(keys.PENDING, 0, -1) == [job.id.encode()]
    assert redis_client.llen(keys.PROCESSING) == 0
    assert not redis_client.exists(keys.final(job.id), keys.lease(job.id))
    assert read_result(s3, job.id)["status"] == "running"


def test_idle_timer_counts_from_the_latest_jobs_idle_minutes():
    now = [1000.0]
    timer = IdleTimer(minute_seconds=60, default_minutes=5, clock=lambda: now[0])
    now[0] += 299
    assert not timer.expired()
    now[0] += 1
    assert timer.expired()
    timer.job_started()
    now[0] += 10_000
    assert not timer.expired()  # never while a job runs
    timer.job_finished(idle_minutes=2)
    now[0] += 119
    assert not timer.expired()
    now[0] += 1
    assert timer.expired()
    timer.job_finished(None)  # a job without an idle value restarts the latest one
    assert timer.remaining() == 120


def test_stop_request_hangs_up_a_stalled_engine_stream(make_watcher, queue, s3, redis_client):
    """vLLM went quiet mid-answer: the stop must not wait for it; the connection is closed, the job released."""
    with FakeOpenAI(reply="a b c d e f", pause_after=2) as srv:
        with running(make_watcher(VllmEngine(srv.base_url, model="fake-model"))) as handle:
            job = enqueue(queue)
            wait_for(lambda: srv.streams and srv.streams[-1].chunks_sent == 2, what="the stream to stall")
            assert handle.stop(timeout=5) == 0
            record = srv.wait_closed()
    assert record.client_closed and not record.completed
    assert redis_client.lrange(keys.PENDING, 0, -1) == [job.id.encode()]
    assert not redis_client.exists(keys.final(job.id))


def test_final_write_failure_leaves_the_job_for_the_reaper(make_watcher, queue, s3, redis_client, caplog):
    job = enqueue(queue)
    s3.delete_bucket(Bucket=BUCKET)  # every result write fails (NoSuchBucket)
    with running(make_watcher(lease_seconds=1)):
        # The watcher gives up on S3 after a few tries, hands back the final marker and does not ack.
        wait_for(lambda: [r for r in caplog.records if r.getMessage() == "final result write failed"
                          and getattr(r, "attempt", 0) == 3], what="the last failed final write")
        wait_for(lambda: redis_client.get(keys.final(job.id)) is None, what="the final marker to be handed back")
        assert redis_client.lrange(keys.PROCESSING, 0, -1) == [job.id.encode()]
        make_bucket(s3)  # S3 is back: the lease lapses, the reaper redelivers, the job completes
        final = poll_until_final(s3, job.id, timeout=15)[-1]
    assert final["status"] == "done"


def test_an_engine_that_never_answers_does_not_keep_the_gpu_running(make_watcher, queue, redis_client,
                                                                     moto_clients):
    instance_id = running_instance(moto_clients)
    metrics = Metrics(moto_clients("cloudwatch"))
    with FakeOpenAI() as srv:
        dead_url = srv.base_url  # nothing listens here any more
    with ImdsEmulator(instance_id) as imds:
        watcher = make_watcher(VllmEngine(dead_url), instance=control(moto_clients, imds.url, metrics),
                               metrics=metrics, minute_seconds=0.1, default_idle_minutes=3)
        job = enqueue(queue)
        with running(watcher) as handle:
            assert handle.join(timeout=10) == 0
    assert watcher.exit_reason == "idle stop" and not watcher.ready
    assert instance_state(moto_clients, instance_id) in ("stopping", "stopped")
    assert redis_client.lrange(keys.PENDING, 0, -1) == [job.id.encode()]  # kept for the next start
