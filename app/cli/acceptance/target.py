"""What the acceptance checks are pointed at: the API, a way to get an ID token, AWS clients and the stack's parts.

`LocalTarget` starts `tl-fif cloud up` as a child (its own state file) and reaches moto and Redis through that
0600 file; `StackTarget` reads a deployed stack's outputs and resources with the caller's AWS credentials. Both
find the GPU's parts the same way on either side: by the CloudFormation resource list (stack) or the tags and names
the templates give them (local).
"""
from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from tlfif_common import names

START_TIMEOUT = 60.0
# Idle "minute" of an acceptance local cloud: short enough for a test run, long enough to see the GPU idle.
LOCAL_MINUTE_SECONDS = 3.0
LOCAL_BOOT_SECONDS = 1.0


class TargetError(Exception):
    """The target cannot be reached or read; the message says what to do."""


@dataclass
class Parts:
    """The deployment's AWS resources the security checks read."""
    gpu_instance_id: str = ""
    buckets: list[str] = field(default_factory=list)
    launch_templates: list[str] = field(default_factory=list)  # ids
    config_rules: list[str] = field(default_factory=list)


class Target:
    kind = "target"
    name = ""
    api_url = ""
    region = ""
    minute_seconds = 60.0
    budget_eur: float | None = None
    cost_profile: str | None = None  # the stack's CostProfile parameter; None: the estimator's default
    responses_bucket = ""

    def token(self, user: str) -> str:
        raise NotImplementedError

    def client(self, service: str) -> Any:
        raise NotImplementedError

    def parts(self) -> Parts:
        raise NotImplementedError

    def keep_warm_until(self) -> int | None:
        """Epoch ms keep-warm holds the GPU until, or None (off, or not readable from here)."""
        return None

    def app_endpoint(self) -> tuple[Any, str | None]:
        """(the `AwsEndpoint` the desktop app is given for this deployment, an ID token to start signed in or None:
        the app signs in itself). TargetError when the app cannot be signed in from here."""
        raise NotImplementedError

    @property
    def echo_engine(self) -> bool:
        """True when the GPU answers with the echo engine (an answer repeats its prompt)."""
        return False

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class LocalTarget(Target):
    """A fresh local cloud for this run; `extra_args` reach `cloud up` (tests pass fault options)."""

    kind = "local"

    def __init__(self, extra_args: list[str] | None = None, minute_seconds: float = LOCAL_MINUTE_SECONDS):
        self.minute_seconds = minute_seconds
        self.extra_args = list(extra_args or [])
        self.proc: subprocess.Popen | None = None
        self._dir = tempfile.TemporaryDirectory(prefix="tlfif-acceptance-")
        self.state_file = Path(self._dir.name) / "local-cloud.json"
        self.log_file = Path(self._dir.name) / "local-cloud.log"
        env = dict(os.environ, TLFIF_LOCAL_STATE=str(self.state_file), PYTHONUNBUFFERED="1")
        args = ["--boot-seconds", str(LOCAL_BOOT_SECONDS), "--minute-seconds", str(minute_seconds),
                "--exit-with-stdin", *(extra_args or [])]
        with open(self.log_file, "wb") as log:
            # stdin is a pipe we hold: if this process dies, the cloud sees end of file and stops.
            self.proc = subprocess.Popen([sys.executable, "-m", "tlfif_local", "up", *args], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=log, env=env)
        first: queue.Queue = queue.Queue()

        def pump() -> None:  # the first line is the info; the access log after it is read and dropped
            for number, raw in enumerate(self.proc.stdout):
                if number == 0:
                    first.put(raw)
            first.put(None)

        threading.Thread(target=pump, name="acceptance-cloud-stdout", daemon=True).start()
        try:
            line = first.get(timeout=START_TIMEOUT)
        except queue.Empty:
            line = None
        if not line:
            self.close()
            raise TargetError(f"the local cloud did not start:\n{self.log_file.read_text(errors='replace')[-2000:]}")
        self.info = json.loads(line)
        self.state = json.loads(self.state_file.read_text())
        self.api_url = self.info["api_url"]
        self.region = self.info["region"]
        self.name = "local cloud"
        self.responses_bucket = names.LOCAL_RESPONSES_BUCKET

    def token(self, user: str) -> str:
        import requests

        answer = requests.post(self.state["admin_token_url"], timeout=10, json={"user": user, "expires_in": 3600},
                               headers={"Authorization": f"Bearer {self.state['admin_secret']}"})
        answer.raise_for_status()
        return answer.json()["id_token"]

    def app_endpoint(self) -> tuple[Any, str | None]:
        from app.services.endpoints import AwsEndpoint

        # as the embedded cloud hands it to the app: the login page then signs the local user in without a browser
        return AwsEndpoint.from_local_info(self.info, self.state["login_secret"]), None

    @property
    def echo_engine(self) -> bool:
        engines = [self.extra_args[i + 1] for i, arg in enumerate(self.extra_args[:-1]) if arg == "--engine"]
        return not engines or engines[-1] == "echo"

    def client(self, service: str) -> Any:
        import boto3

        creds = self.state["aws_credentials"]
        return boto3.client(service, region_name=self.region, endpoint_url=self.state["aws_endpoint_url"],
                            aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
                            aws_session_token=creds["AWS_SESSION_TOKEN"])

    def parts(self) -> Parts:
        ec2 = self.client("ec2")
        tagged = [{"Name": f"tag:{names.TAG_PROJECT_KEY}", "Values": [names.TAG_PROJECT_VALUE]}]
        instances = [i for r in ec2.describe_instances(Filters=tagged)["Reservations"] for i in r["Instances"]]
        templates = ec2.describe_launch_templates(Filters=tagged)["LaunchTemplates"]
        return Parts(gpu_instance_id=instances[0]["InstanceId"] if instances else "",
                     buckets=[names.LOCAL_RESPONSES_BUCKET, names.LOCAL_MODELS_BUCKET],
                     launch_templates=[t["LaunchTemplateId"] for t in templates])

    def keep_warm_until(self) -> int | None:
        import redis

        from tlfif_common.workqueue import WorkQueue

        client = redis.Redis.from_url(self.state["redis_url"])
        try:
            return WorkQueue(client).keep_warm_until()
        finally:
            client.close()

    def close(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc is not None and proc.stdin:
            proc.stdin.close()
        self._dir.cleanup()


# CloudFormation resource types whose physical ids the checks read.
_BUCKET, _INSTANCE, _TEMPLATE, _STACK, _RULE = ("AWS::S3::Bucket", "AWS::EC2::Instance", "AWS::EC2::LaunchTemplate",
                                                 "AWS::CloudFormation::Stack", "AWS::Config::ConfigRule")


class StackTarget(Target):
    """A deployed stack, read with the caller's AWS credentials. `token_source` gives an ID token for a user name."""

    kind = "stack"

    def __init__(self, stack_name: str, region: str | None, *, token_source: Callable[[str], str] | None = None,
                 endpoint_url: str | None = None):
        import boto3

        from app.services import stack_outputs

        self._session = boto3.session.Session(region_name=region or None)
        self._endpoint_url = endpoint_url
        try:
            outputs, where = stack_outputs.read_outputs(stack_name, region=region,
                                                        client=self.client("cloudformation"))
        except stack_outputs.StackError as err:
            raise TargetError(str(err)) from None
        self.name = stack_name
        self.region = where
        self.outputs = outputs
        self.api_url = (outputs.get(stack_outputs.OUTPUT_API_URL) or "").rstrip("/")
        self._token_source = token_source
        self._resources: list[dict] | None = None
        # The stack's own parameters drive the estimate and the budget (main.yaml: CostProfile, MonthlyBudget).
        [stack] = self.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
        parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters") or []}
        self.cost_profile = parameters.get("CostProfile") or None
        try:
            self.budget_eur = float(parameters["MonthlyBudget"])
        except (KeyError, ValueError):
            self.budget_eur = None

    def token(self, user: str) -> str:
        if self._token_source is None:
            raise TargetError("no ID token: set TLFIF_ACCEPTANCE_TOKEN to a signed-in user's ID token "
                              "(the app's login) to run the API checks against a stack")
        return self._token_source(user)

    def client(self, service: str) -> Any:
        return self._session.client(service, endpoint_url=self._endpoint_url)

    def app_endpoint(self) -> tuple[Any, str | None]:
        from app.models.settings import AwsSettings
        from app.services import stack_outputs
        from app.services.endpoints import AwsEndpoint

        try:
            settings = stack_outputs.aws_settings(self.outputs, AwsSettings(), region=self.region)
        except stack_outputs.StackError as err:
            raise TargetError(str(err)) from None
        # The hosted login needs a person at a browser: the run brings a signed-in user's token instead.
        return AwsEndpoint.from_settings(settings), self.token("gui")

    def resources(self) -> list[dict]:
        """Every resource of the stack and its nested stacks."""
        if self._resources is None:
            cfn = self.client("cloudformation")
            found, pending = [], [self.name]
            while pending:
                stack = pending.pop()
                for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack):
                    for item in page["StackResourceSummaries"]:
                        found.append(item)
                        if item["ResourceType"] == _STACK and item.get("PhysicalResourceId"):
                            pending.append(item["PhysicalResourceId"])
            self._resources = found
        return self._resources

    def _ids(self, kind: str) -> list[str]:
        return [r["PhysicalResourceId"] for r in self.resources() if r["ResourceType"] == kind
                and r.get("PhysicalResourceId")]

    def parts(self) -> Parts:
        instances = self._ids(_INSTANCE)
        buckets = self._ids(_BUCKET)
        self.responses_bucket = next((b for b in buckets if "respons" in b), "")
        return Parts(gpu_instance_id=instances[0] if instances else "",
                     buckets=[b for b in buckets if "respons" in b or "model" in b] or buckets,
                     launch_templates=self._ids(_TEMPLATE), config_rules=self._ids(_RULE))
