"""The idle-miss safety net (ops.yaml) does what the user's settings say: its alarms, read out of the template, are
evaluated on the metric series a node produces minute by minute (tests/support/cw_alarms.py) — keep-warm, long and
short idle times must never be cut short; a dead or hung watcher must be stopped within 35 minutes."""
from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from support import cw_alarms
from support.cfn_support import CFN_DIR, evaluate
from tlfif_common import names
from tlfif_watcher import deadline_metric
from tlfif_watcher.config import WatcherConfig
from tlfif_watcher.deadline_metric import DeadlineReporter, seconds_left

INSTANCE = "i-0123456789abcdef0"
COMPOSITE = "IdleMissAlarm"
STOP_ACTION_MIN = 2  # EventBridge -> AWS-StopEC2Instance -> the instance stops
DEADLINE_MIN = 35
BOOT_MIN = 2  # supervisord starts the watcher this long after the node starts
END = 240


def _default_idle_minutes() -> int:
    return int(evaluate(CFN_DIR / "gpu.yaml").raw["Parameters"]["DefaultIdleMinutes"]["Default"])


def _ec2_granularity_min() -> int:
    """EC2 sends CPUUtilization each minute with detailed monitoring, each 5 minutes without."""
    data = evaluate(CFN_DIR / "gpu.yaml").resources["LaunchTemplate"]["Properties"]["LaunchTemplateData"]
    return 1 if data.get("Monitoring", {}).get("Enabled") in (True, "true") else 5


@dataclass
class Node:
    """What one GPU start looks like from CloudWatch: when it runs, what its watcher and the router report."""
    running: set[int] = field(default_factory=set)
    watcher: dict[int, float] = field(default_factory=dict)
    requests: set[int] = field(default_factory=set)
    self_stop: int | None = None


def simulate(*, idle: int, job_at: int = 3, job_minutes: int = 1, keep_warm: int | None = None,
             dies_at: int | None = None, hangs: bool = False) -> Node:
    """One start at minute 0; one job at `job_at` asking for `idle` minutes (and keep-warm for `keep_warm` minutes
    from then, when given). The watcher's figures come from deadline_metric.seconds_left, as on the node."""
    node = Node(requests={0, job_at})  # the /infer that started the node, then the job
    default_deadline = BOOT_MIN + _default_idle_minutes()
    job_end = None if hangs else job_at + job_minutes
    for t in range(0, END):
        if node.self_stop is not None and t > node.self_stop:
            break  # the instance has stopped (one minute to shut down, counted below)
        node.running.add(t)
        if t < BOOT_MIN or (dies_at is not None and t >= dies_at):
            continue
        if t < job_at:
            value = seconds_left(idle_remaining_s=(default_deadline - t) * 60)
        elif job_end is None or t < job_end:
            value = seconds_left(idle_remaining_s=0, job_running_s=(t - job_at) * 60)
        else:
            kw_left = (job_at + keep_warm - t) * 60 if keep_warm is not None else None
            holding = kw_left is not None and kw_left > 0
            idle_left = idle * 60 if holding else max(0, (job_end + idle - t) * 60)
            if keep_warm is not None and not holding:
                idle_left = 0  # keep-warm's limit passed: the watcher stops at once
            value = seconds_left(idle_remaining_s=idle_left, keep_warm_left_s=kw_left if holding else None)
            if value <= 0 and node.self_stop is None:
                node.self_stop = t
        node.watcher[t] = value
    return node


def evaluate_alarms(node: Node) -> tuple[dict[str, dict[int, str]], dict]:
    ops = evaluate(CFN_DIR / "ops.yaml", {"GpuInstanceId": INSTANCE})
    metric, composite = cw_alarms.alarms_of(ops.resources, ops.params)
    step = _ec2_granularity_min()
    ec2 = {m: [10.0] for m in range(-600, END) if m % step == 0 and any(x in node.running for x in range(m, m + step))}
    series = {
        ("AWS/EC2", "CPUUtilization", frozenset({("InstanceId", INSTANCE)})): ec2,
        (names.METRICS_NAMESPACE, deadline_metric.METRIC_WATCHER_DEADLINE,
         frozenset({(deadline_metric.DIMENSION, INSTANCE)})): {m: [v] for m, v in node.watcher.items()},
        (names.METRICS_NAMESPACE, names.METRIC_REQUESTS, frozenset()): {m: [1.0] for m in node.requests},
    }
    # the node was stopped for hours before minute 0; EC2 metrics arrive ~2 minutes late, our own ~1
    history = cw_alarms.run(metric, composite, series, -300, END,
                            delay=lambda alarm: 2 if alarm.key[0] == "AWS/EC2" else 1)
    return history, ops


def first_stop(history) -> int | None:
    return next((t for t, state in sorted(history[COMPOSITE].items()) if t >= 0 and state == cw_alarms.ALARM), None)


@pytest.mark.parametrize("settings", [
    pytest.param({"idle": 5, "keep_warm": 120}, id="keep-warm 2 h"),
    pytest.param({"idle": 30}, id="idle 30 min"),
    pytest.param({"idle": 1}, id="idle 1 min"),
    pytest.param({"idle": 30, "job_at": 12}, id="first job after a slow 12-minute boot"),
])
def test_the_safety_net_never_stops_a_node_its_watcher_keeps_on_purpose(settings):
    node = simulate(**settings)
    assert node.self_stop is not None, "the watcher stops the node itself"
    history, _ops = evaluate_alarms(node)
    stopped_at = first_stop(history)
    assert stopped_at is None, f"{settings}: the safety net fires at minute {stopped_at}, the watcher stops at " \
                               f"{node.self_stop}"


@pytest.mark.parametrize("settings, silent_from", [
    pytest.param({"idle": 30, "dies_at": 10}, 10, id="watcher dead after its job"),
    pytest.param({"idle": 5, "dies_at": 1}, 0, id="watcher never starts"),
    pytest.param({"idle": 30, "keep_warm": 120, "dies_at": 40}, 40, id="watcher dead during keep-warm"),
    pytest.param({"idle": 30, "hangs": True}, 3, id="watcher hung mid-job"),
    pytest.param({"idle": 30, "hangs": True, "dies_at": 3}, 3, id="watcher process hung mid-job"),
])
def test_the_safety_net_stops_a_running_node_whose_watcher_is_dead_or_hung(settings, silent_from):
    node = simulate(**settings)
    assert node.self_stop is None
    history, _ops = evaluate_alarms(node)
    stopped_at = first_stop(history)
    assert stopped_at is not None, f"{settings}: the node runs on"
    assert silent_from <= stopped_at and stopped_at + STOP_ACTION_MIN <= silent_from + DEADLINE_MIN, \
        f"{settings}: stopped at minute {stopped_at}, the watcher went wrong at {silent_from}"


def test_gpu_running_alarm_period_matches_the_instance_monitoring():
    props = evaluate(CFN_DIR / "ops.yaml").resources["GpuRunningAlarm"]["Properties"]
    assert props["Period"] % (_ec2_granularity_min() * 60) == 0


def test_the_alarm_reads_what_the_watcher_publishes():
    props = evaluate(CFN_DIR / "ops.yaml").resources["WatcherOverdueAlarm"]["Properties"]
    assert (props["Namespace"], props["MetricName"]) == (names.METRICS_NAMESPACE,
                                                         deadline_metric.METRIC_WATCHER_DEADLINE)
    assert [d["Name"] for d in props["Dimensions"]] == [deadline_metric.DIMENSION]
    assert props["Period"] == deadline_metric.REPORT_EVERY_S


def test_seconds_left_follows_the_watchers_own_rules():
    assert seconds_left(idle_remaining_s=None) is None  # no self-stop armed: nothing to promise
    assert seconds_left(idle_remaining_s=120.0) == 120.0
    assert seconds_left(idle_remaining_s=300.0, keep_warm_left_s=3600.0) == 3600.0
    assert seconds_left(idle_remaining_s=300.0, keep_warm_left_s=-5.0) == 300.0
    assert seconds_left(idle_remaining_s=0.0, job_running_s=60.0) == deadline_metric.JOB_BUDGET_S - 60.0
    env = {names.ENV_REDIS_URL: "redis://x", names.ENV_RESPONSES_BUCKET: "b"}
    assert WatcherConfig.from_env(env).metrics_namespace == names.METRICS_NAMESPACE
    assert WatcherConfig.from_env({**env, names.ENV_METRICS_NAMESPACE: "TL-FIF-DR"}).metrics_namespace == "TL-FIF-DR"


def test_the_reporter_sends_one_datapoint_a_minute_to_cloudwatch(moto_clients):
    cloudwatch = moto_clients("cloudwatch")
    now = [1000.0]
    reporter = DeadlineReporter(cloudwatch, INSTANCE, clock=lambda: now[0])
    sent = []
    for step in range(0, 181, 10):  # three minutes of housekeeping ticks
        now[0] = 1000.0 + step
        sent.append(reporter.tick(600.0 - step))
    assert sent.count(True) == 4  # at 0, 60, 120 and 180 s
    listed = cloudwatch.list_metrics(Namespace=names.METRICS_NAMESPACE,
                                     MetricName=deadline_metric.METRIC_WATCHER_DEADLINE)["Metrics"]
    assert listed and listed[0]["Dimensions"] == [{"Name": "InstanceId", "Value": INSTANCE}]
    assert DeadlineReporter(cloudwatch, None).tick(5.0) is False  # no instance id (no IMDS): nothing to watch


def test_a_failed_send_never_stops_the_watcher():
    class Refusing:
        def put_metric_data(self, **_kwargs):
            raise RuntimeError("throttled")

    assert DeadlineReporter(Refusing(), INSTANCE).tick(5.0) is False
