"""BudgetKiller Lambda: `tlfif_router.budget_killer.handler`, subscribed to the SNS topic AWS Budgets notifies
(RQL 6 "Hard kill", RQL 10 "stops GPU at EUR 20/month").

The event is SNS's Lambda event; AWS Budgets publishes plain text, not JSON (a real one is in
tests/events/sns_budget_actual.json):

    Records[].Sns.Subject  "AWS Budgets: tl-fif-monthly has exceeded your alert threshold"
    Records[].Sns.Message  "AWS Budget Notification November 26, 2026\\nAWS Account 123456789012\\n\\n..."
                           "Budget Name: tl-fif-monthly\\nBudget Type: Cost\\nBudgeted Amount: $20.00\\n"
                           "Alert Type: ACTUAL\\nAlert Threshold: > $20.00\\nACTUAL Amount: $20.52\\n..."

An ACTUAL notification stops the GPU instance (TLFIF_GPU_INSTANCE_ID; EC2 accepts a stop of a stopped instance, so
a repeated notification is harmless) or, in GpuMode scale (TLFIF_GPU_GROUP set), drains the GPU group to 0 as POST
/stop does (lift the nodes' scale-in protection, desired 0; a stopped group node would only be replaced), puts the
metric `BudgetStops` = 1 and writes the SSM parameter names.SSM_BUDGET_STOP = {"month", "stopped_at", "budget",
"amount"} for the router and the operator to see (the router then refuses to start a GPU this month).
A FORECASTED notification is logged and not acted on (a forecast early in the month would stop work that may
never overrun); point only the ACTUAL threshold at this function's topic.

A message that is not a Budgets notification (no "AWS Budget Notification" anchor, or no budget name / alert
type) is logged and ignored: the function returns normally, so SNS does not retry it. Only a failed stop or drain
raises (Lambda retries an asynchronous invocation twice, then gives up: no crash loop).
"""
from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

from tlfif_common import names

from .log import get_logger, log

ANCHOR = "AWS Budget Notification"
_FIELD = re.compile(r"^\s*(Budget Name|Budget Type|Budgeted Amount|Alert Type|Alert Threshold|ACTUAL Amount|"
                    r"FORECASTED Amount)\s*:\s*(.*?)\s*$", re.MULTILINE)

logger = get_logger("budget-killer")
_clients: dict[str, Any] = {}


@dataclass(frozen=True)
class BudgetNotice:
    budget: str
    alert_type: str  # ACTUAL | FORECASTED
    amount: str | None  # as written, e.g. "$20.52"
    threshold: str | None
    budgeted: str | None


def parse_notice(message: Any) -> BudgetNotice | None:
    """The notification's fields, or None when the text is not an AWS Budgets notification."""
    if not isinstance(message, str) or ANCHOR not in message:
        return None
    fields = {key: value for key, value in _FIELD.findall(message)}
    budget, alert_type = fields.get("Budget Name"), (fields.get("Alert Type") or "").upper()
    if not budget or alert_type not in ("ACTUAL", "FORECASTED"):
        return None
    return BudgetNotice(budget=budget, alert_type=alert_type, amount=fields.get(f"{alert_type} Amount"),
                        threshold=fields.get("Alert Threshold"), budgeted=fields.get("Budgeted Amount"))


def notices(event: Any) -> tuple[list[BudgetNotice], int]:
    """(the Budgets notifications in an SNS Lambda event, the number of records ignored as malformed)."""
    found: list[BudgetNotice] = []
    ignored = 0
    records = event.get("Records") if isinstance(event, Mapping) else None
    for record in records if isinstance(records, list) else [event]:
        sns = record.get("Sns") if isinstance(record, Mapping) else None
        message = sns.get("Message") if isinstance(sns, Mapping) else None
        notice = parse_notice(message)
        if notice is None:
            ignored += 1
            log(logger, logging.WARNING, "ignored: not an AWS Budgets notification",
                message_id=sns.get("MessageId") if isinstance(sns, Mapping) else None,
                subject=sns.get("Subject") if isinstance(sns, Mapping) else None,
                message_start=str(message)[:200])
            continue
        found.append(notice)
    return found, ignored


def stop_instance(notice: BudgetNotice, ec2: Any, instance_id: str) -> str:
    """GpuMode single: stop the instance. Returns EC2's previous state."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        response = ec2.stop_instances(InstanceIds=[instance_id])
    except (ClientError, BotoCoreError) as err:
        log(logger, logging.ERROR, "budget exceeded but ec2:StopInstances failed", budget=notice.budget,
            instance_id=instance_id, error=f"{type(err).__name__}: {err}")
        raise
    previous = response["StoppingInstances"][0]["PreviousState"]["Name"]
    log(logger, logging.WARNING, "budget exceeded: GPU stopped", budget=notice.budget, amount=notice.amount,
        threshold=notice.threshold, instance_id=instance_id, previous_state=previous)
    return previous


def drain_group(notice: BudgetNotice, autoscaling: Any, group_name: str) -> str:
    """GpuMode scale: every node of the group goes. Returns what the group ran before, e.g. "2 nodes"."""
    from .errors import AwsCallFailed
    from .gpu_group import describe_group, drain

    try:
        group = describe_group(autoscaling, group_name)
        drain(autoscaling, group)
    except AwsCallFailed as err:
        log(logger, logging.ERROR, "budget exceeded but draining the GPU group failed", budget=notice.budget,
            group=group_name, error=str(err))
        raise
    previous = f"{len(group.nodes)} node{'s' if len(group.nodes) != 1 else ''}"
    log(logger, logging.WARNING, "budget exceeded: GPU group drained", budget=notice.budget, amount=notice.amount,
        threshold=notice.threshold, group=group_name, previous_state=previous)
    return previous


def kill(notice: BudgetNotice, *, ec2: Any, cloudwatch: Any, ssm: Any, instance_id: str, now: datetime,
         autoscaling: Any = None, group_name: str | None = None) -> str:
    """Stop the GPU (drain the group in GpuMode scale); then (best effort) the BudgetStops metric and the SSM
    marker. Returns the GPU's previous state."""
    if group_name:
        previous = drain_group(notice, autoscaling, group_name)
    else:
        previous = stop_instance(notice, ec2, instance_id)
    try:
        cloudwatch.put_metric_data(Namespace=names.METRICS_NAMESPACE, MetricData=[
            {"MetricName": names.METRIC_BUDGET_STOPS, "Value": 1.0, "Unit": "Count"}])
    except Exception as err:  # noqa: BLE001 - the stop happened; a lost metric must not make SNS retry it
        log(logger, logging.ERROR, "could not put the BudgetStops metric", error=f"{type(err).__name__}: {err}")
    marker = {"month": now.strftime("%Y-%m"), "stopped_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
              "budget": notice.budget, "amount": notice.amount}
    try:
        ssm.put_parameter(Name=names.SSM_BUDGET_STOP, Value=json.dumps(marker, separators=(",", ":")),
                          Type="String", Overwrite=True, Tier="Standard")
    except Exception as err:  # noqa: BLE001 - as above
        log(logger, logging.ERROR, "could not write the budget-stop marker", error=f"{type(err).__name__}: {err}")
    return previous


def handle_event(event: Any, *, ec2: Any, cloudwatch: Any, ssm: Any, instance_id: str,
                 now: datetime | None = None, autoscaling: Any = None, group_name: str | None = None) -> dict:
    found, ignored = notices(event)
    actual = [n for n in found if n.alert_type == "ACTUAL"]
    for notice in found:
        if notice.alert_type != "ACTUAL":
            log(logger, logging.INFO, "forecast notification: the GPU is left running", budget=notice.budget,
                amount=notice.amount, threshold=notice.threshold)
    if not actual:
        return {"stopped": False, "ignored": ignored, "notifications": len(found)}
    previous = kill(actual[0], ec2=ec2, cloudwatch=cloudwatch, ssm=ssm, instance_id=instance_id,
                    now=now or datetime.now(timezone.utc), autoscaling=autoscaling, group_name=group_name)
    return {"stopped": True, "previous_state": previous, "ignored": ignored, "notifications": len(found)}


def _client(service: str) -> Any:
    if service not in _clients:
        import boto3

        _clients[service] = boto3.client(service)
    return _clients[service]


def handler(event: Any, context: Any) -> dict:
    group_name = os.environ.get(names.ENV_GPU_GROUP, "").strip()  # empty: GpuMode single
    instance_id = os.environ.get(names.ENV_GPU_INSTANCE_ID, "").strip()
    if not instance_id and not group_name:  # misconfigured: fail loudly (Lambda Errors), SNS retries twice at most
        log(logger, logging.ERROR, f"neither {names.ENV_GPU_INSTANCE_ID} nor {names.ENV_GPU_GROUP} is set: "
                                   "cannot stop the GPU")
        raise RuntimeError(f"{names.ENV_GPU_INSTANCE_ID} is not set")
    return handle_event(event, ec2=_client("ec2"), cloudwatch=_client("cloudwatch"), ssm=_client("ssm"),
                        instance_id=instance_id, autoscaling=_client("autoscaling") if group_name else None,
                        group_name=group_name or None)
