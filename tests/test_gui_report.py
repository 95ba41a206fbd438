"""`make test-gui` keeps a screenshot of every GUI test's final window under build/gui-report/ with an index page."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from support.gui_report import ENV_DIR, file_name

TESTS = Path(__file__).parent


def test_a_failing_test_s_screenshot_is_named_after_the_test():
    nodeid = "tests/test_gui_app.py::test_the_window_and_its_widgets"
    assert file_name(nodeid, failed=True) == "FAILED-tests_test_gui_app.py__test_the_window_and_its_widgets.png"
    assert file_name(nodeid, failed=False) == "tests_test_gui_app.py__test_the_window_and_its_widgets.png"


def test_a_gui_run_writes_the_final_window_and_an_index(tmp_path):
    report = tmp_path / "gui-report"
    env = dict(os.environ, **{ENV_DIR: str(report)})
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "gui",
                          f"{TESTS}/test_gui_app.py::test_the_window_and_its_widgets"],
                         cwd=TESTS.parent, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:]
    [shot] = sorted(report.glob("*.png"))
    assert shot.name.endswith("test_the_window_and_its_widgets.png") and shot.stat().st_size > 1000
    assert shot.name in (report / "index.html").read_text()
