"""The structural inputs of the cost estimate, read from the CloudFormation templates of one cost profile.

Each nested template is read with the parameters main.yaml passes it (their defaults, CostProfile set), so a
resource's Condition and an `!If` resolve as CloudFormation would resolve them at deploy time. The pipeline
(cloud/cfn/pipeline.yaml, a stack of its own) is read with its defaults. Nothing here is a copied number: change a
template default and the estimate follows (tests/test_cost_estimate.py does exactly that).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.cli import cfn_yaml

CFN_DIR = Path(__file__).resolve().parents[2] / "cloud" / "cfn"
IMAGE_DIR = CFN_DIR.parent / "gpu" / "image"
PIPELINE = "pipeline"
GIB = 2 ** 30


@dataclass(frozen=True)
class AmiSize:
    """The data in one GPU image: the sum of what ami-components.json lists, and the top that is priced."""
    low_gib: float
    top_gib: float
    top_source: str
    components: tuple[tuple[str, float, float | None, str], ...]  # name, low, top (None: unbounded), source


def component_range(component: dict) -> tuple[float, float | None]:
    if "wheels" in component:  # a venv: its wheels' bytes, expanded by unpacking, and the smaller dependencies
        wheels = sum(component["wheels"].values()) / GIB
        (lo_x, hi_x), (lo_o, hi_o) = component["expansion"], component["others_gib"]
        return wheels * lo_x + lo_o, wheels * hi_x + hi_o
    low, top = component["gib"]
    return float(low), None if top is None else float(top)


def ami_size() -> AmiSize:
    """Snapshots are billed on the blocks written: at most the sum of the components' tops, and never more than the
    volume ami.json bakes on. The top of that range is what the estimate prices."""
    table = json.loads((IMAGE_DIR / "ami-components.json").read_text())
    (builder,) = json.loads((IMAGE_DIR / "ami.json").read_text())["builders"]
    (volume,) = [m for m in builder["launch_block_device_mappings"] if m["device_name"] == "/dev/sda1"]
    volume_gib = float(volume["volume_size"])
    rows = []
    for component in table["components"]:
        low, top = component_range(component)
        rows.append((component["name"], low, top, component["source"]))
    low = sum(r[1] for r in rows)
    tops = [r[2] for r in rows]
    if None in tops or sum(tops) > volume_gib:
        unbounded = [r[0] for r in rows if r[2] is None]
        why = f"{', '.join(unbounded)}: no known top" if unbounded else f"the components' tops sum to {sum(tops):.1f}"
        return AmiSize(low, volume_gib, f"the {volume_gib:g} GiB volume ami.json bakes on ({why})", tuple(rows))
    return AmiSize(low, sum(tops), "the components' tops (ami-components.json)", tuple(rows))


@dataclass(frozen=True)
class Structure:
    gpu_instance_type: str
    root_gib: int
    root_iops: int
    root_mibps: int
    gpu_public_ipv4: bool
    nat_gateways: int
    nlb: bool
    interface_endpoints: tuple[str, ...]
    endpoint_azs: int
    redis: str  # "node" | "serverless"
    redis_node_type: str
    standard_alarms: int
    composite_alarms: int
    config_rules: int
    config_periodic_rules: int  # rules that also sweep every bucket daily
    dlm_days: int
    buckets: int
    amis_kept: int
    builder_instance_type: str
    bake_trigger: str  # "push" (every push to the branch) | "tag" (a release tag) | "manual"
    cost_poll_hours: float
    dr_tests_per_month: float
    log_retention_days: int
    ami_gib: float  # the top of ami_size()'s range, what a snapshot of one image is priced at
    ami_gib_low: float
    source: dict[str, str]  # field -> where it was read


class _Template:
    def __init__(self, name: str, params: dict[str, Any]):
        self.name = name
        self.body = cfn_yaml.load(CFN_DIR / f"{name}.yaml")
        values = {key: spec.get("Default") for key, spec in (self.body.get("Parameters") or {}).items()}
        values.update(params)
        self.params = values
        self.conditions: dict[str, bool] = {}

    def value(self, node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref" and arg in self.params:
                return self.params[arg]
            if key == "Fn::If":
                name, yes, no = arg
                return self.value(yes if self.condition(name) else no)
            if key == "Fn::Equals":
                return str(self.value(arg[0])) == str(self.value(arg[1]))
            if key == "Fn::Not":
                return not self.value(arg[0])
            if key == "Fn::And":
                return all(self.value(a) for a in arg)
            if key == "Fn::Or":
                return any(self.value(a) for a in arg)
            if key == "Condition":
                return self.condition(arg)
        return node

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            self.conditions[name] = bool(self.value(self.body["Conditions"][name]))
        return self.conditions[name]

    def resources(self, kind: str) -> list[dict]:
        return [r for r in (self.body.get("Resources") or {}).values()
                if r["Type"] == kind and (not r.get("Condition") or self.condition(r["Condition"]))]


def _stacks(profile: str, values: dict[str, Any] | None = None) -> dict[str, _Template]:
    root = _Template("main", {**(values or {}), "CostProfile": profile})
    out = {"main": root}
    for resource in root.resources("AWS::CloudFormation::Stack"):
        props = resource["Properties"]
        name = Path(props["TemplateURL"]).stem
        passed = {key: root.value(value) for key, value in (props.get("Parameters") or {}).items()}
        out[name] = _Template(name, {k: v for k, v in passed.items() if not isinstance(v, dict)})
    out[PIPELINE] = _Template(PIPELINE, {"CostProfile": profile})
    return out


def _rate_hours(expression: str) -> float:
    match = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expression.strip())
    if not match:
        raise ValueError(f"cannot read the schedule {expression!r}")
    return int(match.group(1)) * {"m": 1 / 60, "h": 1.0, "d": 24.0}[match.group(2)[0]]


def _cron_per_month(expression: str) -> float:
    """Runs per month of a monthly-or-rarer cron(min hour day-of-month month day-of-week year)."""
    fields = expression.strip()[len("cron("):-1].split()
    day, month = fields[2], fields[3]
    if not day.isdigit():
        raise ValueError(f"the estimate reads monthly or rarer schedules only, got {expression!r}")
    if month == "*":
        return 1.0
    step = re.fullmatch(r"(?:\*|\d+)/(\d+)", month)
    if step:
        return 1 / int(step.group(1))
    return len(month.split(",")) / 12


def _bake_trigger(pipeline: _Template) -> str:
    (spec,) = pipeline.resources("AWS::CodePipeline::Pipeline")
    triggers = spec["Properties"].get("Triggers")
    if triggers is None:
        return "push"  # a V2 pipeline with a CodeStar source and no Triggers starts on every push to the branch
    pushes = [t for t in triggers if t.get("GitConfiguration", {}).get("Push")]
    if not pushes:
        return "manual"
    if all(p.get("Tags") for t in pushes for p in t["GitConfiguration"]["Push"]):
        return "tag"
    return "push"


# AWS managed Config rules that also run on a schedule (24 h unless MaximumExecutionFrequency says otherwise) and
# evaluate every resource in scope each time: their "Trigger type: Configuration changes and Periodic" in the AWS
# Config managed rules list. The other rules the templates use are change-triggered only.
PERIODIC_MANAGED_RULES = frozenset({"S3_BUCKET_PUBLIC_READ_PROHIBITED", "S3_BUCKET_PUBLIC_WRITE_PROHIBITED"})


def _periodic_rules(ops: _Template) -> int:
    return sum(1 for r in ops.resources("AWS::Config::ConfigRule")
               if r["Properties"]["Source"]["SourceIdentifier"] in PERIODIC_MANAGED_RULES
               or "MaximumExecutionFrequency" in r["Properties"])


PROTECTED_IMAGES = 2  # ami_images.py prune never takes the current or the previous image (the node runs the current)


def _images_kept(pipeline: _Template) -> int:
    """Images the deploy stage's `ami_images.py prune --keep N` leaves: N besides the protected ones."""
    (project,) = [r for r in pipeline.resources("AWS::CodeBuild::Project")
                  if "ami_images.py prune" in str(r["Properties"]["Source"].get("BuildSpec", ""))]
    spec = project["Properties"]["Source"]["BuildSpec"]
    keep = re.search(r"ami_images\.py prune --keep \"?\$?(\w+)\"?", spec).group(1)
    if not keep.isdigit():
        env = {v["Name"]: pipeline.value(v["Value"]) for v in project["Properties"]["Environment"]
               .get("EnvironmentVariables", [])}
        keep = env[keep]
    return int(keep) + PROTECTED_IMAGES


def read(profile: str, values: dict[str, Any] | None = None) -> Structure:
    """`values`: main.yaml parameter values that differ from the defaults (a deployed stack's)."""
    stacks = _stacks(profile, values)
    main, gpu, network, data, ops, api, pipeline = (stacks[n] for n in
                                                    ("main", "gpu", "network", "data", "ops", "api", PIPELINE))
    (template,) = gpu.resources("AWS::EC2::LaunchTemplate")
    launch = template["Properties"]["LaunchTemplateData"]
    ebs = launch["BlockDeviceMappings"][0]["Ebs"]
    endpoints = [r for r in network.resources("AWS::EC2::VPCEndpoint")
                 if r["Properties"].get("VpcEndpointType") == "Interface"]
    services = tuple(sorted(str(network.value(r["Properties"]["ServiceName"])).rsplit(".", 1)[-1].rstrip("}'\"")
                            for r in endpoints))
    nodes = data.resources("AWS::ElastiCache::ReplicationGroup")
    (dlm,) = ops.resources("AWS::DLM::LifecyclePolicy")
    dr = ops.resources("AWS::Events::Rule")
    dr_rules = [r for r in dr if "DR" in str(r["Properties"].get("Description", ""))]
    (router_logs,) = [r for r in api.resources("AWS::Logs::LogGroup") if "Router" in str(r["Properties"])] or \
        api.resources("AWS::Logs::LogGroup")[:1]
    buckets = sum(len(t.resources("AWS::S3::Bucket")) for t in stacks.values())
    image = ami_size()
    return Structure(
        gpu_instance_type=str(main.params["GpuInstanceType"]),
        root_gib=int(gpu.value(ebs["VolumeSize"])), root_iops=int(gpu.value(ebs.get("Iops", 3000))),
        root_mibps=int(gpu.value(ebs.get("Throughput", 125))),
        gpu_public_ipv4=bool(gpu.value(launch["NetworkInterfaces"][0].get("AssociatePublicIpAddress", False))),
        nat_gateways=len(network.resources("AWS::EC2::NatGateway")),
        nlb=bool(gpu.resources("AWS::ElasticLoadBalancingV2::LoadBalancer")),
        interface_endpoints=services,
        endpoint_azs=max((len(r["Properties"]["SubnetIds"]) for r in endpoints), default=1),
        redis="node" if nodes else "serverless",
        redis_node_type=str(nodes[0]["Properties"]["CacheNodeType"]) if nodes else "",
        standard_alarms=len(ops.resources("AWS::CloudWatch::Alarm")),
        composite_alarms=len(ops.resources("AWS::CloudWatch::CompositeAlarm")),
        config_rules=len(ops.resources("AWS::Config::ConfigRule")),
        config_periodic_rules=_periodic_rules(ops),
        dlm_days=int(dlm["Properties"]["PolicyDetails"]["Schedules"][0]["RetainRule"]["Count"]),
        buckets=buckets,
        amis_kept=_images_kept(pipeline),
        builder_instance_type=str(pipeline.params["BakeInstanceType"]),
        bake_trigger=_bake_trigger(pipeline),
        cost_poll_hours=_rate_hours(str(main.params["CostPollSchedule"])),
        dr_tests_per_month=sum(_cron_per_month(r["Properties"]["ScheduleExpression"]) for r in dr_rules),
        log_retention_days=int(router_logs["Properties"].get("RetentionInDays", 0)),
        ami_gib=image.top_gib, ami_gib_low=image.low_gib,
        source={
            "ami_gib": image.top_source,
            "gpu_instance_type": "main.yaml GpuInstanceType default",
            "root": "gpu.yaml LaunchTemplate BlockDeviceMappings",
            "amis_kept": "pipeline.yaml deploy stage: prune --keep KEEP_IMAGES + current + previous",
            "builder": "pipeline.yaml BakeInstanceType default",
            "bake_trigger": "pipeline.yaml Pipeline Triggers",
            "cost_poll": "main.yaml CostPollSchedule default",
            "dr": "ops.yaml DrTestSchedule (EnableDrTest default)",
            "dlm": "ops.yaml DLM RetainRule",
            "alarms": "ops.yaml AWS::CloudWatch::Alarm / CompositeAlarm",
            "logs": "api.yaml router log group RetentionInDays",
        })
