"""The recent cold-start durations in SSM (`names.SSM_BOOT_SECONDS`): one definition of the parameter's format, a JSON
list of positive whole seconds, newest last, shared by the watcher that appends to it and the router that answers
their median as the cold-start ETA.
"""
from __future__ import annotations

import json
import statistics


def parse(raw: str) -> list[int]:
    """The positive whole seconds in the parameter's JSON list; anything else is ignored."""
    try:
        values = json.loads(raw)
    except ValueError:
        return []
    if not isinstance(values, list):
        return []
    return [v for v in values if type(v) is int and v > 0]  # not bool, which is an int too


def median_seconds(raw: str) -> int | None:
    """The median boot in whole seconds, or None while the parameter holds none."""
    samples = parse(raw)
    return round(statistics.median(samples)) if samples else None
