"""cfn-lint and checkov pass on every template in cloud/cfn (issue "CloudFormation" acceptance).

cfn-lint runs from .venv with the commented .cfnlintrc. checkov runs from .venv-tools (its pins clash with the
app's: see Makefile and scripts/tools-requirements.txt); `make test` installs it there first, and this test fails,
never skips, when it is missing. checkov runs once per session over all templates (module fixture).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support.cfn_support import CFN_DIR, REPO, template_paths

CHECKOV = REPO / ".venv-tools" / "bin" / "checkov"
# The checks the issue names; they must PASS (not be skipped) wherever they apply.
REQUIRED = {"CKV_AWS_3", "CKV_AWS_19", "CKV_AWS_24", "CKV_AWS_53", "CKV_AWS_54", "CKV_AWS_55", "CKV_AWS_56",
            "CKV_AWS_57", "CKV_AWS_79"}
# CKV_AWS_3 looks at AWS::EC2::Volume; the templates have none (the GPU volume comes from the launch template,
# which CKV_AWS_79 and the template tests check), so it can only be absent, never failed.
NOT_APPLICABLE = {"CKV_AWS_3"}


def test_cfn_lint_passes_on_every_template():
    assert len(template_paths()) == 8  # scale.yaml: GpuMode scale, nested in gpu.yaml
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(cfn_lint)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_cfnlintrc_explains_every_ignored_check():
    text = (REPO / ".cfnlintrc").read_text()
    lines = text.splitlines()
    ignored = [i for i, line in enumerate(lines) if line.strip().startswith("- W") or line.strip().startswith("- E")]
    assert ignored, "the rc names what it ignores"
    for index in ignored:
        assert lines[index - 1].strip().startswith("#"), f"no comment above {lines[index].strip()}"


@pytest.fixture(scope="module")
def checkov_report():
    assert CHECKOV.exists(), f"checkov is not installed at {CHECKOV}: run `make test` (it installs .venv-tools)"
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    result = subprocess.run(
        [str(CHECKOV), "--directory", str(CFN_DIR), "--framework", "cloudformation", "--output", "json",
         "--compact", "--skip-download"],
        cwd=REPO, capture_output=True, text=True, timeout=600, env=env)
    assert result.stdout.strip(), f"checkov printed nothing (exit {result.returncode}): {result.stderr[-2000:]}"
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    return {"returncode": result.returncode, "results": [r["results"] for r in reports], "summary":
            [r["summary"] for r in reports]}


def _checks(report, kind):
    return [check for results in report["results"] for check in results.get(kind, [])]


def test_checkov_finds_no_failed_check(checkov_report):
    failed = [f"{c['check_id']} {c['resource']} ({c['file_path']})" for c in _checks(checkov_report, "failed_checks")]
    assert failed == []
    assert checkov_report["returncode"] == 0
    assert all(summary["parsing_errors"] == 0 for summary in checkov_report["summary"])
    scanned = {c["file_path"].lstrip("/") for c in _checks(checkov_report, "passed_checks")}
    # main.yaml holds only nested stacks, which no checkov check looks at
    assert scanned == {path.name for path in template_paths()} - {"main.yaml"}


def test_checkov_required_checks_pass_and_are_never_suppressed(checkov_report):
    passed = {c["check_id"] for c in _checks(checkov_report, "passed_checks")}
    skipped = {c["check_id"] for c in _checks(checkov_report, "skipped_checks")}
    assert not (REQUIRED & skipped), f"suppressed: {REQUIRED & skipped}"
    assert REQUIRED - NOT_APPLICABLE <= passed, f"never evaluated: {REQUIRED - NOT_APPLICABLE - passed}"


def test_every_checkov_suppression_is_justified(checkov_report):
    skipped = _checks(checkov_report, "skipped_checks")
    assert skipped, "expected some justified suppressions"
    for check in skipped:
        comment = (check.get("check_result", {}).get("suppress_comment") or "").strip()
        assert len(comment) >= 20, f"{check['check_id']} on {check['resource']} has no real justification"
