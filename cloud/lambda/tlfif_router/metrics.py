"""CloudWatch custom metrics (namespace `names.METRICS_NAMESPACE`), sent in one PutMetricData per invocation.

Metrics: Requests (an accepted /infer), ColdStarts (the router started the GPU), Errors (an answer >= 500),
ManualStops (/stop). No dimensions, so alarms can name the metric alone.
"""
from __future__ import annotations

from collections import Counter
from typing import Any

from tlfif_common import names

from .aws import aws_call


class MetricBuffer:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def add(self, name: str, value: int = 1) -> None:
        self.counts[name] += value

    def flush(self, cloudwatch: Any) -> None:
        """One PutMetricData for everything counted; raises AwsCallFailed (the caller logs, never answers 502)."""
        if not self.counts:
            return
        data = [{"MetricName": name, "Value": float(value), "Unit": "Count"}
                for name, value in sorted(self.counts.items())]
        with aws_call("cloudwatch:PutMetricData"):
            cloudwatch.put_metric_data(Namespace=names.METRICS_NAMESPACE, MetricData=data)
        self.counts.clear()
