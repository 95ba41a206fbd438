"""Per-user request limit in Redis (RQL 2.2: 5 requests/s per user; HTTP API throttling is per route, not per user)."""
from __future__ import annotations

import math
import time

import redis

from . import redis_keys

DEFAULT_RPS = 5


def allow(client: redis.Redis, user: str, *, limit: int = DEFAULT_RPS, now: float | None = None) -> tuple[bool, int]:
    """Count one request by `user` in the current one-second window.

    Returns (allowed, retry_after_seconds); retry_after is 0 when allowed.
    """
    now = time.time() if now is None else now
    second = int(now)
    key = redis_keys.rate_limit(user, second)
    pipe = client.pipeline(transaction=True)
    pipe.incr(key)
    pipe.expire(key, 2)
    count, _ = pipe.execute()
    if int(count) <= limit:
        return True, 0
    return False, max(1, math.ceil(second + 1 - now))
