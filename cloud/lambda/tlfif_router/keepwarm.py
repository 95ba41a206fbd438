"""POST /keepwarm: hold the GPU's idle timer, bounded by a maximum lifetime (issue "Chat experience", GPU controls).

    {"on": true, "max_minutes": 1..480 (optional, default 120)} → 200 {"status": "on", "until": epoch_ms}
    {"on": false}                                                → 200 {"status": "off"}
    400 naming the field (body, on, max_minutes, or an unknown one) · 503 when the queue is unreachable

The state is one queue key (`tlfif_common.redis_keys.KEEP_WARM`) that the watcher reads between jobs: while `until`
lies ahead it restarts its idle timer; once `until` has passed it stops the instance (unless a job is waiting), so
a forgotten toggle costs at most max_minutes of GPU time. Switching on again moves `until` to now + max_minutes.
Nothing here starts or describes the GPU: switched on while the GPU is stopped, keep-warm applies once it runs.
POST /stop switches keep-warm off as well (stop.py). A "minute" is TLFIF_MINUTE_SECONDS long (60 unless the local
cloud shortens it, as it does for the watcher).
"""
from __future__ import annotations

from tlfif_common import api
from tlfif_common.jobs import RequestError
from tlfif_common.keepwarm import validate_keepwarm_request

from .deps import Deps
from .request import Request, bad_request, json_response


def handle(req: Request, deps: Deps) -> dict:
    try:
        on, max_minutes = validate_keepwarm_request(req.json_body())
    except RequestError as err:
        raise bad_request(err) from None
    if not on:
        deps.queue.clear_keep_warm()
        return json_response(200, {"status": api.KEEP_WARM_OFF})
    until_ms = deps.now_ms() + int(round(max_minutes * deps.config.minute_seconds * 1000))
    deps.queue.set_keep_warm(until_ms)
    return json_response(200, {"status": api.KEEP_WARM_ON, "until": until_ms})
