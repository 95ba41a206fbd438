"""Each acceptance check fails against a local cloud broken in the way it guards against: none passes vacuously."""
from __future__ import annotations

import pytest

from app.cli import acceptance
from app.cli.acceptance import checks
from app.cli.acceptance.target import LocalTarget


def _only(target: LocalTarget, name: str) -> checks.Check:
    [result] = acceptance.run_checks(target, [name], yes=True)[0]
    return result


def test_stop_gpu_fails_when_ec2_takes_longer_than_10_s_to_show_stopping():
    with LocalTarget(["--fault", "slow-stop=12"]) as target:
        result = _only(target, "stop-gpu")
    assert result.verdict == "fail", result
    assert result.details["to_stopping_s"] >= 12, result


def test_cold_start_fails_when_the_boot_is_slower_than_the_threshold(monkeypatch):
    # 90 s of boot would make a slow test: the same check against a lowered threshold and a 6 s boot.
    monkeypatch.setattr(checks, "COLD_START_S", 3.0)
    with LocalTarget(["--boot-seconds", "6"]) as target:
        result = _only(target, "cold-start")
    assert result.verdict == "fail" and "first token" not in result.details["phases_s"], result


def test_idle_stop_fails_when_the_gpu_idles_longer_than_the_idle_setting():
    # The run thinks a minute is 3 s; the cloud's watcher waits 20 s for its idle minute.
    with LocalTarget(["--minute-seconds", "20"]) as target:
        result = _only(target, "idle-stop")
    assert result.verdict == "fail" and result.details["to_stopping_s"] > 14, result


def test_cost_fails_when_the_month_end_forecast_is_over_the_budget():
    from datetime import datetime, timezone

    from tlfif_common import prices
    from tlfif_router.cost_reporter import Spend, publish

    with LocalTarget() as target:
        now = datetime.now(timezone.utc)
        spend = Spend(month=f"{now:%Y-%m}", as_of=f"{now:%Y-%m-%dT%H:%M:%SZ}", month_to_date_eur=19.0 * now.day,
                      currency="USD", usd_to_eur=prices.usd_to_eur(), daily=[])
        publish(spend, cloudwatch=target.client("cloudwatch"), ssm=target.client("ssm"))
        result = _only(target, "cost")
    assert result.verdict == "fail" and result.details["forecast_eur"] > 20, result


def test_security_names_a_public_bucket_an_open_ssh_port_an_unencrypted_volume_and_imdsv1():
    with LocalTarget() as target:
        parts = target.parts()
        assert _only(target, "security").verdict == "pass"
        s3, ec2 = target.client("s3"), target.client("ec2")
        s3.delete_public_access_block(Bucket=parts.buckets[0])
        instance = ec2.describe_instances(InstanceIds=[parts.gpu_instance_id])["Reservations"][0]["Instances"][0]
        group = instance["SecurityGroups"][0]["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        volume = ec2.create_volume(AvailabilityZone=instance["Placement"]["AvailabilityZone"], Size=1)["VolumeId"]
        ec2.attach_volume(VolumeId=volume, InstanceId=parts.gpu_instance_id, Device="/dev/sdf")
        ec2.create_launch_template_version(LaunchTemplateId=parts.launch_templates[0],
                                           LaunchTemplateData={"MetadataOptions": {"HttpTokens": "optional"}})
        result = _only(target, "security")
    findings = "\n".join(result.details["findings"])
    assert result.verdict == "fail"
    for expected in (f"bucket {parts.buckets[0]} does not block public access", f"{group} allows port 22",
                     f"volume {volume} is not encrypted", "allows IMDSv1"):
        assert expected in findings, findings


def test_api_contract_fails_when_the_authorizer_skips_the_signature():
    with LocalTarget(["--fault", "unverified-tokens"]) as target:
        result = _only(target, "api-contract")
    assert result.verdict == "fail" and result.details["statuses"]["forged token"] == 200, result


@pytest.mark.parametrize("spec", ["slow-stop", "slow-stop=-1", "teleport"])
def test_cloud_up_refuses_an_unknown_or_malformed_fault(spec):
    from tlfif_local.faults import parse_faults

    with pytest.raises(ValueError, match="fault|slow-stop"):
        parse_faults([spec])
