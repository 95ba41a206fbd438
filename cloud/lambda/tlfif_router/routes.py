"""The route table: API Gateway route key (`tlfif_common.api`) → handler module. A new route is one module, one
key in `api.ROUTE_KEYS` and one line here.

`needs_queue`: the route cannot work without the job queue, so an unreachable queue answers 503 before the route
runs. The others fail open on the per-user rate limiter (stopping the GPU must work while Redis is down).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from tlfif_common import api

from . import cancel, cost_route, infer, keepwarm, ping, stop
from .deps import Deps
from .request import Request


@dataclass(frozen=True)
class Route:
    handle: Callable[[Request, Deps], dict]
    needs_queue: bool


ROUTES: dict[str, Route] = {
    api.INFER: Route(infer.handle, needs_queue=True),
    api.STOP: Route(stop.handle, needs_queue=False),
    api.PING: Route(ping.handle, needs_queue=False),
    api.COST: Route(cost_route.handle, needs_queue=False),
    api.CANCEL: Route(cancel.handle, needs_queue=True),
    api.KEEP_WARM: Route(keepwarm.handle, needs_queue=True),
}
