"""Record how long this node's cold start took, for the ETA /ping and /infer answer (tlfif_router.boot_eta).

A boot is timed from the router's start mark (`WorkQueue.gpu_started_at`: StartInstances, or the group's 0 → 1)
to the moment the engine answers. A mark older than this machine's uptime plus EC2's launch phase belongs to an
earlier start (a node the scale-out alarm added, or a start by hand), so such a boot is not recorded rather than
recorded wrong. The newest `names.BOOT_SAMPLES` durations are kept as a JSON list in `names.SSM_BOOT_SECONDS`;
two nodes finishing at the same moment may lose one sample (read-modify-write), which a median shrugs off.

Call `record_boot` once per boot, right after the watcher wrote its ready marker.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any, Callable

from botocore.exceptions import BotoCoreError, ClientError

from tlfif_common import boot_samples, names

log = logging.getLogger("tlfif_watcher")

LAUNCH_PHASE_S = 180  # EC2 `pending` before the kernel starts counting uptime: generous, it only filters stale marks


def system_uptime_s() -> float:
    with open("/proc/uptime", encoding="ascii") as f:
        return float(f.read().split()[0])


def boot_seconds(started_ms: int | None, ready_ms: int, uptime_s: float) -> int | None:
    """Whole seconds from the start mark to ready, or None when the mark is missing, in the future or stale."""
    if started_ms is None or started_ms > ready_ms:
        return None
    if ready_ms - started_ms > (uptime_s + LAUNCH_PHASE_S) * 1000:
        return None
    return max(1, round((ready_ms - started_ms) / 1000))


def record_boot(ssm: Any, started_ms: int | None, *, ready_ms: int | None = None,
                uptime: Callable[[], float] = system_uptime_s) -> int | None:
    """Append this boot's duration to the SSM list (newest BOOT_SAMPLES kept); returns it, or None if not recorded.

    Never raises for AWS or clock trouble: the ETA is a hint, and readiness must not depend on it.
    """
    ready_ms = int(time.time() * 1000) if ready_ms is None else ready_ms
    try:
        seconds = boot_seconds(started_ms, ready_ms, uptime())
    except (OSError, ValueError) as err:
        log.warning("no uptime: boot time not recorded", extra={"error": str(err)})
        return None
    if seconds is None:
        log.info("no start mark for this boot: boot time not recorded", extra={"started_ms": started_ms})
        return None
    try:
        samples = _read(ssm)
        samples = (samples + [seconds])[-names.BOOT_SAMPLES:]
        ssm.put_parameter(Name=names.SSM_BOOT_SECONDS, Value=json.dumps(samples), Type="String", Overwrite=True)
    except (BotoCoreError, ClientError) as err:
        log.warning("could not record the boot time", extra={"parameter": names.SSM_BOOT_SECONDS, "error": str(err)})
        return None
    log.info("boot time recorded", extra={"boot_seconds": seconds})
    return seconds


def _read(ssm: Any) -> list[int]:
    try:
        raw = ssm.get_parameter(Name=names.SSM_BOOT_SECONDS)["Parameter"]["Value"]
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") == "ParameterNotFound":
            return []
        raise
    return boot_samples.parse(raw)
