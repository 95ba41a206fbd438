"""POST /infer: validate, enqueue always (DECISIONS.md), start the GPU if it is stopped, answer 202.

Order matters for retries: everything that can fail with a 4xx/502 (validation, presigning, DescribeInstances,
StartInstances) happens before the job is enqueued, so a client that retries after an error never leaves a
duplicate job behind; a retry after a lost answer (the connection dropped after the enqueue) carries the first
try's `Idempotency-Key` and is answered with the job that try queued. What comes after the enqueue (the start
mark, the ActiveSessions item, metrics) is best-effort: a failure there is logged and does not turn an accepted
job into an error.

GPU state → what happens:
  stopped (also shutting-down/terminated) → StartInstances → 202 "starting" with eta (a refused start → 502,
                                           nothing enqueued)
  pending / running                       → no start → 202 "queued"
  stopped/stopping after BudgetKiller fired this month → 403, nothing enqueued (the kill switch stays thrown)
  stopping                                → StartInstances is refused (IncorrectInstanceState) until EC2 reports
                                           `stopped`; the job is enqueued, a "start wanted" mark is left in the
                                           queue, and the next /ping (or /infer) that finds the GPU stopped
                                           starts it → 202 "starting" with eta
GpuMode scale (an Auto Scaling group, gpu_group.py): desired 0 → set it to 1 → 202 "starting" (403 while the budget
kill switch holds); desired > 0 → 202 "queued"; the PendingJobs metric (jobs waiting) lets the group add nodes.
eta is the median of the recent cold starts (boot_eta.py).
"""
from __future__ import annotations

import logging

from tlfif_common import api, names
from tlfif_common.jobs import (JOB_TTL_SECONDS, Job, RequestError, result_object_key, validate_idempotency_key,
                               validate_infer_request)

from .aws import aws_call
from .boot_eta import boot_eta_seconds
from .deps import Deps
from .errors import AwsCallFailed, HttpError, QueueUnavailable
from .gpu import budget_hold, describe_gpu, start_gpu
from .gpu_group import describe_group, start_first_node
from .log import get_logger, log
from .request import Request, bad_request, json_response

RESULT_URL_SECONDS = JOB_TTL_SECONDS  # 300 s, as long as the job itself lives
logger = get_logger("router")


def handle(req: Request, deps: Deps) -> dict:
    config = deps.config
    try:
        fields = validate_infer_request(req.json_body(), models_bucket=config.models_bucket)
        idempotency_key = validate_idempotency_key(req.header(api.IDEMPOTENCY_HEADER.lower()))
    except RequestError as err:
        raise bad_request(err) from None

    now_ms = deps.now_ms()
    job = Job.create(fields, bucket=config.responses_bucket, user=req.caller.sub, now_ms=now_ms)
    result_url = presign_result(deps, job.id)

    if config.gpu_group:
        started, deferred = _start_first_node(deps, config.gpu_group, now_ms), False
    else:
        started, deferred = _start_instance(deps, now_ms)

    queued_id = deps.queue.enqueue(job, idempotency_key)  # QueueUnavailable → 503; nothing was queued
    if queued_id != job.id:  # a retry of a prompt already queued: its job, nothing new
        log(logger, logging.INFO, "repeated Idempotency-Key: answering the job it queued", **req.log_fields(),
            job_id=queued_id)
        return json_response(202, {"status": api.INFER_QUEUED, "id": queued_id,
                                   "result_url": presign_result(deps, queued_id)})
    req.metrics.add(names.METRIC_REQUESTS)
    if config.gpu_group:
        _best_effort(req, "count the pending jobs", lambda: req.metrics.add(names.METRIC_PENDING_JOBS,
                                                                             deps.queue.depth()))
    if started:
        req.metrics.add(names.METRIC_COLD_STARTS)
        _best_effort(req, "mark the GPU start in the queue", lambda: deps.queue.mark_gpu_started(now_ms))
    if deferred:
        _best_effort(req, "leave a start-wanted mark for the stopping GPU", deps.queue.want_start)
    _best_effort(req, "record the session", lambda: record_session(deps, req.caller.sub, now_ms))

    if started or deferred:
        body = {"status": api.INFER_STARTING, "id": job.id, "eta": boot_eta_seconds(deps.ssm, config.boot_eta_seconds),
                "result_url": result_url}
    else:
        body = {"status": api.INFER_QUEUED, "id": job.id, "result_url": result_url}
    return json_response(202, body)


def _start_instance(deps: Deps, now_ms: int) -> tuple[bool, bool]:
    """(started, deferred) for the single instance, as the state table above says."""
    instance_id = deps.config.gpu_instance_id
    gpu = describe_gpu(deps.ec2, instance_id)
    if gpu.state in ("pending", "running"):
        return False, False
    refuse_when_budget_spent(deps, now_ms)
    if gpu.state == "stopping":
        try:
            start_gpu(deps.ec2, instance_id)
        except AwsCallFailed as err:
            if err.code != "IncorrectInstanceState":
                raise
            return False, True
        return True, False
    start_gpu(deps.ec2, instance_id)
    return True, False


def _start_first_node(deps: Deps, group_name: str, now_ms: int) -> bool:
    group = describe_group(deps.autoscaling, group_name)
    if group.desired > 0:
        return False
    refuse_when_budget_spent(deps, now_ms)
    return start_first_node(deps.autoscaling, group)


def refuse_when_budget_spent(deps: Deps, now_ms: int) -> None:
    """403 instead of a start when BudgetKiller stopped the GPU this month: the kill switch must stay thrown."""
    hold = budget_hold(deps.ssm, now_ms)
    if hold is not None:
        raise HttpError(403, f"monthly budget reached: the budget kill switch stopped the GPU at "
                             f"{hold.get('stopped_at', 'an earlier time')}; it stays off until next month "
                             f"(docs/deploy.md says how to lift it)")


def presign_result(deps: Deps, job_id: str) -> str:
    """A GET URL for the result object, valid RESULT_URL_SECONDS (the desktop holds no AWS credentials)."""
    with aws_call("s3:PresignGetObject"):
        return deps.s3.generate_presigned_url(
            "get_object", Params={"Bucket": deps.config.responses_bucket, "Key": result_object_key(job_id)},
            ExpiresIn=RESULT_URL_SECONDS)


def record_session(deps: Deps, user: str, now_ms: int) -> None:
    """The user's ActiveSessions item (RQL 3.4): user → GPU instance, last_seen in epoch ms."""
    with aws_call("dynamodb:PutItem"):
        deps.dynamodb.put_item(TableName=deps.config.sessions_table, Item={
            names.SESSIONS_KEY: {"S": user},
            "instance_id": {"S": deps.config.gpu_group or deps.config.gpu_instance_id},
            "last_seen": {"N": str(now_ms)},
        })


def _best_effort(req: Request, what: str, action) -> None:
    try:
        action()
    except (AwsCallFailed, QueueUnavailable) as err:
        req.metrics.add(names.METRIC_ERRORS)
        log(logger, logging.ERROR, f"could not {what}; the job is queued anyway", **req.log_fields(),
            error=str(err), **_aws_fields(err))


def _aws_fields(err: Exception) -> dict:
    if isinstance(err, AwsCallFailed):
        return {"aws_call": err.call, "aws_code": err.code, "aws_message": err.detail}
    return {}
