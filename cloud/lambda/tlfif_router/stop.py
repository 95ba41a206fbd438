"""POST /stop: StopInstances on the GPU (idempotent when it is already stopping or stopped), metric ManualStops,
drop a pending "start wanted" mark (the user's stop wins), mark the stop in the queue (every job sent until now
ends `cancelled` "GPU stopped": the watcher ends the one it generates and those queued as it stops, or at its next
start those queued while it was down; a prompt sent after the stop restarts the GPU and is answered), switch
keep-warm off (else the next start would be held warm by a toggle the user's stop overrode) and the SSM ready
marker (so /ping cannot say `ready` after the next start before the watcher says so again). Fails open on the
queue: stopping must work without Redis.
GpuMode scale: the group is drained to 0 instead (gpu_group.drain) and every node's ready marker is dropped.
"""
from __future__ import annotations

import logging

from tlfif_common import api, names

from .deps import Deps
from .errors import QueueUnavailable
from .gpu import forget_ready, stop_gpu
from .gpu_group import describe_group, drain
from .log import get_logger, log
from .request import Request, json_response

logger = get_logger("router")


def handle(req: Request, deps: Deps) -> dict:
    if not req.queue_down:  # the marks first: the watcher reads the stop mark as soon as StopInstances ends it
        try:
            deps.queue.clear_start_wanted()
            deps.queue.mark_user_stop()
            deps.queue.clear_keep_warm()
        except QueueUnavailable as err:
            log(logger, logging.WARNING, "queue unreachable: could not leave the stop's marks in the queue",
                **req.log_fields(), error=str(err))
    group_name = deps.config.gpu_group
    if group_name:
        group = describe_group(deps.autoscaling, group_name)
        drain(deps.autoscaling, group)
        stopped = [node.instance_id for node in group.nodes]
    else:
        stop_gpu(deps.ec2, deps.config.gpu_instance_id)
        stopped = [deps.config.gpu_instance_id]
    req.metrics.add(names.METRIC_MANUAL_STOPS)
    for instance_id in stopped:
        forget_ready(deps.ssm, instance_id)
    return json_response(200, {"status": api.STOP_STOPPING})
