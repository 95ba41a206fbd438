"""The ops template's RQL 8 items: IAM Access Analyzer, and MFA delete only where S3 allows it (DECISIONS: not on a
bucket with lifecycle rules), with docs/deploy.md saying the same."""
from __future__ import annotations

import pytest

from support.cfn_support import CFN_DIR, PROFILES, REPO, app_stack, evaluate, resources


@pytest.mark.parametrize("profile", PROFILES)
def test_an_access_analyzer_watches_the_account(profile):
    (_stack, _name, analyzer), = resources(app_stack(profile), "AWS::AccessAnalyzer::Analyzer")
    assert analyzer["Properties"]["Type"] == "ACCOUNT"
    assert "AnalyzerName" not in analyzer["Properties"]  # no fixed physical name to collide with


def _config_rules(ops) -> dict[str, dict]:
    return {name: res["Properties"] for name, res in ops.of_type("AWS::Config::ConfigRule").items()}


def test_mfa_delete_is_required_only_of_buckets_without_lifecycle_rules():
    ops = evaluate(CFN_DIR / "ops.yaml")
    mfa_rules = [p for p in _config_rules(ops).values()
                 if p.get("InputParameters", {}).get("isMfaDeleteEnabled") == "true"]
    assert mfa_rules, "a Config rule checks MFA delete (RQL 8)"
    for props in mfa_rules:
        target = props["Scope"]["ComplianceResourceId"]
        assert set(target) == {"Ref"} and target["Ref"] in ops.resources, f"{target} is not a bucket of this stack"
        bucket = ops.resources[target["Ref"]]
        assert bucket["Type"] == "AWS::S3::Bucket"
        assert "LifecycleConfiguration" not in bucket["Properties"], "S3 refuses MFA delete with lifecycle rules"
        assert bucket["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}


def test_the_lifecycle_buckets_are_checked_for_versioning_instead():
    data = evaluate(CFN_DIR / "data.yaml")
    ops = evaluate(CFN_DIR / "ops.yaml")
    scopes = [p["Scope"] for p in _config_rules(ops).values()
              if p["Source"]["SourceIdentifier"] == "S3_BUCKET_VERSIONING_ENABLED"
              and "isMfaDeleteEnabled" not in p.get("InputParameters", {})]
    assert len(scopes) == 1 and "ComplianceResourceId" not in scopes[0]
    for bucket in ("ResponsesBucket", "ModelsBucket"):
        props = data.resources[bucket]["Properties"]
        assert props["LifecycleConfiguration"]["Rules"]
        assert {"Key": scopes[0]["TagKey"], "Value": scopes[0]["TagValue"]} in props["Tags"], bucket


def test_deploy_doc_agrees_with_the_template():
    deploy = (REPO / "docs" / "deploy.md").read_text()
    assert "lifecycle expiry still works" not in deploy
    assert "TrailMfaDeleteRule" in deploy and "CloudTrail bucket" in deploy
    ops = evaluate(CFN_DIR / "ops.yaml")
    assert "TrailMfaDeleteRule" in ops.resources and "TrailBucketName" in ops.outputs
