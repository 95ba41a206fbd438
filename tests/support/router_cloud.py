"""Router test bed: API Gateway v2 sample events, moto-backed AWS with a tagged GPU instance, the real handler.

Fixtures (import them by their function names into a test module): `aws_cloud` and `cloud`.
One `mock_aws()` per test module (creating the GPU instance and clients costs about a second on this machine);
each test gets the instance back in `running`, no ready marker, empty metrics, a flushed Redis and a freshly
built `Deps` whose configuration comes from the environment exactly as in Lambda. The boto3 clients are built
once per module by `Deps` itself (same timeouts, same S3 addressing style as production) and passed in.
"""
from __future__ import annotations

import base64
import copy
import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from tlfif_common import names
from tlfif_router import handler as router
from tlfif_router.config import RouterConfig
from tlfif_router.deps import Deps

from support.lambda_context import FakeLambdaContext

EVENTS = Path(__file__).resolve().parent.parent / "events"
REGION = names.DEFAULT_REGION
AMI = "ami-12c6146b"  # one of moto's built-in images
_CLAIMS = json.loads((EVENTS / "infer.json").read_text())["requestContext"]["authorizer"]["jwt"]["claims"]
ISSUER, AUDIENCE, SUB = _CLAIMS["iss"], _CLAIMS["aud"], _CLAIMS["sub"]
STATE_CODES = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}
SERVICES = ("ec2", "s3", "ssm", "cloudwatch", "dynamodb")
# Tests fire requests faster than 5/s; the throttle tests unset this to get the production default.
RELAXED_RPS = "1000"
_DROP = object()


def load_event(name: str, *, body: Any = _DROP, raw_body: str | None = None, base64_body: bool = False,
               claims: dict | None = None, no_claims: bool = False, now: float | None = None) -> dict:
    """A sample event from tests/events with a live token (exp an hour ahead, as strings like API Gateway).

    body: a value to send as JSON; raw_body: the body text as is; claims: updates (None deletes a claim).
    """
    event = json.loads((EVENTS / f"{name}.json").read_text())
    now = time.time() if now is None else now
    jwt_claims = event["requestContext"]["authorizer"]["jwt"]["claims"]
    jwt_claims.update(iat=str(int(now) - 60), auth_time=str(int(now) - 60), exp=str(int(now) + 3600))
    for key, value in (claims or {}).items():
        if value is None:
            jwt_claims.pop(key, None)
        else:
            jwt_claims[key] = value
    if no_claims:
        del event["requestContext"]["authorizer"]
    if body is not _DROP:
        raw_body = json.dumps(body)
    if raw_body is not None:
        event["body"] = base64.b64encode(raw_body.encode()).decode() if base64_body else raw_body
        event["isBase64Encoded"] = base64_body
    return event


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict

    @property
    def error(self) -> str | None:
        return self.body.get("error") if isinstance(self.body, dict) else None


def invoke(event: dict, context: FakeLambdaContext | None = None) -> Answer:
    """Call the real entry point `tlfif_router.handler.handler` and decode its answer."""
    response = router.handler(copy.deepcopy(event), context or FakeLambdaContext())
    assert set(response) == {"statusCode", "headers", "body"}, response
    assert response["headers"]["Content-Type"] == "application/json"
    return Answer(response["statusCode"], json.loads(response["body"]), response["headers"])


def incorrect_state_error(instance_id: str, verb: str) -> dict:
    return {"Error": {"Code": "IncorrectInstanceState",
                      "Message": f"The instance '{instance_id}' is not in a state from which it can be {verb}."},
            "ResponseMetadata": {"HTTPStatusCode": 400}}


@dataclass
class RouterCloud:
    clients: dict[str, Any]
    instance_id: str
    calls: list[str] = field(default_factory=list)  # EC2 operations the router made in this test

    @property
    def ec2(self):
        return self.clients["ec2"]

    def _moto_instance(self):
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.ec2.models import ec2_backends

        return ec2_backends[DEFAULT_ACCOUNT_ID][REGION].get_instance(self.instance_id)

    def state(self) -> str:
        reservations = self.ec2.describe_instances(InstanceIds=[self.instance_id])["Reservations"]
        return reservations[0]["Instances"][0]["State"]["Name"]

    def set_state(self, name: str) -> None:
        """Put the instance in any EC2 state (moto jumps straight to running/stopped on its own)."""
        instance = self._moto_instance()
        instance._state.name = name
        instance._state.code = STATE_CODES[name]

    def launch_time(self) -> datetime:
        return self.ec2.describe_instances(InstanceIds=[self.instance_id])["Reservations"][0]["Instances"][0][
            "LaunchTime"]

    def set_ready(self, value: str) -> None:
        self.clients["ssm"].put_parameter(Name=names.ssm_ready_param(self.instance_id), Value=value,
                                          Type="String", Overwrite=True)

    def ready_param(self) -> str | None:
        try:
            return self.clients["ssm"].get_parameter(Name=names.ssm_ready_param(self.instance_id))["Parameter"][
                "Value"]
        except self.clients["ssm"].exceptions.ParameterNotFound:
            return None

    def metric(self, name: str) -> float:
        """Sum of a router metric sent during this test (0 when none)."""
        now = datetime.now(timezone.utc)
        points = self.clients["cloudwatch"].get_metric_statistics(
            Namespace=names.METRICS_NAMESPACE, MetricName=name, StartTime=now - timedelta(hours=1),
            EndTime=now + timedelta(minutes=5), Period=60, Statistics=["Sum"])["Datapoints"]
        return sum(p["Sum"] for p in points)

    def session_item(self, user: str = SUB) -> dict | None:
        return self.clients["dynamodb"].get_item(TableName=names.SESSIONS_TABLE,
                                                 Key={names.SESSIONS_KEY: {"S": user}}).get("Item")

    def rebuild(self, **clients: Any) -> None:
        """New Deps from the current environment (as a fresh Lambda execution environment would build)."""
        router.reset_deps(Deps(RouterConfig.from_env(), **{**self.clients, **clients}))


def router_env(monkeypatch: pytest.MonkeyPatch, *, redis_url: str, instance_id: str) -> None:
    for key, value in {
        names.ENV_REDIS_URL: redis_url,
        names.ENV_RESPONSES_BUCKET: names.LOCAL_RESPONSES_BUCKET,
        names.ENV_MODELS_BUCKET: names.LOCAL_MODELS_BUCKET,
        names.ENV_GPU_INSTANCE_ID: instance_id,
        names.ENV_JWT_ISSUER: ISSUER,
        names.ENV_JWT_AUDIENCE: AUDIENCE,
        names.ENV_SESSIONS_TABLE: names.SESSIONS_TABLE,
        names.ENV_RATE_LIMIT_RPS: RELAXED_RPS,
    }.items():
        monkeypatch.setenv(key, value)
    for key in (names.ENV_QUEUE_FUNCTION, names.ENV_BOOT_ETA_SECONDS):
        monkeypatch.delenv(key, raising=False)


def router_clients(services: tuple[str, ...] = SERVICES) -> dict[str, Any]:
    """Clients made as the router makes them (its Deps), for use inside an active moto `mock_aws`."""
    config = RouterConfig(responses_bucket=names.LOCAL_RESPONSES_BUCKET, gpu_instance_id="unset",
                          jwt_issuer=ISSUER, jwt_audience=AUDIENCE, redis_url="redis://unused")
    builder = Deps(config)
    return {service: builder.client(service) for service in services}


def create_gpu_cloud(clients: dict[str, Any]) -> str:
    """The resources the templates create, in moto: the tagged GPU instance, both buckets, the sessions table."""
    instance = clients["ec2"].run_instances(
        ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="g4dn.xlarge",
        TagSpecifications=[{"ResourceType": "instance", "Tags": [
            {"Key": names.TAG_PROJECT_KEY, "Value": names.TAG_PROJECT_VALUE},
            {"Key": names.TAG_ROLE_KEY, "Value": names.TAG_ROLE_GPU}]}])["Instances"][0]
    for bucket in (names.LOCAL_RESPONSES_BUCKET, names.LOCAL_MODELS_BUCKET):
        clients["s3"].create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    clients["dynamodb"].create_table(
        TableName=names.SESSIONS_TABLE, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": names.SESSIONS_KEY, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": names.SESSIONS_KEY, "AttributeType": "S"}])
    return instance["InstanceId"]


def _start_rules(cloud: RouterCloud):
    """EC2 refuses StartInstances unless the instance is stopped (or already pending/running); moto does not."""
    def before_start(**_):
        cloud.calls.append("StartInstances")
        instance = cloud._moto_instance()  # the module's only instance
        if instance._state.name in ("stopping", "shutting-down", "terminated"):
            error = incorrect_state_error(instance.id, "started")
            return AWSResponse("https://ec2.invalid/", 400, {}, None), error
        return None
    return before_start


@pytest.fixture(scope="module", name="aws_cloud")
def aws_cloud_fixture():
    from moto import mock_aws

    with mock_aws():
        clients = router_clients()
        cloud = RouterCloud(clients=clients, instance_id=create_gpu_cloud(clients))
        clients["ec2"].meta.events.register_first("before-call.ec2.StartInstances", _start_rules(cloud))
        clients["ec2"].meta.events.register("before-call.ec2.StopInstances",
                                            lambda **_: cloud.calls.append("StopInstances"))
        yield cloud
    router.reset_deps()


@pytest.fixture(name="cloud")
def cloud_fixture(aws_cloud: RouterCloud, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> RouterCloud:
    """The module's cloud, reset: GPU running, no ready marker, no metrics, no session items, Redis flushed."""
    from moto.cloudwatch.models import cloudwatch_backends
    from moto.core import DEFAULT_ACCOUNT_ID

    aws_cloud.set_state("running")
    aws_cloud.calls.clear()
    cloudwatch_backends[DEFAULT_ACCOUNT_ID][REGION].reset()
    try:
        aws_cloud.clients["ssm"].delete_parameter(Name=names.ssm_ready_param(aws_cloud.instance_id))
    except aws_cloud.clients["ssm"].exceptions.ParameterNotFound:
        pass
    aws_cloud.clients["dynamodb"].delete_item(TableName=names.SESSIONS_TABLE,
                                              Key={names.SESSIONS_KEY: {"S": SUB}})
    router_env(monkeypatch, redis_url=redis_url, instance_id=aws_cloud.instance_id)
    aws_cloud.rebuild()
    yield aws_cloud
    router.reset_deps()
