"""Stop generating (issue 7): a cancel flag set through the queue closes the engine stream mid-answer and the job
ends `cancelled`, proven at the engine (the fake vLLM server saw its stream closed before the end)."""
from __future__ import annotations

import time

import pytest
from support.fake_openai import FakeOpenAI
from support.watcher_harness import enqueue, make_config, poll_until_final, running, wait_for

from tlfif_common import api
from tlfif_common.workqueue import WorkQueue
from tlfif_common import redis_keys as keys
from tlfif_watcher.engines.vllm import VllmEngine
from tlfif_watcher.watcher import Watcher

pytestmark = pytest.mark.timeout(60)
REPLY = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen"


def watcher_for(srv, redis_url, redis_client, s3) -> Watcher:
    watcher = Watcher(make_config(redis_url), redis_client=redis_client, s3=s3,
                      engine=VllmEngine(srv.base_url, model="fake-model"))
    watcher.claim_timeout = 0.2
    return watcher


def test_cancel_mid_stream_closes_the_engine_stream_and_ends_cancelled(redis_url, redis_client, s3):
    queue = WorkQueue(redis_client)
    with FakeOpenAI(reply=REPLY, chunk_delay=0.1) as srv:
        with running(watcher_for(srv, redis_url, redis_client, s3)):
            job = enqueue(queue, "count for me")
            wait_for(lambda: srv.streams and srv.streams[-1].chunks_sent >= 3, what="the stream to begin")
            queue.request_cancel(job.id)
            versions = poll_until_final(s3, job.id)
            record = srv.wait_closed()
            wait_for(lambda: redis_client.llen(keys.PROCESSING) == 0, what="the ack")

    final = versions[-1]
    assert final["status"] == api.STATUS_CANCELLED and final["error"] is None
    assert REPLY.startswith(final["text"]) and 0 < len(final["text"]) < len(REPLY)
    assert final["tokens"] == len(final["text"].split())
    assert record.client_closed and not record.completed  # the engine's stream was closed before its end
    assert redis_client.llen(keys.PENDING) == 0


def test_job_cancelled_before_it_starts_never_reaches_the_engine(redis_url, redis_client, s3):
    queue = WorkQueue(redis_client)
    job = enqueue(queue, "never mind")
    queue.request_cancel(job.id)
    assert redis_client.ttl(keys.cancel(job.id)) > 0
    with FakeOpenAI(reply=REPLY) as srv:
        with running(watcher_for(srv, redis_url, redis_client, s3)):
            final = poll_until_final(s3, job.id)[-1]
            wait_for(lambda: redis_client.llen(keys.PROCESSING) == 0, what="the ack")
        assert srv.chat_requests == []
    assert final["status"] == api.STATUS_CANCELLED and final["text"] == ""


def test_stop_gpu_mid_stream_ends_that_job_and_the_queued_one_gpu_stopped(redis_url, redis_client, s3):
    queue = WorkQueue(redis_client)
    with FakeOpenAI(reply=REPLY, chunk_delay=0.1) as srv:
        with running(watcher_for(srv, redis_url, redis_client, s3)) as handle:
            generating = enqueue(queue, "count for me")
            waiting = enqueue(queue, "and me after")
            wait_for(lambda: srv.streams and srv.streams[-1].chunks_sent >= 3, what="the stream to begin")
            queue.mark_user_stop(int(time.time() * 1000))  # POST /stop, then the instance's shutdown (SIGTERM)
            handle.stop()
        assert len(srv.chat_requests) == 1  # the queued job never reached the engine

    ended, never_ran = (poll_until_final(s3, job.id)[-1] for job in (generating, waiting))
    for final in (ended, never_ran):
        assert final["status"] == api.STATUS_CANCELLED
        assert final["error"] == {"code": api.ERR_GPU_STOPPED, "message": api.GPU_STOPPED_MESSAGE}
    assert REPLY.startswith(ended["text"]) and 0 < len(ended["text"]) < len(REPLY)
    assert never_ran["text"] == ""
    assert redis_client.llen(keys.PENDING) == 0 and redis_client.llen(keys.PROCESSING) == 0


def test_a_stop_that_is_not_the_users_releases_the_job_sent_after_the_last_stop_gpu(redis_url, redis_client, s3):
    queue = WorkQueue(redis_client)
    job = enqueue(queue, "count for me")
    queue.mark_user_stop(job.timestamp - 1)  # an earlier Stop GPU; this stop is the operator's or a restart's
    with FakeOpenAI(reply=REPLY, chunk_delay=0.1) as srv:
        with running(watcher_for(srv, redis_url, redis_client, s3)) as handle:
            wait_for(lambda: srv.streams and srv.streams[-1].chunks_sent >= 3, what="the stream to begin")
            handle.stop()
    assert [raw.decode() for raw in redis_client.lrange(keys.PENDING, 0, -1)] == [job.id]
    assert not queue.has_final(job.id)


def test_jobs_queued_before_a_stop_gpu_end_at_the_next_start_and_a_newer_one_is_answered(
        redis_url, redis_client, s3):
    queue = WorkQueue(redis_client)
    before = enqueue(queue, "sent while the GPU was booting")
    queue.mark_user_stop(before.timestamp)
    time.sleep(0.005)
    after = enqueue(queue, "sent after the stop")
    assert after.timestamp > before.timestamp
    with FakeOpenAI(reply=REPLY) as srv:
        with running(watcher_for(srv, redis_url, redis_client, s3)):
            ended = poll_until_final(s3, before.id)[-1]
            answered = poll_until_final(s3, after.id)[-1]
        assert len(srv.chat_requests) == 1
    assert ended["status"] == api.STATUS_CANCELLED and ended["error"]["code"] == api.ERR_GPU_STOPPED
    assert answered["status"] == api.STATUS_DONE and answered["text"] == REPLY
