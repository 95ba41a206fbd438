"""The reliable Redis queue (`tlfif_common.workqueue`) against a real redis-server."""
from __future__ import annotations

import time

import pytest

from tlfif_common.jobs import Job
from tlfif_common import redis_keys as keys
from tlfif_common.workqueue import WorkQueue

pytestmark = pytest.mark.timeout(30)

BUCKET = "responses"


def make_job(prompt: str = "hi", idle: int = 5) -> Job:
    return Job.create({"prompt": prompt, "idle": idle}, bucket=BUCKET, user="u1", now_ms=1_700_000_000_000)


def ids(client, key: str) -> list[str]:
    return [raw.decode() for raw in client.lrange(key, 0, -1)]


@pytest.fixture
def queue(redis_client) -> WorkQueue:
    return WorkQueue(redis_client, lease_seconds=1)


def test_enqueue_then_claim_oldest_first(queue, redis_client):
    jobs = [make_job(f"prompt {i}") for i in range(3)]
    for job in jobs:
        queue.enqueue(job)
    assert queue.depth() == 3
    assert redis_client.ttl(keys.job(jobs[0].id)) > 290

    claimed = [queue.claim("w1", timeout=0.1) for _ in jobs]

    assert [c.job_id for c in claimed] == [j.id for j in jobs]
    assert [c.job for c in claimed] == jobs
    assert all(c.attempt == 1 for c in claimed)
    assert queue.depth() == 0
    assert sorted(ids(redis_client, keys.PROCESSING)) == sorted(j.id for j in jobs)
    assert redis_client.get(keys.lease(jobs[0].id)) == b"w1"


def test_claim_times_out_with_none_on_empty_queue(queue):
    assert queue.claim("w1", timeout=0.1) is None


def test_claim_refuses_blocking_forever(queue):
    with pytest.raises(ValueError):
        queue.claim("w1", timeout=0)


def test_ack_forgets_the_job(queue, redis_client):
    job = make_job()
    queue.enqueue(job)
    queue.claim("w1", timeout=0.1)

    queue.ack(job.id)

    assert ids(redis_client, keys.PROCESSING) == []
    assert not redis_client.exists(keys.lease(job.id), keys.job(job.id))
    assert redis_client.hget(keys.CLAIMED, job.id) is None
    assert redis_client.hget(keys.ATTEMPTS, job.id) is None


def test_release_puts_the_job_first_in_line_without_counting_the_claim(queue, redis_client):
    first, second = make_job("first"), make_job("second")
    queue.enqueue(first)
    queue.enqueue(second)
    claim = queue.claim("w1", timeout=0.1)
    assert claim.job_id == first.id

    queue.release(first.id)

    assert ids(redis_client, keys.PROCESSING) == []
    assert not redis_client.exists(keys.lease(first.id))
    again = queue.claim("w2", timeout=0.1)
    assert again.job_id == first.id  # back at the front, before `second`
    assert again.attempt == 1


def test_heartbeat_keeps_the_lease_so_reap_leaves_the_job(queue, redis_client):
    job = make_job()
    queue.enqueue(job)
    queue.claim("w1", timeout=0.1)
    queue.heartbeat(job.id, "w1")

    report = queue.reap(now_ms=10**13)  # far in the future, but the lease key still exists

    assert report.requeued == [] and report.dead == []
    assert ids(redis_client, keys.PROCESSING) == [job.id]


def test_reap_requeues_after_the_lease_expires(queue, redis_client):
    job = make_job()
    queue.enqueue(job)
    claim = queue.claim("w1", timeout=0.1)
    redis_client.delete(keys.lease(job.id))  # the worker died: no heartbeat, the lease lapses
    claimed_at = int(redis_client.hget(keys.CLAIMED, job.id))

    assert queue.reap(now_ms=claimed_at + 100).requeued == []  # still inside the grace period
    report = queue.reap(now_ms=claimed_at + 1500)

    assert report.requeued == [job.id]
    assert ids(redis_client, keys.PROCESSING) == []
    assert queue.depth() == 1
    again = queue.claim("w2", timeout=0.1)
    assert again.job_id == claim.job_id and again.attempt == 2


def test_reap_with_a_real_lease_expiry(redis_client):
    queue = WorkQueue(redis_client, lease_seconds=1)
    job = make_job()
    queue.enqueue(job)
    queue.claim("w1", timeout=0.1)
    claimed_at = int(redis_client.hget(keys.CLAIMED, job.id))
    # Wait for Redis itself to drop the lease key (TTL 1 s); no heartbeat comes.
    for _ in range(300):
        if not redis_client.exists(keys.lease(job.id)):
            break
        time.sleep(0.01)
    assert not redis_client.exists(keys.lease(job.id))
    assert queue.reap(now_ms=claimed_at + 1001).requeued == [job.id]


def test_reap_starts_the_grace_for_a_claim_that_was_never_recorded(queue, redis_client):
    redis_client.lpush(keys.PROCESSING, "orphan")  # BLMOVE happened, the claimer died before its pipeline ran

    assert queue.reap(now_ms=5_000).requeued == []
    assert int(redis_client.hget(keys.CLAIMED, "orphan")) == 5_000
    assert queue.reap(now_ms=7_000).requeued == ["orphan"]


def test_dead_letter_after_three_claims(queue, redis_client):
    job = make_job()
    queue.enqueue(job)
    outcomes = []
    for attempt in range(1, 4):
        claim = queue.claim("w", timeout=0.1)
        assert claim is not None and claim.attempt == attempt
        redis_client.delete(keys.lease(job.id))
        outcomes.append(queue.reap(now_ms=int(redis_client.hget(keys.CLAIMED, job.id)) + 5_000))

    assert [o.requeued for o in outcomes] == [[job.id], [job.id], []]
    assert outcomes[-1].dead == [job.id]
    assert ids(redis_client, keys.DEAD) == [job.id]
    assert queue.depth() == 0 and ids(redis_client, keys.PROCESSING) == []
    assert queue.claim("w", timeout=0.1) is None


def test_claim_final_is_granted_once(queue, redis_client):
    assert queue.has_final("j1") is False
    assert queue.claim_final("j1", "w1") is True
    assert queue.claim_final("j1", "w2") is False
    assert queue.claim_final("j1", "w1") is False
    assert queue.has_final("j1") is True
    assert redis_client.get(keys.final("j1")) == b"w1"


def test_expired_job_key_gives_a_claim_without_job(queue, redis_client):
    job = make_job()
    queue.enqueue(job)
    redis_client.delete(keys.job(job.id))  # TTL 300 s ran out while it waited

    claim = queue.claim("w1", timeout=0.1)

    assert claim.job_id == job.id and claim.job is None


def test_garbage_job_key_gives_a_claim_without_job(queue, redis_client):
    job = make_job()
    queue.enqueue(job)
    redis_client.set(keys.job(job.id), b"{not json")

    claim = queue.claim("w1", timeout=0.1)

    assert claim.job is None
    assert redis_client.exists(keys.job(job.id))


def test_enqueue_pushes_onto_the_pending_list(queue, redis_client):
    job = make_job()
    queue.enqueue(job)
    assert ids(redis_client, keys.PENDING) == [job.id]
    assert Job.from_json(job.id, redis_client.get(keys.job(job.id))) == job
