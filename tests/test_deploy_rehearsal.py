"""The rehearsal: `tl-fif deploy` puts cloud/cfn/main.yaml, nested stacks and all, into moto's server as a user
would, in both cost profiles; then the router runs with the environment the template gave its Lambda function.

moto's gaps are filled at its boundary by tests/support/moto_cfn.py; every test prints which resource types moto
created and which it skipped, so the coverage of the rehearsal is visible (`pytest -s`).
"""
from __future__ import annotations

import configparser
import json
import os
import uuid

import boto3
import pytest

from app import cli
from app.cli import stack_resources
from app.cli.aws_clients import ENV_ENDPOINT_URL
from tlfif_common import names, prices
from tlfif_common import redis_keys as keys
from tlfif_router import handler as router
from tlfif_router import queue_handler
from tlfif_router.config import RouterConfig
from tlfif_router.deps import Deps
from tlfif_router.queue_port import RedisQueuePort

from support import moto_cfn
from support.lambda_invoke import lambda_client_calling
from support.router_cloud import invoke, load_event

REGION = names.DEFAULT_REGION
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def lambda_zip(tmp_path_factory):
    """The router zip, built once by cloud/lambda/build_zip.py (without the vendored redis: no network here)."""
    from app.cli import package

    spec = __import__("importlib.util").util.spec_from_file_location("build_zip", package.BUILD_ZIP)
    module = __import__("importlib.util").util.module_from_spec(spec)
    spec.loader.exec_module(module)
    path = tmp_path_factory.mktemp("zip") / "tl-fif-router.zip"
    module.build(path, vendor_deps=False)
    return path


@pytest.fixture
def aws(moto_endpoint, tmp_path, monkeypatch):
    """A user's shell: credentials, a region, a home directory; every tl-fif AWS call goes to moto."""
    moto_cfn.install()
    moto_cfn.SKIPPED.clear()
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": REGION, "HOME": str(tmp_path / "home"),
                       ENV_ENDPOINT_URL: moto_endpoint}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("TLFIF_CONFIG", raising=False)
    (tmp_path / "home").mkdir()

    def client(service):
        return boto3.client(service, region_name=REGION, endpoint_url=moto_endpoint)

    # The image bake writes the AMI id; a user deploying has it in SSM (a moto image stands for the baked one).
    image = client("ec2").describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    client("ssm").put_parameter(Name=names.SSM_LATEST_AMI_ID, Value=image, Type="String", DataType="aws:ec2:image")
    client.endpoint = moto_endpoint
    client.home = tmp_path / "home"
    return client


def deploy(capsys, stack, *args):
    code = cli.main(["deploy", "--stack", stack, "--region", REGION, *args])
    out, err = capsys.readouterr()
    return code, out, err


def coverage(aws, stack: str) -> tuple[list[str], list[str]]:
    created = sorted({r.kind for r in stack_resources.walk(aws("cloudformation"), stack) if r.kind})
    return created, sorted(moto_cfn.SKIPPED)


@pytest.mark.parametrize("profile", ["lean", "full"])
def test_deploy_configures_the_app_and_the_router_runs_with_the_deployed_environment(
        profile, aws, lambda_zip, capsys, redis_url, redis_client, monkeypatch):
    stack = f"tlfif-{profile}"
    code, out, err = deploy(capsys, stack, "--profile", profile, "--yes", "--lambda-zip", str(lambda_zip))
    assert code == 0, out + err
    created, skipped = coverage(aws, stack)
    stood_in = sorted({model.TYPE for model in moto_cfn.MODELS} & set(created))
    with capsys.disabled():
        print(f"\n[{profile}] moto {moto_cfn.MOTO_VERSION} created {len(created) - len(stood_in)} resource types: "
              f"{', '.join(sorted(set(created) - set(stood_in)))}\n"
              f"[{profile}] stand-ins of tests/support/moto_cfn.py: {', '.join(stood_in)}\n"
              f"[{profile}] skipped (no model, referenced by nothing): {', '.join(skipped)}")

    # The change set summary, the live events under their progress prefix, the outputs.
    assert "  add      Network" in out and "Change set: 5 to add" in out
    assert "] Api  AWS::CloudFormation::Stack  CREATE_COMPLETE" in out
    assert "[  5/5  " in out and f"] {stack}  AWS::CloudFormation::Stack  CREATE_COMPLETE" in out
    outputs = {o["OutputKey"]: o["OutputValue"] for o in
               aws("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]}
    assert outputs["CostProfile"] == profile
    config = configparser.ConfigParser()
    assert config.read(aws.home / ".tl-fif.ini")
    assert config["aws"]["api_url"] == outputs["ApiUrl"] and config["aws"]["client_id"] == outputs["UserPoolClientId"]
    assert config["aws"]["auth_domain"] == outputs["HostedUiDomain"] and config["aws"]["region"] == REGION
    assert {"AWS::Lambda::Function", "AWS::EC2::Instance", "AWS::S3::Bucket", "AWS::DynamoDB::Table"} <= set(created)

    # The router's environment, as the template set it on the function (read back from moto's Lambda).
    functions = aws("lambda")
    env = functions.get_function_configuration(FunctionName=outputs["RouterFunctionName"])["Environment"]["Variables"]
    data = next(r.physical_id for r in stack_resources.walk(aws("cloudformation"), stack) if r.logical_id == "Data")
    data_outputs = {o["OutputKey"]: o["OutputValue"] for o in
                    aws("cloudformation").describe_stacks(StackName=data)["Stacks"][0]["Outputs"]}
    assert env[names.ENV_SESSIONS_TABLE] == data_outputs["SessionsTableName"] != names.SESSIONS_TABLE
    aws("dynamodb").describe_table(TableName=env[names.ENV_SESSIONS_TABLE])  # moto made it under that name
    for key in [k for k in os.environ if k.startswith("TLFIF_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, str(value))  # moto hands back the template's numbers as numbers; Lambda as text
    monkeypatch.setenv(names.ENV_AWS_ENDPOINT_URL, aws.endpoint)  # the test-only override the router honours
    monkeypatch.setenv(names.ENV_AWS_REGION, REGION)
    queue = None
    # The one substitution: ElastiCache cannot run here, so the queue's address becomes the local redis-server.
    if profile == "full":
        assert env[names.ENV_REDIS_URL] == data_outputs["RedisUrl"]
        monkeypatch.setenv(names.ENV_REDIS_URL, redis_url)
        clients = {}
    else:
        assert names.ENV_REDIS_URL not in env
        queue_env = functions.get_function_configuration(FunctionName=env[names.ENV_QUEUE_FUNCTION])["Environment"][
            "Variables"]
        assert queue_env[names.ENV_REDIS_URL] == data_outputs["RedisUrl"]
        queue_handler.reset_port(RedisQueuePort.from_url(redis_url))
        queue = lambda_client_calling({env[names.ENV_QUEUE_FUNCTION]: queue_handler.handler}, region=REGION)
        clients = {"lambda": queue}
    config_from_env = RouterConfig.from_env()  # raises ConfigError when the template and the code disagree
    router.reset_deps(Deps(config_from_env, **clients))
    claims = {"iss": env[names.ENV_JWT_ISSUER], "aud": outputs["UserPoolClientId"]}
    try:
        ping = invoke(load_event("ping", claims=claims))
        assert ping.status == 200 and ping.body["gpu"] in ("running", "ready"), ping
        answer = invoke(load_event("infer", body={"prompt": "hi", "idle": 2}, claims=claims))
        assert answer.status in (200, 202), answer
        assert redis_client.llen(keys.PENDING) == 1  # the job reached the queue
        assert f"/{outputs['ResponsesBucket']}/" in answer.body["result_url"]
        item = aws("dynamodb").get_item(TableName=env[names.ENV_SESSIONS_TABLE],
                                        Key={names.SESSIONS_KEY: {"S": load_event("ping")["requestContext"][
                                            "authorizer"]["jwt"]["claims"]["sub"]}})
        assert item.get("Item"), "the router wrote no session item to the deployed table"
        cost = load_event("ping", claims=claims)
        cost.update(routeKey="GET /cost", rawPath="/cost")
        cost["requestContext"]["http"].update(method="GET", path="/cost")
        answer = invoke(cost)
        budget_usd = float(env[names.ENV_MONTHLY_BUDGET_USD])  # main.yaml's MonthlyBudget, passed down
        assert answer.status == 200 and answer.body["budget_eur"] == round(
            budget_usd * prices.usd_to_eur(table=prices.load()), 2), answer
        if queue is not None:
            assert [name for name, _payload in queue.invocations] and \
                {name for name, _ in queue.invocations} == {env[names.ENV_QUEUE_FUNCTION]}
    finally:
        router.reset_deps()
        queue_handler.reset_port()

    # A second deploy of the same tree changes nothing.
    code, out, err = deploy(capsys, stack, "--yes", "--lambda-zip", str(lambda_zip))
    assert code == 0 and f"Stack {stack} is up to date: nothing to change." in out, out + err

    # destroy: lists what is lost, empties the stack's buckets, deletes the stack.
    s3 = aws("s3")
    s3.put_object(Bucket=outputs["ResponsesBucket"], Key="old-answer.json", Body=b"{}")
    code = cli.main(["destroy", "--stack", stack, "--region", REGION, "--yes"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert f"s3://{outputs['ResponsesBucket']}: 1 object version(s) - the history of results" in out
    assert f"Stack {stack} is deleted." in out
    names_left = [s["StackName"] for s in aws("cloudformation").list_stacks()["StackSummaries"]
                  if s["StackStatus"] != "DELETE_COMPLETE"]
    assert stack not in names_left
    assert aws("s3").head_bucket(Bucket=f"tl-fif-artifacts-123456789012-{REGION}")  # the artifacts stay


def test_a_bad_parameter_fails_naming_the_resource_and_the_reason(aws, lambda_zip, capsys):
    code, out, err = deploy(capsys, "tlfif-bad", "--profile", "lean", "--yes", "--lambda-zip", str(lambda_zip),
                            "--param", "CostPollSchedule=every six hours")
    assert code == 1, out + err
    assert "the deployment failed: CostReporterSchedule (AWS::Events::Rule)" in err or \
        "(AWS::Events::Rule) in stack tlfif-bad-Ops-" in err, err
    assert "ScheduleExpression is not valid" in err
    assert "ended ROLLBACK_COMPLETE - CloudFormation rolled the changes back" in err
    assert "ROLLBACK_COMPLETE" in out


def test_usage_errors_and_the_declined_change_set(aws, lambda_zip, capsys, monkeypatch):
    code, _out, err = deploy(capsys, "tlfif-x", "--param", "NoSuchThing=1", "--profile", "lean")
    assert code == 2 and "cloud/cfn/main.yaml has no such parameter" in err
    code, _out, err = deploy(capsys, "tlfif-x", "--lambda-zip", str(lambda_zip))
    assert code == 2 and "a new stack needs --profile lean|full" in err
    monkeypatch.setattr("builtins.input", lambda _prompt: "n")
    code, out, _err = deploy(capsys, "tlfif-x", "--profile", "lean", "--lambda-zip", str(lambda_zip))
    assert code == 1 and "Nothing executed." in out
    live = [s["StackName"] for s in aws("cloudformation").list_stacks()["StackSummaries"]
            if s["StackStatus"] != "DELETE_COMPLETE"]
    assert "tlfif-x" not in live


def test_package_only_prints_the_template_url_for_the_console(aws, lambda_zip, capsys):
    code, out, err = deploy(capsys, "tlfif-console", "--profile", "lean", "--package-only",
                            "--lambda-zip", str(lambda_zip))
    assert code == 0, err
    url = next(line.strip() for line in out.splitlines() if line.strip().startswith("https://"))
    bucket = f"tl-fif-artifacts-123456789012-{REGION}"
    assert url.startswith(f"https://{bucket}.s3.{REGION}.amazonaws.com/tlfif-console/")
    s3 = aws("s3")
    root = json.loads(s3.get_object(Bucket=bucket, Key=url.split(".amazonaws.com/", 1)[1])["Body"].read())
    assert root["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]  # the console's groups
    children = [r["Properties"]["TemplateURL"] for r in root["Resources"].values()
                if r["Type"] == "AWS::CloudFormation::Stack"]
    assert len(children) == 5 and all(u.startswith(f"https://{bucket}.s3.") for u in children)
    encryption = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert encryption["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert all(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values())
    assert aws("cloudformation").list_stacks()["StackSummaries"] == []  # nothing deployed


def test_status_shows_state_outputs_gpu_and_spend(aws, lambda_zip, capsys):
    assert deploy(capsys, "tlfif-s", "--profile", "lean", "--yes", "--lambda-zip", str(lambda_zip))[0] == 0
    aws("ssm").put_parameter(Name=names.SSM_COST_MONTH_TO_DATE, Type="String", Overwrite=True, Value=json.dumps(
        {"month": "2026-11", "as_of": "2026-11-29T12:00:00Z", "month_to_date_eur": 3.21, "daily": []}))
    assert cli.main(["status", "--stack", "tlfif-s", "--region", REGION]) == 0
    out = capsys.readouterr().out
    assert "Stack tlfif-s in eu-central-1: CREATE_COMPLETE" in out and "  ApiUrl = https://" in out
    assert "GPU: running (i-" in out and "g4dn.xlarge" in out
    assert "Spend this month: €3.21 in 2026-11" in out
    assert cli.main(["status", "--stack", f"nope-{uuid.uuid4().hex[:6]}", "--region", REGION]) == 2
    capsys.readouterr()
    # The bill of what is deployed: the stack's own parameters, the templates' structure.
    assert cli.main(["cost", "estimate", "--from-stack", "tlfif-s", "--region", REGION]) == 0
    bill = capsys.readouterr().out
    assert "profile lean" in bill and "every 24 h (main.yaml CostPollSchedule default)" in bill
    assert cli.main(["cost", "estimate", "--from-stack", "nope", "--region", REGION]) == 2


def test_help_shows_the_cli_path_before_the_console_path(capsys):
    assert cli.main(["deploy", "--help"]) == 0
    text = capsys.readouterr().out
    assert text.index("The CLI path") < text.index("The console path") and "--package-only" in text


def test_destroy_asks_for_the_stack_name_and_deletes_nothing_on_a_mismatch(aws, lambda_zip, capsys, monkeypatch):
    assert deploy(capsys, "tlfif-d", "--profile", "lean", "--yes", "--lambda-zip", str(lambda_zip))[0] == 0
    monkeypatch.setattr("builtins.input", lambda _prompt: "tlfif-other")
    assert cli.main(["destroy", "--stack", "tlfif-d", "--region", REGION]) == 1
    out = capsys.readouterr().out
    assert "loses:" in out and "The name does not match; nothing deleted." in out
    assert aws("cloudformation").describe_stacks(StackName="tlfif-d")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    assert cli.main(["destroy", "--stack", "tlfif-none", "--region", REGION, "--yes"]) == 2


def test_no_credentials_is_a_message_not_a_traceback(capsys, monkeypatch, tmp_path):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv(ENV_ENDPOINT_URL, "http://127.0.0.1:9")  # nothing is reached: signing fails first
    code = cli.main(["deploy", "--stack", "s", "--profile", "lean", "--region", REGION, "--package-only"])
    err = capsys.readouterr().err
    assert code == 1 and "Unable to locate credentials" in err


# Names a second TL-FIF stack in the same account and region would collide on, and why each is still fixed. The
# plan (docs/design-notes.md, "Physical names of a second stack"): one TLFIF_NAME_PREFIX derived from the root
# stack name, passed to every nested stack and to the router, watcher and DR node in their environment, with
# names.py building each name from it. Until then this list is the truth, and the test below keeps it so.
STILL_FIXED = {
    "/tl-fif/lambda_prod_version": "api.yaml ProdVersionParameter; the pipeline's deploy stage and rollback read it",
    "/apigw/tl-fif": "api.yaml ApiAccessLogGroup; names.LOG_GROUP_API, the access-log format's home",
    "tl-fif-priv": "data.yaml CacheSubnetGroup (full)",
    "tl-fif-queue": "data.yaml ServerlessQueue (lean)",
    "tl-fif-monthly": "ops.yaml Budget; the budget killer's notices name it",
    "TL-FIF-DR-Test": "ops.yaml DrTestDocument; the DR schedule and docs run it by name",
    "tl-fif-${AWS::AccountId}": "api.yaml UserPoolDomain when no AuthDomainPrefix is given",
}
# Written at run time by the code, not by a template: one set per account and region.
STILL_FIXED_AT_RUN_TIME = ("SSM_PREFIX",)
_NAME_PROPERTIES = ("LogGroupName", "ServerlessCacheName", "CacheSubnetGroupName", "ReplicationGroupId",
                    "BudgetName", "Name", "QueueName", "FunctionName", "TableName", "RoleName", "AlarmName",
                    "BucketName", "TopicName", "Domain", "TrailName", "UserPoolName")
# Names scoped by their parent (an alias of its function, an authorizer of its API) or not a name at all.
_SCOPED = {"AWS::Lambda::Alias", "AWS::Lambda::Version", "AWS::Lambda::Permission", "AWS::ApiGatewayV2::Authorizer",
           "AWS::EC2::EIP", "AWS::IAM::Policy"}


def _fixed_physical_names() -> dict[str, str]:
    from pathlib import Path

    from app.cli import cfn_yaml

    found = {}
    for path in sorted((Path(__file__).resolve().parents[1] / "cloud" / "cfn").glob("*.yaml")):
        for logical_id, resource in (cfn_yaml.load(path).get("Resources") or {}).items():
            if resource["Type"] in _SCOPED:
                continue
            props = resource.get("Properties") or {}
            props = props.get("Budget", props) if resource["Type"] == "AWS::Budgets::Budget" else props
            for key in _NAME_PROPERTIES:
                value = props.get(key)
                if value is None or "AWS::StackName" in json.dumps(value) or "Ref" in json.dumps(value) and \
                        "Fn::If" not in json.dumps(value):
                    continue
                text = value if isinstance(value, str) else json.dumps(value)
                for fixed in STILL_FIXED:
                    if fixed in text:
                        text = fixed
                found[text] = f"{path.stem}.yaml {logical_id}"
    return found


def test_the_names_a_second_stack_still_collides_on_are_the_listed_ones():
    fixed = _fixed_physical_names()
    assert set(fixed) == set(STILL_FIXED), (
        "a template names a resource without the stack name (add it to STILL_FIXED with its reason, or derive it), "
        f"or a listed name is derived now (drop it): {sorted(set(fixed) ^ set(STILL_FIXED))}")
    assert names.SSM_PREFIX == "/tl-fif" and names.SSM_LATEST_AMI_ID.startswith(names.SSM_PREFIX)


def test_a_second_stack_in_the_same_account_shows_the_collisions(aws, lambda_zip, capsys):
    """Two lean stacks side by side in moto. The second one fails on the first fixed name it meets (moto, like
    CloudFormation, refuses a second SSM parameter of the same name), and the failure names a listed resource."""
    fixed_ids = {where.split()[1] for where in _fixed_physical_names().values()}
    try:
        code, out, err = deploy(capsys, "tlfif-a", "--profile", "lean", "--yes", "--lambda-zip", str(lambda_zip))
        assert code == 0, out + err
        code, out, err = deploy(capsys, "tlfif-b", "--profile", "lean", "--yes", "--lambda-zip", str(lambda_zip))
    finally:  # the moto server outlives this test: leave no stack (and no fixed name) behind for the next one
        for stack in ("tlfif-b", "tlfif-a"):
            cli.main(["destroy", "--stack", stack, "--region", REGION, "--yes"])
        capsys.readouterr()
    failure = [line for line in (out + err).splitlines() if line.startswith("tl-fif deploy: the deployment failed")]
    with capsys.disabled():
        print(f"\n[two stacks] tlfif-b: exit {code}; {failure[0] if failure else 'deployed'}")
    assert code != 0 or not fixed_ids, "tlfif-b deployed: every listed collision is fixed, so empty STILL_FIXED"
    if code:
        (message,) = failure
        failed = message.split("failed: ", 1)[1].split(" ", 1)[0]
        assert failed in fixed_ids and "already exists" in message, message
