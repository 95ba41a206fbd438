"""GET /ping: `{"status": api.PING_OK, "gpu": state, "queue_depth": n}` (RQL 2.1).

gpu: one of `api.GPU_STATES`. `ready` = running and the SSM ready marker is newer than both
the instance's LaunchTime and the router's last start mark (see gpu.is_ready). EC2 `shutting-down`/`terminated`
are reported as `stopped` (and logged as a warning: the deployment needs a new instance).
queue_depth is null when the queue cannot be reached; /ping still answers 200 (it fails open).
A GPU found `stopped` with a "start wanted" mark (a job arrived while it was stopping) is started here.
eta: the cold start to expect in seconds, the median of the recent boots (boot_eta.py).
GpuMode scale: "gpu" summarises the group (gpu_group.summarise) and "group" adds its desired and maximum size and
a node count per state; the PendingJobs metric is published here too, so the scale-out alarm sees a backlog
while the app waits.
"""
from __future__ import annotations

import logging

from tlfif_common import api, names

from .deps import Deps
from .errors import AwsCallFailed, QueueUnavailable
from .boot_eta import boot_eta_seconds
from .gpu import budget_hold, describe_gpu, is_ready, ready_at_ms, start_gpu
from .gpu_group import describe_group, summarise
from .log import get_logger, log
from .request import Request, json_response

logger = get_logger("router")


def handle(req: Request, deps: Deps) -> dict:
    if deps.config.gpu_group:
        return _group_ping(req, deps, deps.config.gpu_group)
    instance_id = deps.config.gpu_instance_id
    gpu = describe_gpu(deps.ec2, instance_id)
    queue_ok = not req.queue_down
    depth = None
    if queue_ok:
        try:
            depth = deps.queue.depth()
        except QueueUnavailable as err:
            queue_ok = False
            _queue_warning(req, err)

    state = gpu.api_state
    if gpu.state in ("shutting-down", "terminated"):
        log(logger, logging.WARNING, f"GPU instance is {gpu.state}; reporting it as stopped",
            **req.log_fields(), instance_id=instance_id)
    elif (gpu.state == "stopped" and queue_ok and _take_start_wanted(req, deps)
          and budget_hold(deps.ssm, deps.now_ms()) is None):
        state = api.GPU_STATE_OF_EC2.get(_deferred_start(req, deps), api.GPU_PENDING)
    elif gpu.state == "running":
        ready_ms = ready_at_ms(deps.ssm, instance_id)
        started_ms = None
        if ready_ms is not None and queue_ok:
            try:
                started_ms = deps.queue.gpu_started_at()
            except QueueUnavailable as err:
                _queue_warning(req, err)
        if is_ready(gpu, ready_ms, started_ms):
            state = api.GPU_READY
    return json_response(200, {"status": api.PING_OK, "gpu": state, "queue_depth": depth,
                               "eta": boot_eta_seconds(deps.ssm, deps.config.boot_eta_seconds)})


def _group_ping(req: Request, deps: Deps, group_name: str) -> dict:
    group = describe_group(deps.autoscaling, group_name)
    depth = None
    if not req.queue_down:
        try:
            depth = deps.queue.depth()
        except QueueUnavailable as err:
            _queue_warning(req, err)
    if depth is not None:
        req.metrics.add(names.METRIC_PENDING_JOBS, depth)
    state, summary = summarise(group, lambda instance_id: ready_at_ms(deps.ssm, instance_id) is not None)
    return json_response(200, {"status": api.PING_OK, "gpu": state, "queue_depth": depth,
                               "eta": boot_eta_seconds(deps.ssm, deps.config.boot_eta_seconds), "group": summary})


def _take_start_wanted(req: Request, deps: Deps) -> bool:
    try:
        return deps.queue.take_start_wanted()
    except QueueUnavailable as err:
        _queue_warning(req, err)
        return False


def _deferred_start(req: Request, deps: Deps) -> str:
    """Start the GPU a /infer could not start while it was stopping; keep the mark if EC2 refuses again."""
    instance_id = deps.config.gpu_instance_id
    try:
        state = start_gpu(deps.ec2, instance_id)
    except AwsCallFailed:
        try:
            deps.queue.want_start()
        except QueueUnavailable as err:
            _queue_warning(req, err)
        raise
    req.metrics.add(names.METRIC_COLD_STARTS)
    log(logger, logging.INFO, "started the GPU for jobs that arrived while it was stopping", **req.log_fields(),
        instance_id=instance_id)
    try:
        deps.queue.mark_gpu_started(deps.now_ms())
    except QueueUnavailable as err:
        _queue_warning(req, err)
    return state


def _queue_warning(req: Request, err: Exception) -> None:
    log(logger, logging.WARNING, "queue unreachable; /ping answers without it", **req.log_fields(), error=str(err))
