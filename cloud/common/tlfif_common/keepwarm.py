"""Keep-warm (issue "Chat experience", GPU controls): one definition of its limits and of the `POST /keepwarm` body,
shared by the router, the watcher and the app.

    POST /keepwarm  {"on": true, "max_minutes": 120}   → 200 {"status": "on", "until": epoch_ms}
                    {"on": false}                      → 200 {"status": "off"}

While keep-warm is on, the watcher holds its idle timer; at `until` (now + max_minutes when it was switched on) the
GPU stops anyway, whatever the idle setting says: the maximum lifetime is a hard bound on what a forgotten toggle
can cost (8 h of a g4dn.xlarge at most, ≈ €4.50).
"""
from __future__ import annotations

from typing import Any

from .jobs import RequestError

MAX_MINUTES_MIN, MAX_MINUTES_MAX = 1, 480
DEFAULT_MAX_MINUTES = 120
REQUEST_FIELDS = ("on", "max_minutes")


def validate_keepwarm_request(body: Any) -> tuple[bool, int]:
    """(on, max_minutes) from a `POST /keepwarm` body; RequestError naming the field otherwise."""
    if not isinstance(body, dict):
        raise RequestError("body", "the body must be a JSON object")
    unknown = sorted(set(body) - set(REQUEST_FIELDS))
    if unknown:
        raise RequestError(unknown[0], f"unknown field {unknown[0]!r}; expected {', '.join(REQUEST_FIELDS)}")
    on = body.get("on")
    if not isinstance(on, bool):
        raise RequestError("on", "on must be true or false")
    max_minutes = body.get("max_minutes", DEFAULT_MAX_MINUTES)
    if max_minutes is None:
        max_minutes = DEFAULT_MAX_MINUTES
    return on, check_max_minutes(max_minutes)


def check_max_minutes(value: Any, field: str = "max_minutes") -> int:
    """A whole number of minutes from MAX_MINUTES_MIN to MAX_MINUTES_MAX (no bools, no floats, no strings)."""
    if isinstance(value, bool) or not isinstance(value, int) or not MAX_MINUTES_MIN <= value <= MAX_MINUTES_MAX:
        raise RequestError(field, f"{field} must be a whole number of minutes from {MAX_MINUTES_MIN} to "
                                  f"{MAX_MINUTES_MAX}")
    return value
