"""Every Redis key TL-FIF uses, in one place. Code reaches Redis through `workqueue.WorkQueue` or `ratelimit`,
which take their keys from here; nothing else spells a key out.

One style, `{tlfif}:<area>:<name>[:<id>]`: the hash tag `{tlfif}` keeps every key in one slot, so the queue's
transactions and scripts work on a cluster-mode server such as ElastiCache Serverless/Valkey (the lean profile).
The one exception is the job message, whose key `job:{id}` is part of the README's job protocol; it is never used
inside a transaction.

    job:{id}                        the job message (jobs.Job), TTL 300 s
    {tlfif}:queue:pending           list of ids waiting; LPUSH to enqueue, claimed from the right (oldest first)
    {tlfif}:queue:processing        list of ids claimed by a watcher and not yet acknowledged
    {tlfif}:queue:dead              list of ids given up after MAX_ATTEMPTS claims
    {tlfif}:lease:{id}              held by the worker while it generates (heartbeat refreshes the TTL)
    {tlfif}:claimed                 hash id -> epoch ms of the claim (grace before a lease-less job is reaped)
    {tlfif}:attempts                hash id -> number of claims
    {tlfif}:final:{id}              set once, by the one worker allowed to write the job's final result; TTL 1 h
    {tlfif}:owner:{id}              who sent the job (router); outlives the job key so /cancel checks ownership first
    {tlfif}:idem:{user}:{key}       the id of the job a user's POST /infer with Idempotency-Key `key` queued; TTL 300 s
    {tlfif}:cancel:{id}             the job's owner asked to stop it (POST /cancel/{id}); TTL 300 s
    {tlfif}:keepwarm                keep-warm is on until this epoch ms (POST /keepwarm); expires 60 s after it
    {tlfif}:gpu:started_at          epoch ms of the router's last StartInstances: a ready mark older than this is
                                    stale (the ready mark itself is the SSM parameter names.ssm_ready_param)
    {tlfif}:gpu:start_wanted        a job arrived while the GPU was stopping; the next /ping or /infer starts it
    {tlfif}:gpu:user_stop           epoch ms of the user's last POST /stop: jobs sent until then end "GPU stopped"
                                    (the watcher, as it stops or at its next start); TTL 300 s, a job's lifetime
    {tlfif}:rl:{user}:{second}      the per-user rate limiter's counter for one second; TTL 2 s
"""
from __future__ import annotations

NS = "{tlfif}"

# The queue (workqueue.WorkQueue).
PENDING, PROCESSING, DEAD = f"{NS}:queue:pending", f"{NS}:queue:processing", f"{NS}:queue:dead"
CLAIMED, ATTEMPTS = f"{NS}:claimed", f"{NS}:attempts"
# Marks the router leaves for the watcher, and for its own next request.
KEEP_WARM = f"{NS}:keepwarm"
GPU_STARTED_AT, START_WANTED = f"{NS}:gpu:started_at", f"{NS}:gpu:start_wanted"
USER_STOP = f"{NS}:gpu:user_stop"
RATE_LIMIT_PATTERN = f"{NS}:rl:*"  # every rate limiter key (tests, operators' redis-cli --scan)


def job(job_id: str) -> str:
    return f"job:{job_id}"


def lease(job_id: str) -> str:
    return f"{NS}:lease:{job_id}"


def final(job_id: str) -> str:
    return f"{NS}:final:{job_id}"


def owner(job_id: str) -> str:
    return f"{NS}:owner:{job_id}"


def idempotency(user: str, key: str) -> str:
    return f"{NS}:idem:{user}:{key}"


def cancel(job_id: str) -> str:
    return f"{NS}:cancel:{job_id}"


def rate_limit(user: str, second: int) -> str:
    return f"{NS}:rl:{user}:{second}"
