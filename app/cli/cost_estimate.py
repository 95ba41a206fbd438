"""The monthly AWS bill of a TL-FIF deployment, one line per component (`tl-fif cost estimate`). Pure functions.

Everything comes from two places: THE price table (`tlfif_common/prices.json`, each price with its region, date
and source) and the inventory of each cost profile below, which mirrors what the CloudFormation templates build:

  full  the RQL as written: NAT gateway + Elastic IP, internal NLB, six interface endpoints in one AZ, a Redis
        node, a 100 GiB gp3 root volume with 250 MiB/s provisioned (RQL 5.1).
  lean  no NAT, no NLB, no interface endpoints; the GPU in a public subnet with a public IPv4 only while it runs;
        ElastiCache Serverless for Valkey (100 MB minimum); a 30 GiB gp3 root volume at the free baseline
        performance (3,000 IOPS, 125 MiB/s).

Both profiles keep everything else: the current and previous AMI (full: five more, RQL 7.3; lean: none more),
each priced at the top of its size range (cloud/gpu/image/ami-components.json), the DLM daily snapshot (7 days),
six CloudWatch alarms and the idle-miss composite, the cost reporter's Cost Explorer requests, five AWS Config
rules, API Gateway, Lambda, S3 (six buckets), DynamoDB and a monthly image bake. tests/test_cost_estimate.py
checks these numbers against the CloudFormation templates in cloud/cfn/.

GpuMode `scale` (cloud/cfn/scale.yaml) bills the same GPU time for the same usage; it differs in three small lines:
the root volume exists only while a node runs (a node is terminated, not stopped), one more alarm (the PendingJobs
backlog alarm) and one more metric while used (PendingJobs). The Auto Scaling group itself is free.

GPU time per session = max(60 s, boot + use + idle): EC2 bills per second with a 60 s minimum per start, the
~90 s cold start is billed, and the watcher only stops the instance after the idle timeout.

Prices are list prices without free tiers (an account may already use them up) and without VAT. Each line is
rounded to the cent and the total is the sum of the printed lines, so the printout adds up.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from app.cli import cost_inputs
from app.timings import Timings
from tlfif_common import names
from tlfif_common.jobs import IDLE_MAX, IDLE_MIN
from tlfif_common.prices import PriceTable

_APP = Timings()  # the app's own poll intervals while it is open

GOAL_EUR = 20.0  # RQL acceptance: <= EUR 20/month for 30 sessions
GOAL_MARGIN_EUR = 1.50  # what the lean profile keeps to spare under the goal (room for estimates that run short)
VAT_EXAMPLE = 0.19  # Germany; AWS charges VAT to accounts without a VAT number
EBS_BASELINE_IOPS = 3000
EBS_BASELINE_MIBPS = 125


@dataclass(frozen=True)
class Usage:
    """How the deployment is used in a month. The CLI sets the first three; the rest are stated assumptions."""
    sessions: int = 30
    minutes: float = 10.0  # use per session
    idle: float = 5.0  # idle timeout (RQL 1.1.4): the GPU runs this long after the last answer
    boot_seconds: float = names.BOOT_ETA_SECONDS  # cold start, billed
    min_billed_seconds: float = 60.0  # EC2 per-second billing minimum per start
    answers_per_session: int = 10  # one POST /infer each
    ping_interval_s: float = _APP.ping_interval_s  # GET /ping while the app is open (app/timings.py)
    ping_starting_s: float = _APP.ping_starting_s  # GET /ping while the GPU boots
    cost_interval_s: float = _APP.cost_interval_s  # GET /cost while the app is open
    pushes_per_month: float = 20.0  # commits pushed to the pipeline's branch (a bake each when it bakes on push)
    releases_per_month: float = 1.0  # release tags (a bake each when it bakes on a tag)
    generating_seconds_per_answer: float = 4.0
    result_writes_per_second: float = 4.0  # the watcher rewrites the result every 250 ms while generating
    result_reads_per_write: float = 2.0  # the app polls the presigned URL
    log_mb_per_session: float = 0.5  # API access logs, router and watcher logs
    redis_commands_per_gpu_second: float = 2.0  # watcher BLMOVE (1 s timeout) + heartbeats
    redis_commands_per_request: float = 5.0
    lambda_seconds_per_invoke: float = 0.2
    lambda_memory_gb: float = 0.5  # RQL 3: 512 MB
    dr_test_seconds: float = names.BOOT_ETA_SECONDS + 600.0  # boot from the restored image + the self-test job

    @property
    def session_seconds(self) -> float:
        return max(self.min_billed_seconds, self.boot_seconds + 60 * (self.minutes + self.idle))

    @property
    def gpu_seconds(self) -> float:
        return self.sessions * self.session_seconds

    @property
    def gpu_hours(self) -> float:
        return self.gpu_seconds / 3600

    @property
    def api_requests_per_session(self) -> float:
        """/infer per answer, /ping every ping_starting_s while booting then every ping_interval_s, /cost every
        cost_interval_s: the app is taken to be open for the GPU session (boot + use + idle)."""
        open_s = self.session_seconds
        return (self.answers_per_session + self.boot_seconds / self.ping_starting_s
                + (open_s - self.boot_seconds) / self.ping_interval_s + open_s / self.cost_interval_s)

    @property
    def api_requests(self) -> float:
        return self.sessions * self.api_requests_per_session

    def check(self) -> None:
        if self.sessions < 0:
            raise ValueError(f"sessions must be 0 or more, got {self.sessions}")
        if self.minutes < 0:
            raise ValueError(f"minutes must be 0 or more, got {self.minutes}")
        if not IDLE_MIN <= self.idle <= IDLE_MAX:
            raise ValueError(f"idle must be from {IDLE_MIN} to {IDLE_MAX} minutes, got {self.idle:g}")


@dataclass(frozen=True)
class Profile:
    """What one cost profile deploys: the structure from the templates (`cost_inputs.read`), sizes and counts of
    what the deployment holds and does per session below (assumptions, each with its reason)."""
    name: str
    structure: cost_inputs.Structure
    lambda_invokes_per_request: int  # lean: the router plus the in-VPC queue function
    config_items_per_session: int  # Config records the instance (and in lean its ENI) on start and stop
    dlm_changed_gib_per_day: float = 0.25
    valkey_min_gb: float = 0.1
    nat_gb: float = 0.5
    endpoint_gb: float = 0.5
    metrics_per_session: int = 10  # router and watcher metrics, sent only while a session runs
    always_metrics: int = 1  # CurrentSpendEUR, sent once per cost-reporter run
    gpu_metric_period_seconds: float = 10.0  # RQL 6: GPU metrics every 10 s
    config_evaluations_per_session: int = 2  # required-tags on the instance's two recorded state changes
    config_items_baseline: int = 30  # deploys, Lambda versions, compliance changes (each evaluated once)
    models_gb: float = 2.2  # TinyLlama-1.1B-Chat fp16 weights in the models bucket
    logs_bucket_gb: float = 0.1  # CloudTrail and Config deliveries
    codebuild_minutes_per_bake: float = 40.0
    packer_hours_per_bake: float = 0.5
    pipeline_action_minutes_per_bake: float = 45.0

    def __getattr__(self, name: str):  # the structural numbers: profile.root_gib is structure.root_gib
        structure = self.__dict__.get("structure")
        if structure is not None and name in cost_inputs.Structure.__dataclass_fields__:
            return vars(structure)[name]
        raise AttributeError(name)


def profile_from_templates(name: str, values: dict | None = None) -> Profile:
    structure = cost_inputs.read(name, values)
    lean = name == "lean"
    return Profile(name=name, structure=structure, lambda_invokes_per_request=2 if structure.redis == "serverless"
                   and lean else 1, config_items_per_session=4 if structure.gpu_public_ipv4 else 2)


PROFILES: dict[str, Profile] = {name: profile_from_templates(name) for name in ("full", "lean")}
DEFAULT_PROFILE = "lean"
GPU_MODES = ("single", "scale")
SCALE_ALARMS = 1  # scale.yaml BacklogAlarm
SCALE_METRICS_PER_SESSION = 1  # PendingJobs, published by the router while it is used


def _n(value: float) -> str:
    """A price or quantity as people write it: 0.0000166667, 0.658, 1.2 (never 1.66667e-05)."""
    text = f"{value:.10f}".rstrip("0").rstrip(".")
    return text or "0"


@dataclass(frozen=True)
class Line:
    component: str
    usd: float
    detail: str


@dataclass(frozen=True)
class Estimate:
    profile: Profile
    region: str
    usage: Usage
    usd_to_eur: float
    prices_date: str
    lines: list[Line] = field(default_factory=list)

    def eur(self, line: Line) -> float:
        """A line in euros, rounded to the cent (what is printed, and what the total adds up)."""
        return round(line.usd * self.usd_to_eur + 1e-9, 2)

    @property
    def total_eur(self) -> float:
        return round(sum(self.eur(line) for line in self.lines), 2)

    def blockers(self, goal_eur: float = GOAL_EUR) -> list[Line]:
        """The fewest largest components without which the total would meet the goal ([] when it is met)."""
        remaining = self.total_eur
        found: list[Line] = []
        for line in sorted(self.lines, key=self.eur, reverse=True):
            if remaining <= goal_eur + 1e-9:
                break
            found.append(line)
            remaining = round(remaining - self.eur(line), 2)
        return found


def estimate(profile: Profile | str, usage: Usage, region: str, table: PriceTable, usd_to_eur: float,
             gpu_mode: str = "single") -> Estimate:
    """The month's bill. Raises UnknownRegion (a LookupError) for a region the price table lacks."""
    if gpu_mode not in GPU_MODES:
        raise ValueError(f"unknown GPU mode {gpu_mode!r}; choose one of: {', '.join(GPU_MODES)}")
    scale = gpu_mode == "scale"
    if isinstance(profile, str):
        if profile not in PROFILES:
            raise ValueError(f"unknown profile {profile!r}; choose one of: {', '.join(PROFILES)}")
        profile = PROFILES[profile]
    usage.check()
    table.check_region(region)
    hours = table.hours_per_month
    days = hours / 24

    def p(key: str) -> float:
        return table.usd(key, region)

    lines: list[Line] = []
    u, pr = usage, profile

    gpu_price = table.ec2_hourly_usd(pr.gpu_instance_type, region)
    lines.append(Line(
        f"GPU {pr.gpu_instance_type}", u.gpu_hours * gpu_price,
        f"{u.sessions} × {u.session_seconds:g} s (max(60 s, {u.boot_seconds:g} s boot + {60 * u.minutes:g} s use "
        f"+ {60 * u.idle:g} s idle)) = {u.gpu_hours:.2f} h × ${_n(gpu_price)}/h"))

    extra_iops = max(0, pr.root_iops - EBS_BASELINE_IOPS)
    extra_mibps = max(0, pr.root_mibps - EBS_BASELINE_MIBPS)
    ebs = pr.root_gib * p("ebs.gp3.storage") + extra_iops * p("ebs.gp3.iops") + extra_mibps * p("ebs.gp3.throughput")
    if scale:  # each node's volume is deleted with the node: billed for the node-hours only
        ebs_share = u.gpu_hours / hours
        lines.append(Line(
            "EBS root volumes", ebs * ebs_share,
            f"{pr.root_gib} GiB gp3 per node, only while a node runs: {u.gpu_hours:.2f} h of {hours:g} h × "
            f"${_n(ebs)}/month"))
    else:
        lines.append(Line(
            "EBS root volume", ebs,
            f"{pr.root_gib} GiB gp3 × ${_n(p('ebs.gp3.storage'))}/GB-mo"
            + (f" + {extra_iops} IOPS × ${_n(p('ebs.gp3.iops'))}" if extra_iops else "")
            + (f" + {extra_mibps} MiB/s above the 125 baseline × ${_n(p('ebs.gp3.throughput'))}" if extra_mibps else
               ", baseline 3000 IOPS / 125 MiB/s included")
            + "; billed while stopped too"))

    snap = p("ebs.snapshot")
    lines.append(Line("AMI snapshots", pr.amis_kept * pr.ami_gib * snap,
                      f"{pr.amis_kept} AMI versions kept ({pr.source['amis_kept']}) × {pr.ami_gib:g} GiB (the top "
                      f"of {pr.ami_gib_low:.1f}–{pr.ami_gib:g} GiB: {pr.source['ami_gib']}) × ${_n(snap)}/GB-mo"))
    # The node's root volume is made from the current image's snapshot (kept, same account and key), so each daily
    # snapshot holds only the blocks changed since that snapshot (EBS: a snapshot of a volume created from snapshot A
    # is incremental on A); the image's blocks are billed once, above.
    dlm_gib = pr.dlm_days * pr.dlm_changed_gib_per_day
    lines.append(Line("DLM daily snapshots", dlm_gib * snap,
                      f"{pr.dlm_days}-day chain ({pr.source['dlm']}), incremental on the image's snapshot: "
                      f"{pr.dlm_days} × {pr.dlm_changed_gib_per_day:g} GiB changed = {dlm_gib:g} GiB × "
                      f"${_n(snap)}/GB-mo"))

    if pr.redis == "node":
        node = p(f"elasticache.{pr.redis_node_type}")
        lines.append(Line(f"Redis {pr.redis_node_type}", hours * node,
                          f"1 node × {hours:g} h × ${_n(node)}/h, always on"))
    else:
        storage = p("elasticache.serverless_valkey.storage")
        ecpu = p("elasticache.serverless_valkey.ecpu")
        ecpus_m = (u.gpu_seconds * u.redis_commands_per_gpu_second
                   + u.api_requests * u.redis_commands_per_request) / 1e6
        lines.append(Line("Valkey serverless", pr.valkey_min_gb * hours * storage + ecpus_m * ecpu,
                          f"{pr.valkey_min_gb:g} GB minimum × {hours:g} h × ${_n(storage)}/GB-h + "
                          f"{ecpus_m:.3f} M ECPUs × ${_n(ecpu)}/M"))

    if pr.nat_gateways:
        nat_h, nat_gb = p("vpc.nat_gateway.hour"), p("vpc.nat_gateway.gb")
        lines.append(Line("NAT gateway", pr.nat_gateways * (hours * nat_h) + pr.nat_gb * nat_gb,
                          f"{pr.nat_gateways} × {hours:g} h × ${_n(nat_h)}/h + {pr.nat_gb:g} GB × ${_n(nat_gb)}/GB"))
    if pr.nlb:
        nlb = p("elb.nlb.hour")
        lines.append(Line("NLB (internal)", hours * nlb, f"{hours:g} h × ${_n(nlb)}/h; NLCU ≈ 0 at this traffic"))
    if pr.interface_endpoints:
        ep_h, ep_gb = p("vpc.interface_endpoint.hour"), p("vpc.interface_endpoint.gb")
        count = len(pr.interface_endpoints) * pr.endpoint_azs
        lines.append(Line("Interface endpoints", count * hours * ep_h + pr.endpoint_gb * ep_gb,
                          f"{count} ({', '.join(pr.interface_endpoints)}; {pr.endpoint_azs} AZ) × {hours:g} h × "
                          f"${_n(ep_h)}/h + {pr.endpoint_gb:g} GB × ${_n(ep_gb)}/GB"))

    ipv4 = p("vpc.public_ipv4")
    ip_hours = pr.nat_gateways * hours + (u.gpu_hours if pr.gpu_public_ipv4 else 0.0)
    ip_what = ([f"{pr.nat_gateways} NAT Elastic IP × {hours:g} h"] if pr.nat_gateways else []) + \
              ([f"GPU public IP while running {u.gpu_hours:.2f} h"] if pr.gpu_public_ipv4 else [])
    lines.append(Line("Public IPv4", ip_hours * ipv4,
                      f"{' + '.join(ip_what) or 'none'} × ${_n(ipv4)}/h"))

    polls = hours / pr.cost_poll_hours
    session_clock_hours = 1 + u.session_seconds / 3600  # clock hours a session touches, on average
    metrics_per_session = pr.metrics_per_session + (SCALE_METRICS_PER_SESSION if scale else 0)
    metric_hours = metrics_per_session * u.sessions * session_clock_hours + pr.always_metrics * polls
    metric_months = metric_hours / hours
    puts = u.gpu_seconds / pr.gpu_metric_period_seconds + u.api_requests + polls
    metric, api = p("cloudwatch.metric"), p("cloudwatch.api_request")
    lines.append(Line("CloudWatch metrics", metric_months * metric + puts / 1000 * api,
                      f"{metric_hours:.0f} metric-hours (sent only while used) = {metric_months:.2f} × "
                      f"${_n(metric)}/metric-mo + {puts:.0f} PutMetricData × ${_n(api)}/1000"))

    std, comp = p("cloudwatch.alarm.standard"), p("cloudwatch.alarm.composite")
    standard_alarms = pr.standard_alarms + (SCALE_ALARMS if scale else 0)
    lines.append(Line("CloudWatch alarms", standard_alarms * std + pr.composite_alarms * comp,
                      f"{standard_alarms} standard × ${_n(std)} + {pr.composite_alarms} composite × ${_n(comp)} "
                      f"({pr.source['alarms']})"))

    logs_gb = u.sessions * u.log_mb_per_session / 1024
    ingest = p("cloudwatch.logs.ingest")
    lines.append(Line("CloudWatch Logs", logs_gb * ingest,
                      f"{logs_gb * 1024:.1f} MB × ${_n(ingest)}/GB ingested; kept {pr.log_retention_days} days "
                      f"({pr.source['logs']}), storage < $0.01"))

    ce = p("cost_explorer.api_request")
    lines.append(Line("Cost Explorer", polls * ce,
                      f"1 GetCostAndUsage every {pr.cost_poll_hours:g} h ({pr.source['cost_poll']}) = {polls:.1f} "
                      f"requests × ${_n(ce)}"))

    items = u.sessions * pr.config_items_per_session + pr.config_items_baseline
    evaluations = (pr.config_periodic_rules * pr.buckets * days + u.sessions * pr.config_evaluations_per_session
                   + pr.config_items_baseline)
    ci, ev = p("config.item"), p("config.rule_evaluation")
    lines.append(Line("AWS Config", items * ci + evaluations * ev,
                      f"{items} configuration items × ${_n(ci)} + {evaluations:.0f} rule evaluations × ${_n(ev)} "
                      f"({pr.config_periodic_rules} periodic rules, ops.yaml)"))

    apigw = p("apigw.http.request")
    lines.append(Line("API Gateway (HTTP API)", u.api_requests / 1e6 * apigw,
                      f"{u.api_requests:.0f} requests × ${_n(apigw)}/M"))

    invokes = u.api_requests * pr.lambda_invokes_per_request + polls
    gb_seconds = invokes * u.lambda_seconds_per_invoke * u.lambda_memory_gb
    req, gbs = p("lambda.request"), p("lambda.gb_second")
    lines.append(Line("Lambda", invokes / 1e6 * req + gb_seconds * gbs,
                      f"{invokes:.0f} invocations × ${_n(req)}/M + {gb_seconds:.0f} GB-s × ${_n(gbs)}"))

    writes = u.sessions * u.answers_per_session * (u.generating_seconds_per_answer * u.result_writes_per_second + 1)
    reads = writes * u.result_reads_per_write
    stored_gb = pr.models_gb + pr.logs_bucket_gb
    s3_gb, s3_put, s3_get = p("s3.storage"), p("s3.put"), p("s3.get")
    lines.append(Line("S3", stored_gb * s3_gb + writes / 1000 * s3_put + reads / 1000 * s3_get,
                      f"{stored_gb:g} GB × ${_n(s3_gb)} + {writes:.0f} PUT × ${_n(s3_put)}/1000 + "
                      f"{reads:.0f} GET × ${_n(s3_get)}/1000"))

    ddb_writes = u.sessions * u.answers_per_session
    ddb = p("dynamodb.write_request")
    lines.append(Line("DynamoDB", ddb_writes / 1e6 * ddb, f"{ddb_writes} writes × ${_n(ddb)}/M (on demand)"))

    cb, pipe = p("codebuild.general1_small"), p("codepipeline.v2.action_minute")
    builder = table.ec2_hourly_usd(pr.builder_instance_type, region)
    bakes = {"push": u.pushes_per_month, "tag": u.releases_per_month, "manual": u.releases_per_month}[pr.bake_trigger]
    trigger = {"push": f"a bake on every push, {u.pushes_per_month:g} pushes", "tag":
               f"a bake per release tag, {u.releases_per_month:g} releases", "manual":
               f"a bake per manual start, {u.releases_per_month:g}"}[pr.bake_trigger]
    bake = (pr.codebuild_minutes_per_bake * cb + pr.packer_hours_per_bake * builder
            + pr.pipeline_action_minutes_per_bake * pipe)
    lines.append(Line("Image bake (CI/CD)", bakes * bake,
                      f"{trigger}/month ({pr.source['bake_trigger']}) × ({pr.codebuild_minutes_per_bake:g} CodeBuild "
                      f"min × ${_n(cb)} + {pr.packer_hours_per_bake:g} h {pr.builder_instance_type} builder "
                      f"({pr.source['builder']}) × ${_n(builder)} + {pr.pipeline_action_minutes_per_bake:g} pipeline "
                      f"min × ${_n(pipe)})"))

    dr_hours = pr.dr_tests_per_month * u.dr_test_seconds / 3600
    lines.append(Line("DR test", dr_hours * gpu_price,
                      f"{pr.dr_tests_per_month:g}/month ({pr.source['dr']}) × {u.dr_test_seconds:g} s "
                      f"(boot from the restored image + self-test) = {dr_hours:.2f} h {pr.gpu_instance_type} × "
                      f"${_n(gpu_price)}/h"))

    return Estimate(profile=pr, region=region, usage=u, usd_to_eur=usd_to_eur, prices_date=table.compiled,
                    lines=lines)


def format_estimate(est: Estimate, goal_eur: float = GOAL_EUR) -> list[str]:
    """The printout: a header, one line per component, the goal verdict, and last `Total: €N.NN / month`."""
    u = est.usage
    out = [
        f"TL-FIF monthly cost estimate: profile {est.profile.name}, region {est.region}, "
        f"prices of {est.prices_date} (list prices, no free tier, no VAT) at {est.usd_to_eur:g} EUR/USD",
        f"Usage: {u.sessions} sessions/month × ({u.boot_seconds:g} s boot + {u.minutes:g} min use + "
        f"{u.idle:g} min idle)",
    ]
    width = max(len(line.component) for line in est.lines)
    for line in est.lines:
        out.append(f"  {line.component:<{width}}  {'€' + format(est.eur(line), '.2f'):>8}  {line.detail}")
    total = est.total_eur
    blockers = est.blockers(goal_eur)
    if not blockers:
        out.append(f"Goal ≤ €{goal_eur:.2f} / month: met (€{goal_eur - total:.2f} to spare)")
    else:
        without = round(total - sum(est.eur(line) for line in blockers), 2)
        named = ", ".join(f"{line.component} €{est.eur(line):.2f}" for line in blockers)
        out.append(f"Goal ≤ €{goal_eur:.2f} / month: missed by €{total - goal_eur:.2f}; prevented by {named} "
                   f"(without {'it' if len(blockers) == 1 else 'them'}: €{without:.2f})")
    out.append(f"Not counted: VAT (with {VAT_EXAMPLE:.0%} VAT: €{total * (1 + VAT_EXAMPLE):.2f}); internet data "
               "out (< 1 GB, within AWS's 100 GB/month free allowance); Cognito (first 10,000 MAU free); Budgets "
               "notifications and the first CloudTrail trail (free)")
    out.append(f"Total: €{total:.2f} / month")
    return out
