"""The cold-start ETA /ping and /infer answer: the median of the recent boots the watchers recorded in SSM
(`names.SSM_BOOT_SECONDS`, see tlfif_watcher.boot_time), or the configured constant until there is one.

Best effort: an unreadable or malformed parameter gives the constant, never an error (the ETA is a hint).
"""
from __future__ import annotations

from typing import Any

from tlfif_common import boot_samples, names

from .aws import aws_call
from .errors import AwsCallFailed


def boot_eta_seconds(ssm: Any, default: int) -> int:
    try:
        with aws_call("ssm:GetParameter"):
            raw = ssm.get_parameter(Name=names.SSM_BOOT_SECONDS)["Parameter"]["Value"]
    except AwsCallFailed:  # ParameterNotFound (no boot recorded yet) or SSM unreachable
        return default
    median = boot_samples.median_seconds(raw)
    return default if median is None else median
