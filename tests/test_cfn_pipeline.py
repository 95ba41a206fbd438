"""The pipeline's test stage runs what `make test` runs - the whole suite, GUI and end-to-end tests included - under
coverage of app/ and cloud/ with the 90 % gate, through the same `make coverage` a developer runs."""
from __future__ import annotations

import configparser
import re

from support.cfn_support import CFN_DIR, REPO, evaluate

MAKEFILE = (REPO / "Makefile").read_text()


def _rule(target: str) -> tuple[str, list[str]]:
    """(prerequisites, recipe lines) of a Makefile rule."""
    m = re.search(rf"^{target}:(.*)\n((?:\t.*\n)+)", MAKEFILE, re.M)
    assert m, f"no {target} rule"
    return m.group(1).strip(), [line.strip() for line in m.group(2).splitlines()]


def test_the_test_stage_runs_make_coverage_on_debian_within_the_ci_limit():
    project = evaluate(CFN_DIR / "pipeline.yaml").resources["TestProject"]["Properties"]
    commands = re.findall(r"^\s+- (.+)$", project["Source"]["BuildSpec"], re.M)
    assert commands == ["make coverage COVERAGE_MIN=90"]
    assert "bookworm" in project["Environment"]["Image"]  # Debian 12: scripts/system-packages.sh's apt names
    assert project["TimeoutInMinutes"] >= 90


def test_make_coverage_is_make_test_measured_over_app_and_cloud():
    test_needs, (test_cmd,) = _rule("test")
    cov_needs, (cov_cmd,) = _rule("coverage")
    assert cov_needs == test_needs  # system packages (redis-server, Xvfb, Chromium), venv, checkov
    assert test_cmd.endswith("$(PYTEST_ARGS)") and cov_cmd.endswith("$(PYTEST_ARGS)")
    extra = cov_cmd.removeprefix("$(BIN)/python -m pytest").removesuffix("$(PYTEST_ARGS)").split()
    assert test_cmd == "$(BIN)/python -m pytest $(PYTEST_ARGS)"
    assert {"--cov=app", "--cov=cloud", "--cov-fail-under=$(COVERAGE_MIN)"} <= set(extra)
    assert all(flag.startswith("--cov") for flag in extra)  # nothing deselected: no -m, -k or --ignore
    assert re.search(r"^COVERAGE_MIN \?= 90$", MAKEFILE, re.M)


def test_pytest_cov_is_in_the_test_extra():
    setup = configparser.ConfigParser()
    setup.read(REPO / "setup.cfg")
    extra = [line.split("#")[0].strip() for line in setup["options.extras_require"]["test"].splitlines()]
    assert any(re.match(r"pytest-cov\b", line) for line in extra)
