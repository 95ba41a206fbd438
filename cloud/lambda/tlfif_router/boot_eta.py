"""The cold-start ETA /ping and /infer answer: the median of the recent boots the watchers recorded in SSM
(`names.SSM_BOOT_SECONDS`, see tlfif_watcher.boot_time), or the configured constant until there is one.

Best effort: an unreadable or malformed parameter gives the constant, never an error (the ETA is a hint).
"""
from __future__ import annotations

import json
import statistics
from typing import Any

from tlfif_common import names

from .aws import aws_call
from .errors import AwsCallFailed


def boot_eta_seconds(ssm: Any, default: int) -> int:
    try:
        with aws_call("ssm:GetParameter"):
            raw = ssm.get_parameter(Name=names.SSM_BOOT_SECONDS)["Parameter"]["Value"]
    except AwsCallFailed:  # ParameterNotFound (no boot recorded yet) or SSM unreachable
        return default
    samples = parse_samples(raw)
    return round(statistics.median(samples)) if samples else default


def parse_samples(raw: str) -> list[int]:
    """The positive whole seconds in the parameter's JSON list; anything else is ignored."""
    try:
        values = json.loads(raw)
    except ValueError:
        return []
    if not isinstance(values, list):
        return []
    return [v for v in values if type(v) is int and v > 0]  # not bool, which is an int too
