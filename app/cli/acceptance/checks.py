"""The acceptance checklist: each check measures a figure, compares it with its threshold and gives a verdict.

A check is a function of a `Run` returning a `Check`. The GPU checks drive the deployment through its own API
(`/infer`, `/stop`, `/ping`, the result objects) and watch EC2 through boto3; the security checks read AWS.
"""
from __future__ import annotations

import base64
import calendar
import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable
from urllib.parse import urlsplit

import requests

from tlfif_common import api

from .target import Target

COLD_START_S = 90.0      # first token after a prompt to a stopped GPU
STOP_S = 10.0            # /stop → EC2 `stopping`
WATCHER_TICK_S = 1.0     # the watcher's idle check runs once per BLMOVE timeout
IDLE_MINUTES = 1
POLL_S = 0.2             # EC2 and the result object (not throttled by the API)
PING_S = 0.5             # /ping: the router allows a user 5 requests a second, the stage 5 for everyone
THROTTLE_WAIT_S = 15.0
PASS, FAIL = "pass", "fail"
NOT_RUN = "not run"  # the check cannot run from here (no display, no signed-in user): neither passed nor failed
OBSERVER = "acceptance-qa"  # the checks' own user: its throttle and jobs are its own


@dataclass
class Check:
    name: str
    figure: str
    threshold: str
    verdict: str
    details: dict[str, Any] = field(default_factory=dict)
    screenshots: list[dict[str, str]] = field(default_factory=list)  # {"name", "png_base64"}

    @property
    def passed(self) -> bool:
        return self.verdict == PASS

    @property
    def failed(self) -> bool:
        return self.verdict not in (PASS, NOT_RUN)


class Run:
    """One acceptance run against `target`: its HTTP session, its jobs (their results are deleted at the end)."""

    def __init__(self, target: Target):
        self.target = target
        self.http = requests.Session()
        self.jobs: list[dict] = []
        self._token: str | None = None
        self._parts = None

    @property
    def parts(self):
        if self._parts is None:
            self._parts = self.target.parts()
        return self._parts

    def token(self) -> str:
        if self._token is None:
            self._token = self.target.token(OBSERVER)
        return self._token

    def call(self, method: str, path: str, *, token: str | None = "", retry: bool = True,
             **kwargs) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        token = self.token() if token == "" else token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        deadline = time.monotonic() + THROTTLE_WAIT_S
        while True:
            answer = self.http.request(method, self.target.api_url + path, headers=headers, timeout=30, **kwargs)
            # The checks' own polling must not trip the per-user or stage limit into a false verdict.
            if answer.status_code != 429 or not retry or time.monotonic() > deadline:
                return answer
            time.sleep(1.0)

    # --- the GPU -----------------------------------------------------------------------------------------------
    def ec2_state(self) -> str:
        ec2 = self.target.client("ec2")
        reservations = ec2.describe_instances(InstanceIds=[self.parts.gpu_instance_id])["Reservations"]
        return reservations[0]["Instances"][0]["State"]["Name"]

    def api_state(self) -> str:
        answer = self.call("GET", "/ping")
        answer.raise_for_status()
        return answer.json()["gpu"]

    def wait_api_state(self, states: set[str], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            state = self.api_state()
            if state in states or time.monotonic() > deadline:
                return state
            time.sleep(PING_S)

    def infer(self, prompt: str, idle: int = IDLE_MINUTES) -> dict:
        answer = self.call("POST", "/infer", json={"prompt": prompt, "idle": idle})
        if answer.status_code != 202:
            raise RuntimeError(f"/infer answered {answer.status_code}: {answer.text[:200]}")
        job = answer.json()
        self.jobs.append(job)
        return job

    def result(self, job: dict) -> dict | None:
        answer = self.http.get(job["result_url"], timeout=10)
        return answer.json() if answer.status_code == 200 else None

    def wait_done(self, job: dict, timeout: float) -> dict | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = self.result(job)
            if result and result["status"] in api.FINAL_STATUSES:
                return result
            time.sleep(POLL_S)
        return None

    def ensure_running(self, timeout: float) -> None:
        if self.api_state() != api.GPU_READY:
            if self.wait_api_state({api.GPU_STOPPED, api.GPU_READY, api.GPU_RUNNING}, timeout) == api.GPU_STOPPED:
                self.infer("acceptance: start the GPU")
            self.wait_api_state({api.GPU_READY}, timeout)

    def ensure_stopped(self, timeout: float) -> None:
        state = self.api_state()
        if state != api.GPU_STOPPED:
            if state != api.GPU_STOPPING:
                self.call("POST", "/stop")
            self.wait_api_state({api.GPU_STOPPED}, timeout)

    def delete_results(self, timeout: float = 60.0) -> int:
        """Deletes the result objects of this run's jobs once they are final (a running job would write its object
        again after the delete); how many."""
        s3 = self.target.client("s3")
        deleted = 0
        deadline = time.monotonic() + timeout
        for job in self.jobs:
            self.wait_done(job, max(0.0, deadline - time.monotonic()))
            bucket, key = result_location(job["result_url"])
            s3.delete_object(Bucket=bucket, Key=key)
            deleted += 1
        self.jobs.clear()
        return deleted


def result_location(url: str) -> tuple[str, str]:
    """(bucket, key) of a presigned S3 URL, path style (moto, the local cloud) or virtual-host style (AWS)."""
    parts = urlsplit(url)
    path = parts.path.lstrip("/")
    host = parts.hostname or ""
    if ".s3." in host or host.endswith(".s3.amazonaws.com"):
        return host.split(".s3", 1)[0], path
    bucket, _, key = path.partition("/")
    return bucket, key


def _s(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds:.1f} s"


# --- GPU checks --------------------------------------------------------------------------------------------------
def _watch_stop(run: Run, since: float, timeout: float) -> tuple[float | None, float | None, list[str]]:
    """Seconds from `since` (a monotonic time) to the GPU's stopping and to its stopped state, None for one not
    reached within `timeout`, and the EC2 states seen on the way."""
    to_stopping = to_stopped = None
    seen: list[str] = []
    while time.monotonic() - since < timeout:
        state = run.ec2_state()
        now = time.monotonic() - since
        if not seen or seen[-1] != state:
            seen.append(state)
        if state in ("stopping", "stopped") and to_stopping is None:
            to_stopping = now
        if state == "stopped":
            to_stopped = now
            break
        time.sleep(POLL_S)
    return to_stopping, to_stopped, seen


def check_stop(run: Run) -> Check:
    run.ensure_running(COLD_START_S * 2)
    started = time.monotonic()
    answer = run.call("POST", "/stop")
    to_stopping, to_stopped, seen = _watch_stop(run, started, STOP_S * 12)
    ok = answer.status_code == 200 and to_stopping is not None and to_stopping <= STOP_S
    return Check("stop-gpu", f"stopping after {_s(to_stopping)}, stopped after {_s(to_stopped)}",
                 f"≤ {STOP_S:.0f} s to stopping", PASS if ok else FAIL,
                 {"stop_status": answer.status_code, "ec2_states": seen, "to_stopping_s": to_stopping,
                  "to_stopped_s": to_stopped})


def check_cold_start(run: Run) -> Check:
    run.ensure_stopped(STOP_S * 12)
    started = time.monotonic()
    job = run.infer("acceptance: cold start, say a few words")
    marks: dict[str, float] = {}
    result = None
    last_ping = -PING_S
    while time.monotonic() - started < COLD_START_S * 2:
        now = time.monotonic() - started
        ec2 = run.ec2_state()
        marks.setdefault(f"ec2 {ec2}", round(now, 2))
        if ec2 == "running" and "ready" not in marks and now - last_ping >= PING_S:
            last_ping = now
            ready = run.api_state() == api.GPU_READY
        else:
            ready = False
        if ready:
            marks["ready"] = round(time.monotonic() - started, 2)
        result = run.result(job)
        if result and (result.get("text") or result["status"] in api.FINAL_STATUSES):
            marks.setdefault("first token", round(time.monotonic() - started, 2))
        if result and result["status"] in api.FINAL_STATUSES:
            marks["done"] = round(time.monotonic() - started, 2)
            break
        time.sleep(POLL_S)
    first = marks.get("first token")
    ok = first is not None and first <= COLD_START_S and (result or {}).get("status") == api.STATUS_DONE
    phases = ", ".join(f"{name} {_s(at)}" for name, at in sorted(marks.items(), key=lambda item: item[1]))
    return Check("cold-start", f"first token {_s(first)}, done {_s(marks.get('done'))} ({phases})",
                 f"≤ {COLD_START_S:.0f} s to first token", PASS if ok else FAIL,
                 {"phases_s": marks, "status": (result or {}).get("status")})


def check_idle_stop(run: Run) -> Check:
    minute = run.target.minute_seconds
    limit = IDLE_MINUTES * minute + WATCHER_TICK_S + STOP_S
    run.ensure_running(COLD_START_S * 2)
    job = run.infer("acceptance: idle stop", idle=IDLE_MINUTES)
    result = run.wait_done(job, COLD_START_S)
    to_stopping, to_stopped, _ = _watch_stop(run, time.monotonic(), limit * 3)
    scale = "" if minute == 60 else f"; a minute is {minute:g} s here"
    ok = result is not None and to_stopping is not None and to_stopping <= limit
    return Check("idle-stop", f"stopping {_s(to_stopping)} after the last answer, stopped {_s(to_stopped)}{scale}",
                 f"≤ {limit:g} s (idle {IDLE_MINUTES} min + tick {WATCHER_TICK_S:g} s + stop {STOP_S:g} s)",
                 PASS if ok else FAIL, {"minute_s": minute, "to_stopping_s": to_stopping, "to_stopped_s": to_stopped})


# --- cost ---------------------------------------------------------------------------------------------------------
def check_cost(run: Run) -> Check:
    from app.cli import cost_estimate
    from tlfif_common import prices

    answer = run.call("GET", "/cost")
    answer.raise_for_status()
    mtd = answer.json().get("month_to_date_eur")
    now = datetime.now(timezone.utc)
    days = calendar.monthrange(now.year, now.month)[1]
    forecast = None if mtd is None else round(mtd / now.day * days, 2)
    budget = run.target.budget_eur or cost_estimate.GOAL_EUR
    table = prices.load()
    profile = run.target.cost_profile or cost_estimate.DEFAULT_PROFILE
    est = cost_estimate.estimate(profile, cost_estimate.Usage(), run.target.region, table,
                                 prices.usd_to_eur(table=table))
    ok = est.total_eur <= budget and (forecast is None or forecast <= budget)
    mtd_text = "no figure yet" if mtd is None else f"€{mtd:.2f}"
    forecast_text = "—" if forecast is None else f"€{forecast:.2f}"
    return Check("cost", f"month to date {mtd_text}, month-end forecast {forecast_text}, "
                         f"estimate €{est.total_eur:.2f} ({est.profile.name}, {run.target.region})",
                 f"≤ €{budget:g} a month", PASS if ok else FAIL,
                 {"month_to_date_eur": mtd, "forecast_eur": forecast, "estimate_eur": est.total_eur,
                  "budget_eur": budget})


# --- security -----------------------------------------------------------------------------------------------------
def _bucket_findings(run: Run) -> list[str]:
    s3 = run.target.client("s3")
    bad = []
    for bucket in run.parts.buckets:
        try:
            config = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        except s3.exceptions.ClientError as err:
            config = {}
            if err.response.get("Error", {}).get("Code") != "NoSuchPublicAccessBlockConfiguration":
                raise
        if not config or not all(config.values()):
            bad.append(f"bucket {bucket} does not block public access")
    if not run.parts.buckets:
        bad.append("no responses/models bucket found")
    return bad


def _instance(run: Run) -> dict:
    ec2 = run.target.client("ec2")
    return ec2.describe_instances(InstanceIds=[run.parts.gpu_instance_id])["Reservations"][0]["Instances"][0]


def _group_findings(run: Run) -> list[str]:
    ec2 = run.target.client("ec2")
    ids = [g["GroupId"] for g in _instance(run).get("SecurityGroups", [])]
    bad = []
    for group in ec2.describe_security_groups(GroupIds=ids)["SecurityGroups"] if ids else []:
        for rule in group.get("IpPermissions", []):
            low, high = rule.get("FromPort", 0), rule.get("ToPort", 65535)
            everyone = [r["CidrIp"] for r in rule.get("IpRanges", []) if r.get("CidrIp") == "0.0.0.0/0"]
            everyone += [r["CidrIpv6"] for r in rule.get("Ipv6Ranges", []) if r.get("CidrIpv6") == "::/0"]
            if rule.get("IpProtocol") == "-1" or low <= 22 <= high:
                bad.append(f"{group['GroupId']} allows port 22 ({rule.get('IpProtocol')} {low}-{high})")
            elif everyone:
                bad.append(f"{group['GroupId']} allows {', '.join(everyone)} on {low}-{high}")
    return bad


def _volume_findings(run: Run) -> list[str]:
    ec2 = run.target.client("ec2")
    volumes = ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id",
                                             "Values": [run.parts.gpu_instance_id]}])["Volumes"]
    if not volumes:
        return ["the GPU has no EBS volume to check"]
    return [f"volume {v['VolumeId']} is not encrypted" for v in volumes if not v.get("Encrypted")]


def _template_findings(run: Run) -> list[str]:
    ec2 = run.target.client("ec2")
    if not run.parts.launch_templates:
        return ["no launch template found"]
    bad = []
    for template in run.parts.launch_templates:
        [version] = ec2.describe_launch_template_versions(LaunchTemplateId=template,
                                                          Versions=["$Latest"])["LaunchTemplateVersions"]
        tokens = version["LaunchTemplateData"].get("MetadataOptions", {}).get("HttpTokens", "optional")
        if tokens != "required":
            bad.append(f"launch template {template} allows IMDSv1 (HttpTokens {tokens})")
    return bad


def _optional_service(finder: Callable[[Run], list[str]], run: Run) -> tuple[list[str], str | None]:
    """A service the endpoint may not serve (moto has no Access Analyzer): (findings, why it was not read)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return finder(run), None
    except ClientError as err:
        error = err.response.get("Error", {})
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status and status >= 500 and not error.get("Message"):
            return [], f"not served by this endpoint (HTTP {status})"
        return [], f"not read: {error.get('Code', 'error')}: {error.get('Message', '')}"[:160]
    except BotoCoreError as err:
        return [], f"not read: {type(err).__name__}"


def _config_findings(run: Run) -> list[str]:
    rules = run.parts.config_rules
    if not rules:
        raise _NotDeployed("no AWS Config rules in this deployment")
    config = run.target.client("config")
    answer = config.describe_compliance_by_config_rule(ConfigRuleNames=rules)
    return [f"Config rule {item['ConfigRuleName']} is {item['Compliance']['ComplianceType']}"
            for item in answer["ComplianceByConfigRules"]
            if item.get("Compliance", {}).get("ComplianceType") == "NON_COMPLIANT"]


def _analyzer_findings(run: Run) -> list[str]:
    analyzer = run.target.client("accessanalyzer")
    analyzers = [a for a in analyzer.list_analyzers()["analyzers"] if a.get("status") == "ACTIVE"]
    if not analyzers:
        raise _NotDeployed("no active IAM Access Analyzer in this region")
    bad = []
    for item in analyzers:
        findings = analyzer.list_findings(analyzerArn=item["arn"], filter={"status": {"eq": ["ACTIVE"]}})["findings"]
        bad += [f"Access Analyzer finding {f['id']} on {f.get('resource', '?')}" for f in findings]
    return bad


class _NotDeployed(Exception):
    pass


def check_security(run: Run) -> Check:
    findings: list[str] = []
    counted: dict[str, int] = {}
    notes: list[str] = []
    for label, finder in (("buckets", _bucket_findings), ("security groups", _group_findings),
                          ("EBS volumes", _volume_findings), ("launch template", _template_findings)):
        found = finder(run)
        counted[label] = len(found)
        findings += found
    for label, finder in (("AWS Config", _config_findings), ("Access Analyzer", _analyzer_findings)):
        try:
            found, why = _optional_service(finder, run)
        except _NotDeployed as err:
            found, why = [], str(err)
        if why:
            notes.append(f"{label}: {why}")
        else:
            counted[label] = len(found)
            findings += found
    figure = "; ".join(f"{label} {count} finding(s)" for label, count in counted.items())
    return Check("security", figure + (f" ({'; '.join(notes)})" if notes else ""), "0 findings",
                 PASS if not findings else FAIL, {"findings": findings, "not_read": notes})


# --- the API contract ---------------------------------------------------------------------------------------------
def _forged(token: str) -> str:
    """The same claims under the same header, signed by someone else: what an attacker can make."""
    header, payload, _ = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = claims.get("sub", "") + "-forged"
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{body}.{base64.urlsafe_b64encode(secrets.token_bytes(256)).rstrip(b'=').decode()}"


def check_api(run: Run) -> Check:
    got = {
        "no token": run.call("GET", "/ping", token=None, retry=False).status_code,
        "forged token": run.call("GET", "/ping", token=_forged(run.token()), retry=False).status_code,
        "bad body": run.call("POST", "/infer", json={"prompt": 5, "idle": 1}, retry=False).status_code,
    }
    wanted = {"no token": 401, "forged token": 401, "bad body": 400, "throttle": 429}
    burst = run.target.token(f"{OBSERVER}-burst")
    statuses = [run.call("GET", "/ping", token=burst, retry=False).status_code for _ in range(40)]
    got["throttle"] = 429 if 429 in statuses else max(statuses)
    ok = got == wanted
    return Check("api-contract", ", ".join(f"{name} → {status}" for name, status in got.items()),
                 ", ".join(f"{name} → {status}" for name, status in wanted.items()), PASS if ok else FAIL,
                 {"statuses": got, "burst": statuses})


def check_gui(run: Run) -> Check:
    from .gui_check import check_gui as check  # it builds on this module's Check and Run

    return check(run)


# Order matters: stop first (from a running GPU), then cold start (from stopped), then idle stop.
CHECKS: dict[str, Callable[[Run], Check]] = {
    "stop-gpu": check_stop,
    "cold-start": check_cold_start,
    "idle-stop": check_idle_stop,
    "cost": check_cost,
    "security": check_security,
    "api-contract": check_api,
    "gui": check_gui,
}
GPU_CHECKS = ("stop-gpu", "cold-start", "idle-stop")
