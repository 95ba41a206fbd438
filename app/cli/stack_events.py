"""Follows a CloudFormation stack's events until it settles, one line per event under a progress prefix.

    [ 12/57  01:42] Data  AWS::CloudFormation::Stack  CREATE_COMPLETE
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

DONE_SUFFIXES = ("_COMPLETE", "_FAILED", "_SKIPPED")
# the reason CloudFormation gives the resources it stopped because another one failed: never the cause
CANCELLED = ("Resource creation cancelled", "Resource update cancelled")


@dataclass(frozen=True)
class Failure:
    stack: str
    logical_id: str
    resource_type: str
    status: str
    reason: str

    def __str__(self) -> str:
        return f"{self.logical_id} ({self.resource_type}) in stack {self.stack}: {self.status}: {self.reason}"


def settled(status: str) -> bool:
    return not status.endswith("_IN_PROGRESS") and status != "REVIEW_IN_PROGRESS"


def events_since(cfn: Any, stack: str, since: datetime | None) -> list[dict]:
    """The stack's events at or after `since`, oldest first."""
    out: list[dict] = []
    for page in cfn.get_paginator("describe_stack_events").paginate(StackName=stack):
        for event in page["StackEvents"]:
            if since is not None and event["Timestamp"] < since:
                return list(reversed(out))
            out.append(event)
    return list(reversed(out))


def first_failure(cfn: Any, stack: str, since: datetime | None, depth: int = 0) -> Failure | None:
    """The first failed resource, looked for inside a failed nested stack (its reason names the real cause)."""
    for event in events_since(cfn, stack, since):
        status = event.get("ResourceStatus", "")
        reason = event.get("ResourceStatusReason") or ""
        if not status.endswith("_FAILED") or reason.startswith(CANCELLED):
            continue
        if event.get("PhysicalResourceId") == event.get("StackId") and event.get("LogicalResourceId") == \
                event.get("StackName"):
            continue  # the stack's own event; the resource's comes before it
        if event.get("ResourceType") == "AWS::CloudFormation::Stack" and event.get("PhysicalResourceId") and depth < 3:
            inner = first_failure(cfn, event["PhysicalResourceId"], since, depth + 1)
            if inner:
                return inner
        return Failure(event.get("StackName", stack), event.get("LogicalResourceId", "?"),
                       event.get("ResourceType", "?"), status, reason or "no reason given")
    return None


def follow(cfn: Any, stack: str, *, since: datetime | None, total: int, out: Callable[[str], None] = print,
           poll_seconds: float = 5.0, clock: Callable[[], float] = time.monotonic) -> str:
    """Prints every new event of `stack` until its status settles; returns that status."""
    started = clock()
    seen: set[str] = set()
    done: set[str] = set()
    total = max(total, 1)
    while True:
        description = cfn.describe_stacks(StackName=stack)["Stacks"][0]
        for event in events_since(cfn, description["StackId"], since):
            if event["EventId"] in seen:
                continue
            seen.add(event["EventId"])
            logical = event.get("LogicalResourceId", "")
            status = event.get("ResourceStatus", "")
            is_stack = logical == event.get("StackName")
            if not is_stack and status.endswith(DONE_SUFFIXES):
                done.add(logical)
            elapsed = int(clock() - started)
            reason = event.get("ResourceStatusReason") or ""
            out(f"[{min(len(done), total):>3}/{total:<3} {elapsed // 60:02d}:{elapsed % 60:02d}] {logical}  "
                f"{event.get('ResourceType', '')}  {status}" + (f"  {reason}" if reason else ""))
        status = description["StackStatus"]
        if settled(status):
            return status
        time.sleep(poll_seconds)
