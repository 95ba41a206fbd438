"""`tl-fif cost estimate`: the arithmetic against a bill computed by hand, the goal verdict, the command line."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from app import cli
from app.cli import cost as cost_cli
from app.cli import cost_estimate
from app.cli.cost_estimate import PROFILES, Usage, estimate, format_estimate
from tlfif_common import names, prices

# The eu-central-1 prices of the hand computation below, pinned here so that updating prices.json does not
# silently change what was checked by hand (the key is the price table's key, the value USD per its unit).
PINNED_USD = {
    "ec2.g4dn.xlarge": 0.658, "ec2.c6i.large": 0.097, "ec2.m6i.large": 0.115,
    "ec2.g4dn.2xlarge": 0.94, "ec2.g5.xlarge": 1.258,
    "ebs.gp3.storage": 0.0952, "ebs.gp3.iops": 0.006, "ebs.gp3.throughput": 0.048, "ebs.snapshot": 0.054,
    "vpc.public_ipv4": 0.005, "vpc.nat_gateway.hour": 0.052, "vpc.nat_gateway.gb": 0.052,
    "vpc.interface_endpoint.hour": 0.012, "vpc.interface_endpoint.gb": 0.01, "elb.nlb.hour": 0.027,
    "elasticache.cache.t4g.small": 0.036, "elasticache.serverless_valkey.storage": 0.092,
    "elasticache.serverless_valkey.ecpu": 0.00253,
    "cloudwatch.metric": 0.30, "cloudwatch.api_request": 0.01, "cloudwatch.alarm.standard": 0.10,
    "cloudwatch.alarm.composite": 0.50, "cloudwatch.logs.ingest": 0.63,
    "cost_explorer.api_request": 0.01, "config.item": 0.003, "config.rule_evaluation": 0.001,
    "apigw.http.request": 1.20, "lambda.request": 0.20, "lambda.gb_second": 0.0000166667,
    "s3.storage": 0.0245, "s3.put": 0.0054, "s3.get": 0.00043, "dynamodb.write_request": 0.7625,
    "codebuild.general1_small": 0.006, "codepipeline.v2.action_minute": 0.002,
}


def pinned_table() -> prices.PriceTable:
    real = prices.load().data
    entry = {"date": "2026-11-26", "basis": "aws", "text": "pinned for the hand computation"}
    aws = {key: {**real["aws"][key], "regions": {"eu-central-1": {"usd": usd, **entry}}}
           for key, usd in PINNED_USD.items()}
    assert set(aws) == set(real["aws"]), "a new price in prices.json: pin it here and in the hand computation"
    return prices.PriceTable({**real, "aws": aws})


def test_lean_bill_matches_the_hand_computation():
    # Default usage: 30 sessions of 10 min use, 5 min idle, 90 s boot; 0.86 EUR per USD; 730 h per month.
    # The structure comes from the templates (cost_inputs): 30 GiB root, 2 images kept, each priced at the top of
    # its size range (the 30 GiB volume ami.json bakes on, as the base image's size has no known top), a bake per
    # release tag on a g4dn.xlarge builder, the cost reporter every 24 h, no periodic Config rule, one DR test a
    # month.
    # Each line is rounded to the cent; the total is the sum of the rounded lines.
    #
    # GPU            30 × (90 + 600 + 300) s = 29,700 s = 8.25 h × $0.658 = $5.4285        × 0.86 = €4.6685 → 4.67
    # EBS root       30 GiB × $0.0952 = $2.856 (3000 IOPS/125 MiB/s baseline, nothing extra) → €2.4562 → 2.46
    # AMI snapshots  (0 kept + current + previous) = 2 × 30 GiB × $0.054 = $3.24             → €2.7864 → 2.79
    # DLM snapshots  incremental on the image: 7 × 0.25 GiB = 1.75 GiB × $0.054 = $0.0945    → €0.0813 → 0.08
    # API requests   per session: 10 /infer + 90 s / 2 s /ping while booting (45) + 900 s / 15 s /ping (60)
    #                + 990 s / 30 s /cost (33) = 148; × 30 = 4,440
    # Valkey         0.1 GB × 730 h × $0.092 = $6.716; ECPUs (29,700 s × 2 + 4,440 req × 5) = 81,600
    #                = 0.0816 M × $0.00253 = $0.000206; $6.716206                             → €5.7759 → 5.78
    # Public IPv4    GPU only while running: 8.25 h × $0.005 = $0.04125                      → €0.0355 → 0.04
    # CW metrics     metric-hours: 10 metrics × 30 sessions × (1 + 990/3600 = 1.275 clock hours) = 382.5,
    #                + CurrentSpendEUR 730/24 = 30.417 → 412.917 / 730 = 0.565639 metric-months × $0.30
    #                = $0.169692; PutMetricData 29,700/10 + 4,440 + 30.417 = 7,440.417 × $0.01/1000
    #                = $0.074404; $0.244096                                                   → €0.2099 → 0.21
    # CW alarms      6 × $0.10 + 1 × $0.50 = $1.10                                            → €0.9460 → 0.95
    # CW Logs        30 × 0.5 MB = 15 MB = 0.014648 GB × $0.63 = $0.009229                    → €0.0079 → 0.01
    # Cost Explorer  730/24 = 30.417 requests × $0.01 = $0.304167                             → €0.2616 → 0.26
    # AWS Config     items 30 × 4 + 30 = 150 × $0.003 = $0.45; evaluations 0 periodic rules + 30 sessions × 2
    #                + 30 baseline = 90 × $0.001 = $0.09; $0.54                               → €0.4644 → 0.46
    # API Gateway    4,440 requests × $1.20/M = $0.005328                                     → €0.0046 → 0.00
    # Lambda         4,440 × 2 (router + queue function) + 30.417 = 8,910.417 invocations × $0.20/M
    #                = $0.001782; 8,910.417 × 0.2 s × 0.5 GB = 891.042 GB-s × $0.0000166667 = $0.014851
    #                = $0.016633                                                              → €0.0143 → 0.01
    # S3             (2.2 + 0.1) GB × $0.0245 = $0.05635; PUT 30 × 10 × (4 s × 4 + 1) = 5,100 × $0.0054/1000
    #                = $0.02754; GET 10,200 × $0.00043/1000 = $0.004386; $0.088276            → €0.0759 → 0.08
    # DynamoDB       300 writes × $0.7625/M = $0.000229                                       → €0.0002 → 0.00
    # Image bake     1 release × (40 min × $0.006 + 0.5 h g4dn.xlarge × $0.658 + 45 min × $0.002)
    #                = $0.24 + $0.329 + $0.09 = $0.659                                        → €0.5667 → 0.57
    # DR test        1 × (90 + 600) s = 0.191667 h × $0.658 = $0.126117                       → €0.1085 → 0.11
    #
    # Total 4.67 + 2.46 + 2.79 + 0.08 + 5.78 + 0.04 + 0.21 + 0.95 + 0.01 + 0.26 + 0.46 + 0.00 + 0.01 + 0.08
    #       + 0.00 + 0.57 + 0.11 = €18.48
    hand = {
        "GPU g4dn.xlarge": 4.67, "EBS root volume": 2.46, "AMI snapshots": 2.79, "DLM daily snapshots": 0.08,
        "Valkey serverless": 5.78, "Public IPv4": 0.04, "CloudWatch metrics": 0.21, "CloudWatch alarms": 0.95,
        "CloudWatch Logs": 0.01, "Cost Explorer": 0.26, "AWS Config": 0.46, "API Gateway (HTTP API)": 0.00,
        "Lambda": 0.01, "S3": 0.08, "DynamoDB": 0.00, "Image bake (CI/CD)": 0.57, "DR test": 0.11,
    }
    result = estimate("lean", Usage(), "eu-central-1", pinned_table(), 0.86)
    assert {line.component: result.eur(line) for line in result.lines} == hand
    assert result.total_eur == 18.48
    # The unrounded dollar figures too, where rounding to the cent would hide a slip.
    usd = {line.component: line.usd for line in result.lines}
    assert usd["GPU g4dn.xlarge"] == pytest.approx(5.4285)
    assert usd["Valkey serverless"] == pytest.approx(6.716206, abs=1e-6)
    assert usd["CloudWatch metrics"] == pytest.approx(0.244096, abs=1e-6)
    assert usd["AWS Config"] == pytest.approx(0.54, abs=1e-6)
    assert usd["Lambda"] == pytest.approx(0.016633, abs=1e-6)
    assert usd["S3"] == pytest.approx(0.088276, abs=1e-6)
    assert usd["Image bake (CI/CD)"] == pytest.approx(0.659, abs=1e-6)
    assert usd["DR test"] == pytest.approx(0.126117, abs=1e-6)
    assert format_estimate(result)[-1] == "Total: €18.48 / month"


def test_full_profile_adds_the_always_on_pieces_by_hand():
    result = estimate("full", Usage(), "eu-central-1", pinned_table(), 0.86)
    eur = {line.component: result.eur(line) for line in result.lines}
    # EBS: 100 GiB × $0.0952 + (250 − 125) MiB/s × $0.048 = $9.52 + $6.00 = $15.52 × 0.86 = €13.3472 → 13.35
    assert eur["EBS root volume"] == 13.35
    # Redis node: 730 h × $0.036 = $26.28 → €22.6008 → 22.60
    assert eur["Redis cache.t4g.small"] == 22.60
    # NAT: 730 h × $0.052 + 0.5 GB × $0.052 = $37.96 + $0.026 = $37.986 → €32.668 → 32.67
    assert eur["NAT gateway"] == 32.67
    # NLB: 730 × $0.027 = $19.71 → €16.9506 → 16.95
    assert eur["NLB (internal)"] == 16.95
    # Endpoints: 6 × 1 AZ × 730 h × $0.012 + 0.5 GB × $0.01 = $52.56 + $0.005 = $52.565 → €45.2059 → 45.21
    assert eur["Interface endpoints"] == 45.21
    # Public IPv4: the NAT's Elastic IP 730 h × $0.005 = $3.65 → €3.139 → 3.14 (the GPU has no public IP)
    assert eur["Public IPv4"] == 3.14
    # Full keeps 5 images besides the current and previous (RQL 7.3): 7 × 30 GiB × $0.054 = $11.34 → €9.7524 → 9.75
    assert eur["AMI snapshots"] == 9.75
    assert "Valkey serverless" not in eur
    assert result.total_eur > 100


def test_gpu_time_counts_boot_idle_tail_and_the_60_second_minimum():
    usage = Usage(sessions=4, minutes=2, idle=1, boot_seconds=90)
    assert usage.session_seconds == 90 + 120 + 60
    assert usage.gpu_hours == pytest.approx(4 * 270 / 3600)
    assert Usage(boot_seconds=20, minutes=0, idle=0.5).session_seconds == 60  # billed minimum per start
    line = estimate("lean", usage, "eu-central-1", pinned_table(), 1.0).lines[0]
    assert line.usd == pytest.approx(4 * 270 / 3600 * 0.658)


def test_verdict_names_what_prevents_the_goal():
    table = pinned_table()
    full = estimate("full", Usage(), "eu-central-1", table, 0.86)
    blockers = [line.component for line in full.blockers(20.0)]
    assert blockers[:4] == ["Interface endpoints", "NAT gateway", "Redis cache.t4g.small", "NLB (internal)"]
    assert full.total_eur - sum(full.eur(line) for line in full.blockers(20.0)) <= 20.0
    verdict = format_estimate(full)[-3]
    assert verdict.startswith("Goal ≤ €20.00 / month: missed by €") and "Interface endpoints €45.21" in verdict
    lean = estimate("lean", Usage(), "eu-central-1", table, 0.86)
    assert lean.blockers(20.0) == []
    assert format_estimate(lean)[-3] == "Goal ≤ €20.00 / month: met (€1.52 to spare)"
    # Heavy use: the GPU itself is what breaks the lean budget, and the verdict says so.
    heavy = estimate("lean", Usage(sessions=120, minutes=30), "eu-central-1", table, 0.86)
    assert heavy.blockers(20.0)[0].component == "GPU g4dn.xlarge"


def test_the_real_table_meets_the_goal_with_lean_only():
    table = prices.load()
    lean = estimate("lean", Usage(), names.DEFAULT_REGION, table, table.table_usd_to_eur)
    full = estimate("full", Usage(), names.DEFAULT_REGION, table, table.table_usd_to_eur)
    assert lean.total_eur <= cost_estimate.GOAL_EUR - cost_estimate.GOAL_MARGIN_EUR < full.total_eur


def test_profiles_mirror_the_issue():
    full, lean = PROFILES["full"], PROFILES["lean"]
    assert (full.root_gib, full.root_mibps, full.amis_kept, full.redis) == (100, 250, 7, "node")
    assert (lean.amis_kept, lean.bake_trigger, lean.builder_instance_type) == (2, "tag", "g4dn.xlarge")
    assert full.config_periodic_rules == lean.config_periodic_rules == 0  # "no public S3" is change-triggered
    assert full.nat_gateways == 1 and full.nlb and full.interface_endpoints and not full.gpu_public_ipv4
    assert lean.nat_gateways == 0 and not lean.nlb and lean.interface_endpoints == () and lean.gpu_public_ipv4
    assert lean.redis == "serverless"


def run(capsys, argv):
    code = cost_cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_prints_one_line_per_component_and_the_total(capsys, monkeypatch):
    monkeypatch.delenv(names.ENV_USD_TO_EUR, raising=False)
    code, out, err = run(capsys, ["estimate"])
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert re.fullmatch(r"Total: €\d+\.\d{2} / month", lines[-1])
    assert "profile lean, region eu-central-1" in lines[0]
    components = [line for line in lines if re.match(r"  \S.*€\d+\.\d{2}  ", line)]
    assert len(components) == len(estimate("lean", Usage(), "eu-central-1", prices.load(), 0.86).lines)
    # Through the tl-fif command, with every option.
    assert cli.main(["cost", "estimate", "--profile", "full", "--sessions", "10", "--minutes", "5", "--idle", "3",
                     "--region", "us-east-1"]) == 0
    out = capsys.readouterr().out
    assert "profile full, region us-east-1" in out and "10 × 570 s" in out and "$0.526/h" in out


def test_cli_rejects_an_unknown_region_and_bad_values(capsys, monkeypatch):
    code, out, err = run(capsys, ["estimate", "--region", "eu-mars-1"])
    assert code == 2 and out == ""
    assert "no prices for region 'eu-mars-1'; the price table has: eu-central-1, us-east-1" in err
    assert run(capsys, ["estimate", "--sessions", "-1"])[0] == 2
    assert run(capsys, ["estimate", "--idle", "0"])[0] == 2
    assert run(capsys, ["estimate", "--profile", "huge"])[0] == 2
    assert run(capsys, [])[0] == 2
    assert run(capsys, ["estimate", "--help"])[0] == 0
    monkeypatch.setenv(names.ENV_USD_TO_EUR, "lots")
    code, _, err = run(capsys, ["estimate"])
    assert code == 2 and names.ENV_USD_TO_EUR in err


# ---------------------------------------------------------------- the profiles describe what the templates build
CFN = Path(__file__).resolve().parents[1] / "cloud" / "cfn"


def _resources(template: str) -> dict:
    from cfnlint.decode import cfn_yaml

    return cfn_yaml.load(str(CFN / f"{template}.yaml"))["Resources"]


def _in(profile: str, resource: dict) -> bool:
    return {"IsFull": profile == "full", "IsLean": profile == "lean"}.get(resource.get("Condition"), True)


def _resolve(value, profile: str):
    if isinstance(value, dict) and "Fn::If" in value:
        condition, if_true, if_false = value["Fn::If"]
        return _resolve(if_true if (condition == "IsLean") == (profile == "lean") else if_false, profile)
    return value


def _of_type(template: str, kind: str, profile: str) -> list[dict]:
    return [r for r in _resources(template).values() if r["Type"] == kind and _in(profile, r)]


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_profile_inventory_matches_the_templates(name):
    profile = PROFILES[name]
    (template,) = _of_type("gpu", "AWS::EC2::LaunchTemplate", name)
    data = template["Properties"]["LaunchTemplateData"]
    ebs = data["BlockDeviceMappings"][0]["Ebs"]
    root = tuple(_resolve(ebs.get(key), name) for key in ("VolumeSize", "Iops", "Throughput"))
    assert root == (profile.root_gib, profile.root_iops, profile.root_mibps), (
        f"{name}: cloud/cfn/gpu.yaml builds a root volume of {root} (GiB, IOPS, MiB/s) but the cost estimate "
        f"assumes {(profile.root_gib, profile.root_iops, profile.root_mibps)}: change one of them")
    public_ip = _resolve(data["NetworkInterfaces"][0].get("AssociatePublicIpAddress", False), name)
    assert bool(public_ip) == profile.gpu_public_ipv4

    endpoints = [r for r in _of_type("network", "AWS::EC2::VPCEndpoint", name)
                 if r["Properties"].get("VpcEndpointType") == "Interface"]
    services = sorted(str(r["Properties"]["ServiceName"]).rsplit(".", 1)[-1].rstrip("}'\"") for r in endpoints)
    assert services == sorted(profile.interface_endpoints)
    assert all(len(r["Properties"]["SubnetIds"]) == profile.endpoint_azs for r in endpoints)
    assert len(_of_type("network", "AWS::EC2::NatGateway", name)) == profile.nat_gateways
    assert bool(_of_type("gpu", "AWS::ElasticLoadBalancingV2::LoadBalancer", name)) == profile.nlb

    if profile.redis == "node":
        (node,) = _of_type("data", "AWS::ElastiCache::ReplicationGroup", name)
        assert node["Properties"]["CacheNodeType"] == profile.redis_node_type
        assert node["Properties"].get("NumCacheClusters", 1) == 1
    else:
        (cache,) = _of_type("data", "AWS::ElastiCache::ServerlessCache", name)
        assert cache["Properties"]["Engine"] == "valkey"  # 100 MB minimum; Redis OSS serverless meters 1 GB

    assert len(_of_type("ops", "AWS::CloudWatch::Alarm", name)) == profile.standard_alarms
    assert len(_of_type("ops", "AWS::CloudWatch::CompositeAlarm", name)) == profile.composite_alarms
    assert len(_of_type("ops", "AWS::Config::ConfigRule", name)) == profile.config_rules
    (dlm,) = _of_type("ops", "AWS::DLM::LifecyclePolicy", name)
    assert dlm["Properties"]["PolicyDetails"]["Schedules"][0]["RetainRule"]["Count"] == profile.dlm_days
    buckets = sum(len(_of_type(t.stem, "AWS::S3::Bucket", name)) for t in CFN.glob("*.yaml"))
    assert buckets == profile.buckets


def test_the_estimate_follows_a_changed_template_default(tmp_path, monkeypatch):
    import shutil

    from app.cli import cost_inputs

    for path in CFN.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    before = estimate(cost_estimate.profile_from_templates("lean"), Usage(), "eu-central-1", pinned_table(), 1.0)

    def edit(name: str, old: str, new: str) -> None:
        text = (tmp_path / name).read_text()
        assert old in text, f"{name} no longer has {old!r}"
        (tmp_path / name).write_text(text.replace(old, new, 1))

    edit("gpu.yaml", "VolumeSize: !If [IsLean, 30, 100]", "VolumeSize: !If [IsLean, 40, 100]")
    edit("main.yaml", "Default: rate(24 hours)", "Default: rate(3 hours)")
    edit("pipeline.yaml", 'KEEP_IMAGES, Value: !If [IsLean, "0", "5"]', 'KEEP_IMAGES, Value: !If [IsLean, "4", "5"]')
    edit("pipeline.yaml", "      Triggers:\n", "      NoTriggers:\n")  # back to a bake on every push
    edit("ops.yaml", "cron(0 4 1 * ? *)", "cron(0 4 1 */3 ? *)")
    monkeypatch.setattr(cost_inputs, "CFN_DIR", tmp_path)
    after = estimate(cost_estimate.profile_from_templates("lean"), Usage(), "eu-central-1", pinned_table(), 1.0)
    b, a = ({line.component: line for line in e.lines} for e in (before, after))
    assert "30 GiB gp3" in b["EBS root volume"].detail and "40 GiB gp3" in a["EBS root volume"].detail
    assert a["EBS root volume"].usd == pytest.approx(40 * 0.0952)
    assert a["Cost Explorer"].usd == pytest.approx(730 / 3 * 0.01)
    assert a["AMI snapshots"].usd == pytest.approx((4 + 2) * 30 * 0.054)
    assert "release tag" in b["Image bake (CI/CD)"].detail and "g4dn.xlarge builder" in b["Image bake (CI/CD)"].detail
    assert "every push, 20 pushes" in a["Image bake (CI/CD)"].detail
    assert a["Image bake (CI/CD)"].usd == pytest.approx(20 * b["Image bake (CI/CD)"].usd)
    assert a["DR test"].usd == pytest.approx(b["DR test"].usd / 3)
