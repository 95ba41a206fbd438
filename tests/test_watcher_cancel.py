"""Stop generating (issue 7): a cancel flag set through the queue closes the engine stream mid-answer and the job
ends `cancelled`, proven at the engine (the fake vLLM server saw its stream closed before the end)."""
from __future__ import annotations

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
