"""`tl-fif configure`: writes the [aws] section from flags or from a stack's outputs (a real stack in moto's
CloudFormation, read through boto3 exactly as against AWS), keeps every other setting, exits 2 with a clear
message when it cannot."""
from __future__ import annotations

import json

import pytest

from app import cli
from app.models.settings import BACKEND_OPENAI, DEFAULT_REDIRECT_PORT, AwsSettings, Settings
from app.services import stack_outputs
from app.services import config_file
from support.cfn_support import ROOT_TEMPLATE, load

REGION = "eu-central-1"
VALUES = {
    "ApiUrl": "https://abc123.execute-api.eu-central-1.amazonaws.com",
    "UserPoolClientId": "4lq0example0client0id0abc",
    "HostedUiDomain": "https://tl-fif-123456789012.auth.eu-central-1.amazoncognito.com",
    "Region": REGION,
    "RedirectPort": "8765",
    "UserPoolId": "eu-central-1_Example",
}


@pytest.fixture
def config_path(tmp_path, monkeypatch):
    path = tmp_path / "tl-fif.ini"
    monkeypatch.setenv(config_file.ENV_CONFIG_PATH, str(path))
    return path


@pytest.fixture
def aws(moto_endpoint, monkeypatch):
    """boto3 anywhere in this process talks to the moto server (AWS_ENDPOINT_URL, honoured by boto3 itself)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    import boto3

    return boto3.client("cloudformation", region_name=REGION, endpoint_url=moto_endpoint)


def make_stack(client, name, outputs):
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    client.create_stack(StackName=name, TemplateBody=json.dumps(template))


def test_the_outputs_configure_reads_are_the_root_templates():
    outputs = load(ROOT_TEMPLATE)["Outputs"]
    for key in stack_outputs.REQUIRED_OUTPUTS + (stack_outputs.OUTPUT_REGION, stack_outputs.OUTPUT_REDIRECT_PORT):
        assert key in outputs, f"main.yaml has no output {key}"
    assert set(VALUES) <= set(outputs)


def test_from_stack_writes_the_aws_section_and_keeps_the_rest(aws, config_path, capsys):
    config_file.save(Settings(idle=12, backend=BACKEND_OPENAI, openai_model="gpt-4.1-mini",
                              openai_base_url="https://proxy.example/v1",
                              aws=AwsSettings(api_url="https://old.example", redirect_port=9000)))
    make_stack(aws, "tl-fif", VALUES)

    assert cli.main(["configure", "--from-stack", "tl-fif", "--region", REGION]) == 0

    settings = config_file.load().settings
    assert settings.aws == AwsSettings(api_url=VALUES["ApiUrl"], client_id=VALUES["UserPoolClientId"],
                                       auth_domain=VALUES["HostedUiDomain"], region=REGION,
                                       redirect_port=DEFAULT_REDIRECT_PORT)
    assert (settings.idle, settings.backend, settings.openai_model, settings.openai_base_url) == \
           (12, BACKEND_OPENAI, "gpt-4.1-mini", "https://proxy.example/v1")
    assert settings.aws.configured
    out = capsys.readouterr().out
    assert str(config_path) in out and VALUES["UserPoolClientId"] in out


def test_from_stack_without_region_output_uses_the_region_asked(aws, config_path):
    make_stack(aws, "older", {k: v for k, v in VALUES.items() if k not in ("Region", "RedirectPort")})
    assert cli.main(["configure", "--from-stack", "older", "--region", REGION, "--redirect-port", "9100"]) == 0
    settings = config_file.load().settings
    assert (settings.aws.region, settings.aws.redirect_port) == (REGION, 9100)


def test_stack_not_found_exits_2_and_says_so(aws, config_path, capsys):
    assert cli.main(["configure", "--from-stack", "no-such-stack", "--region", REGION]) == 2
    err = capsys.readouterr().err
    assert "no-such-stack" in err and "not found" in err and REGION in err
    assert not config_path.exists()


def test_missing_outputs_are_named(aws, config_path, capsys):
    make_stack(aws, "not-tl-fif", {"ApiUrl": VALUES["ApiUrl"]})
    assert cli.main(["configure", "--from-stack", "not-tl-fif", "--region", REGION]) == 2
    err = capsys.readouterr().err
    assert "UserPoolClientId" in err and "HostedUiDomain" in err and "ApiUrl" not in err.split("output", 1)[1]
    assert not config_path.exists()


def test_flags_write_the_aws_section(config_path):
    config_file.save(Settings(idle=7))
    assert cli.main(["configure", "--api-url", "https://x.execute-api.eu-west-1.amazonaws.com/",
                     "--client-id", "cid", "--auth-domain", "https://d.auth.eu-west-1.amazoncognito.com",
                     "--region", "eu-west-1", "--redirect-port", "8800"]) == 0
    settings = config_file.load().settings
    assert settings.aws == AwsSettings(api_url="https://x.execute-api.eu-west-1.amazonaws.com", client_id="cid",
                                       auth_domain="https://d.auth.eu-west-1.amazoncognito.com",
                                       region="eu-west-1", redirect_port=8800)
    assert settings.idle == 7


@pytest.mark.parametrize("argv, message", [
    (["--api-url", "https://a.example", "--client-id", "c"], "--auth-domain"),
    (["--api-url", "ftp://a.example", "--client-id", "c", "--auth-domain", "https://d.example"], "--api-url"),
    (["--from-stack", "s", "--client-id", "c"], "cannot be combined"),
    (["--api-url", "https://a.example", "--client-id", "c", "--auth-domain", "https://d.example",
      "--redirect-port", "70000"], "--redirect-port"),
    (["--bogus"], "unrecognized"),
    ([], "--from-stack"),
])
def test_usage_errors_exit_2(config_path, capsys, argv, message):
    assert cli.main(["configure", *argv]) == 2
    assert message in capsys.readouterr().err
    assert not config_path.exists()


def test_help_exits_0(capsys):
    assert cli.main(["configure", "--help"]) == 0
    assert "--from-stack" in capsys.readouterr().out
