"""The DR test (TL-FIF-DR-Test in ops.yaml) runs in a mode of its own and always cleans up: its node never joins
the production queue or metrics, a self-test job goes through the real watcher and engine, every way through the
document ends in clean-up and a report, and the clean-up and report scripts do their job against moto."""
from __future__ import annotations

import json
import re
import textwrap

import pytest
import yaml

from support.cfn_support import CFN_DIR, ENV_LINE, REPO, app_stack, evaluate, gpu_env_file, module_file, sub_text
from support.watcher_harness import BUCKET, make_config, running
from tlfif_common import names
from tlfif_watcher import dr_selftest
from tlfif_watcher.engines.echo import EchoEngine
from tlfif_watcher.watcher import Watcher

GPU_ENV_FILE = "/etc/tl-fif/watcher.env"
DR_ONLY = {names.ENV_REDIS_URL, names.ENV_METRICS_NAMESPACE, names.ENV_DEFAULT_IDLE_MINUTES, names.ENV_GPU_MODE}


@pytest.fixture(scope="module")
def document() -> dict:
    return evaluate(CFN_DIR / "ops.yaml").resources["DrTestDocument"]["Properties"]["Content"]


def _steps(document) -> dict[str, dict]:
    return {step["name"]: step for step in document["mainSteps"]}


def _script(document, step: str) -> dict:
    """The handler of an aws:executeScript step, compiled from the template's text."""
    namespace: dict = {}
    exec(compile(textwrap.dedent(_steps(document)[step]["inputs"]["Script"]), f"<{step}>", "exec"), namespace)
    return namespace


def _dr_cloud_config(document) -> dict:
    user_data = _steps(document)["launch"]["inputs"]["UserData"]
    text = sub_text(user_data["Fn::Base64"])
    return yaml.safe_load(re.sub(r"\$\{[^}]+\}", "X", text))


def _dr_env(document) -> dict[str, str]:
    (entry,) = [f for f in _dr_cloud_config(document)["write_files"] if f["path"] == GPU_ENV_FILE]
    return dict(m.groups() for line in entry["content"].splitlines() if (m := ENV_LINE.match(line)))


def test_the_dr_node_never_joins_the_production_queue_or_metrics(document):
    env = _dr_env(document)
    assert re.fullmatch(r"redis://127\.0\.0\.1:\d+/\d+", env[names.ENV_REDIS_URL])
    assert env[names.ENV_METRICS_NAMESPACE] == dr_selftest.DR_METRICS_NAMESPACE != names.METRICS_NAMESPACE
    assert env[names.ENV_GPU_MODE] == names.GPU_MODE_SINGLE  # one node outside any group, even in GpuMode scale
    runcmd = [" ".join(cmd) for cmd in _dr_cloud_config(document)["runcmd"]]
    assert "systemctl start redis-server.service" in runcmd
    install = (REPO / "cloud" / "gpu" / "image" / "scripts" / "install.sh").read_text()
    assert "redis-server" in install and "systemctl disable --now redis-server.service" in install
    for profile in ("full", "lean"):  # everything else as on a production node, so the test proves that node
        production = gpu_env_file(app_stack(profile), GPU_ENV_FILE)
        assert set(production) == set(env), profile
        for key in set(env) & set(production) - DR_ONLY - {names.ENV_ENGINE_MODEL}:
            assert env[key] == production[key], f"{profile}: {key}"
    assert env[names.ENV_ENGINE_MODEL] == names.DEFAULT_MODEL


def test_every_way_through_the_document_cleans_up_then_reports(document):
    steps = _steps(document)
    order = list(steps)

    def successors(name: str) -> set[str]:
        step = steps[name]
        if step.get("isEnd"):
            return set()
        out = {order[order.index(name) + 1]}
        for key in ("onFailure", "onCancel"):
            if step.get(key, "Abort") != "Continue":
                target = step.get(key, "Abort")
                out.add(target.removeprefix("step:") if target.startswith("step:") else "<abort>")
        return out

    def paths(name: str, seen: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
        if name == "<abort>":
            return [seen + (name,)]
        nexts = successors(name)
        return [seen + (name,)] if not nexts else [p for n in nexts for p in paths(n, seen + (name,))]

    all_paths = paths(order[0])
    assert all_paths
    for path in all_paths:
        assert path[-1] == "report" and "cleanUp" in path, " -> ".join(path)
    assert steps["report"].get("isEnd") is True
    launch = steps["launch"]["inputs"]
    assert launch["InstanceInitiatedShutdownBehavior"] == "terminate"  # the node's own deadline ends it too
    tags = {t["Key"]: t["Value"] for spec in launch["TagSpecifications"] for t in spec["Tags"]}
    assert tags["DrRun"] == "{{ automation:EXECUTION_ID }}" and tags["Role"] == "gpu-dr"
    self_test = steps["selfTest"]["inputs"]["Parameters"]["commands"]
    assert self_test[-1] == "/opt/tl-fif/venv/bin/python -m tlfif_watcher.dr_selftest"
    assert module_file("tlfif_watcher.dr_selftest") is not None


def test_clean_up_removes_what_this_run_made_and_nothing_else(document, moto_clients, moto_endpoint, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    ec2, ssm = moto_clients("ec2"), moto_clients("ssm")

    def launch(**tags):
        spec = [{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]
        return ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1,
                                 TagSpecifications=spec)["Instances"][0]["InstanceId"]

    ours = [launch(Role="gpu-dr", DrRun="run-1"), launch(Role="gpu-dr", DrRun="run-1")]
    other_run = launch(Role="gpu-dr", DrRun="run-2")
    production = launch(Role="gpu", Project="tl-fif")
    image = ec2.create_image(InstanceId=ours[0], Name="tl-fif-dr-1", TagSpecifications=[{
        "ResourceType": "image", "Tags": [{"Key": "Role", "Value": "gpu-dr"}, {"Key": "DrRun", "Value": "run-1"}]}])
    ssm.put_parameter(Name=f"/tl-fif/ready/{ours[0]}", Value="1", Type="String")

    result = _script(document, "cleanUp")["handler"]({"DrRun": "run-1"}, None)

    state = {i["InstanceId"]: i["State"]["Name"] for r in ec2.describe_instances()["Reservations"]
             for i in r["Instances"]}
    assert all(state[i] == "terminated" for i in ours)
    assert state[other_run] == "running" and state[production] == "running"
    assert sorted(result["Terminated"]) == sorted(ours) and result["Deregistered"] == [image["ImageId"]]
    assert not ec2.describe_images(ImageIds=[image["ImageId"]])["Images"]
    with pytest.raises(ssm.exceptions.ParameterNotFound):
        ssm.get_parameter(Name=f"/tl-fif/ready/{ours[0]}")
    assert _script(document, "cleanUp")["handler"]({"DrRun": "run-1"}, None) == {"Terminated": [],
                                                                                  "Deregistered": []}


@pytest.mark.parametrize("statuses, passed", [
    ({"registerImage": "Success", "launch": "Success", "selfTest": "Success", "cleanUp": "Success"}, True),
    ({"registerImage": "Success", "launch": "Success", "selfTest": "Failed", "cleanUp": "Success"}, False),
    ({"registerImage": "Failed", "cleanUp": "Success"}, False),
])
def test_the_report_mails_the_outcome_and_fails_the_run_when_anything_failed(document, moto_clients, statuses,
                                                                           passed):
    sns, sqs = moto_clients("sns"), moto_clients("sqs")
    topic = sns.create_topic(Name="tl-fif-alarms")["TopicArn"]
    inbox = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=inbox_arn)

    class AutomationHistory:  # moto keeps no automation executions: this stands in for that one read
        def get_automation_execution(self, AutomationExecutionId):
            steps = [{"StepName": k, "StepStatus": v} for k, v in statuses.items()]
            return {"AutomationExecution": {"StepExecutions": steps + [{"StepName": "report",
                                                                        "StepStatus": "InProgress"}]}}

    class Clients:
        @staticmethod
        def client(service):
            return AutomationHistory() if service == "ssm" else moto_clients(service)

    namespace = _script(document, "report")
    namespace["boto3"] = Clients
    events = {"ExecutionId": "exec-1", "TopicArn": topic}
    if passed:
        assert namespace["handler"](events, None) == {"Passed": True}
    else:
        with pytest.raises(RuntimeError, match="FAILED"):
            namespace["handler"](events, None)
    (message,) = sqs.receive_message(QueueUrl=inbox, WaitTimeSeconds=1)["Messages"]
    body = json.loads(message["Body"])
    assert body["Subject"] == "TL-FIF DR test " + ("passed" if passed else "FAILED")
    assert all(f"{k}: {v}" in body["Message"] for k, v in statuses.items())


def test_the_self_test_job_goes_through_the_watcher_and_its_engine(redis_url, redis_client, queue, s3):
    watcher = Watcher(make_config(redis_url), redis_client=redis_client, s3=s3, engine=EchoEngine(0))
    watcher.claim_timeout = 0.2
    with running(watcher):
        summary = dr_selftest.run_selftest(queue, s3, BUCKET, timeout_s=30, poll_s=0.05)
    assert summary["answer"].endswith(dr_selftest.PROMPT)  # the echo engine says the prompt back
    assert summary["result"] == f"s3://{BUCKET}/{dr_selftest.RESULT_PREFIX}{summary['job_id']}.json"
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=dr_selftest.RESULT_PREFIX)["KeyCount"] == 1


def test_the_self_test_fails_without_a_watcher(queue, s3):
    with pytest.raises(RuntimeError, match="no final result"):
        dr_selftest.run_selftest(queue, s3, BUCKET, timeout_s=0.5, poll_s=0.05)
