"""A small evaluator of CloudWatch alarm semantics, for alarm definitions read out of a template.

Metric alarms: Period, EvaluationPeriods, DatapointsToAlarm (M of N), Statistic over the datapoints of a period,
Threshold + ComparisonOperator, TreatMissingData (breaching / notBreaching / ignore / missing). At minute t the
alarm looks at the N newest whole periods that ended at least `delay` minutes ago (CloudWatch ingests with a lag).
Composite alarms: AlarmRule with ALARM(...), OK(...), INSUFFICIENT_DATA(...), AND, OR, NOT and parentheses.
Metric math (an alarm with `Metrics`) is not used by our templates and is refused, so a new one cannot slip by.

Series are {(namespace, metric name, dimensions as a frozenset of (name, value)): {minute: [values]}}.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

ALARM, OK, INSUFFICIENT = "ALARM", "OK", "INSUFFICIENT_DATA"
SeriesKey = tuple[str, str, frozenset]

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}
_STATISTIC: dict[str, Callable[[list[float]], float]] = {
    "Maximum": max, "Minimum": min, "Sum": sum, "SampleCount": lambda v: float(len(v)),
    "Average": lambda v: sum(v) / len(v),
}


@dataclass
class MetricAlarm:
    name: str
    key: SeriesKey
    period_min: int
    evaluation_periods: int
    datapoints_to_alarm: int
    statistic: str
    threshold: float
    comparison: str
    treat_missing: str

    @classmethod
    def from_template(cls, name: str, props: dict, refs: dict) -> MetricAlarm:
        if "Metrics" in props:
            raise NotImplementedError(f"{name}: metric math alarms are not evaluated here")
        dims = frozenset((d["Name"], _value(d["Value"], refs)) for d in props.get("Dimensions", []))
        threshold = float(_value(props["Threshold"], refs))
        period = int(props["Period"])
        assert period % 60 == 0, f"{name}: period {period} is not whole minutes"
        n = int(props["EvaluationPeriods"])
        return cls(name, (props["Namespace"], props["MetricName"], dims), period // 60, n,
                   int(props.get("DatapointsToAlarm", n)), props["Statistic"], threshold,
                   props["ComparisonOperator"], props.get("TreatMissingData", "missing"))

    def state(self, series: dict[SeriesKey, dict[int, list[float]]], now: int, delay: int, previous: str) -> str:
        points = series.get(self.key, {})
        newest_end = ((now - delay) // self.period_min) * self.period_min  # the newest whole period ends here
        breaching = present = 0
        for i in range(self.evaluation_periods):
            start = newest_end - (i + 1) * self.period_min
            values = [v for minute in range(start, start + self.period_min) for v in points.get(minute, [])]
            if values:
                present += 1
                breaching += _COMPARE[self.comparison](_STATISTIC[self.statistic](values), self.threshold)
            elif self.treat_missing == "breaching":
                breaching += 1
        if present == 0 and self.treat_missing == "missing":
            return INSUFFICIENT
        if present == 0 and self.treat_missing == "ignore":
            return previous
        return ALARM if breaching >= self.datapoints_to_alarm else OK


class CompositeAlarm:
    _TOKEN = re.compile(r'\s*(ALARM|OK|INSUFFICIENT_DATA)\("([^"]+)"\)|\s*(AND|OR|NOT|\(|\))')

    def __init__(self, name: str, rule: str):
        self.name = name
        self.tokens: list[tuple[str, str | None]] = []
        pos, rule = 0, rule.strip()
        while pos < len(rule):
            m = self._TOKEN.match(rule, pos)
            if not m:
                raise ValueError(f"{name}: cannot parse alarm rule at {rule[pos:]!r}")
            self.tokens.append((m.group(1), m.group(2)) if m.group(1) else (m.group(3), None))
            pos = m.end()

    def children(self) -> set[str]:
        return {arg for _kind, arg in self.tokens if arg}

    def state(self, states: dict[str, str]) -> str:
        tokens = list(self.tokens)

        def expr() -> bool:
            value = term()
            while tokens and tokens[0][0] == "OR":
                tokens.pop(0)
                value = term() or value
            return value

        def term() -> bool:
            value = factor()
            while tokens and tokens[0][0] == "AND":
                tokens.pop(0)
                value = factor() and value
            return value

        def factor() -> bool:
            kind, arg = tokens.pop(0)
            if kind == "NOT":
                return not factor()
            if kind == "(":
                value = expr()
                assert tokens.pop(0)[0] == ")"
                return value
            return states[arg] == kind

        result = expr()
        assert not tokens, f"{self.name}: trailing tokens {tokens}"
        return ALARM if result else OK


def _value(value, refs: dict) -> str:
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return refs[value["Ref"]]
    return str(value)


def alarms_of(resources: dict[str, dict], refs: dict) -> tuple[dict[str, MetricAlarm], dict[str, CompositeAlarm]]:
    """The composite alarms of a template and the metric alarms they are built on; `refs` gives the values of the
    parameters they name. A composite rule's ${Alarm} references become the alarm's logical id."""
    composite = {}
    for name, res in resources.items():
        if res["Type"] == "AWS::CloudWatch::CompositeAlarm":
            rule = res["Properties"]["AlarmRule"]
            rule = rule["Fn::Sub"] if isinstance(rule, dict) else rule
            composite[name] = CompositeAlarm(name, re.sub(r"\$\{([A-Za-z0-9]+)\}", r"\1", rule))
    children = set().union(*(alarm.children() for alarm in composite.values())) - set(composite)
    metric = {name: MetricAlarm.from_template(name, resources[name]["Properties"], refs) for name in children}
    return metric, composite


def run(metric: dict[str, MetricAlarm], composite: dict[str, CompositeAlarm],
        series: dict[SeriesKey, dict[int, list[float]]], start: int, end: int,
        delay: Callable[[MetricAlarm], int]) -> dict[str, dict[int, str]]:
    """State of every alarm at each minute in [start, end)."""
    history: dict[str, dict[int, str]] = {name: {} for name in [*metric, *composite]}
    states = {name: INSUFFICIENT for name in history}
    for now in range(start, end):
        for name, alarm in metric.items():
            states[name] = alarm.state(series, now, delay(alarm), states[name])
        for name, alarm in composite.items():
            missing = alarm.children() - set(states)
            assert not missing, f"{name} names unknown alarms {missing}"
            states[name] = alarm.state(states)
        for name in history:
            history[name][now] = states[name]
    return history
