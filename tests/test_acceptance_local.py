"""`tl-fif acceptance --local`: the whole checklist passes against a fresh local cloud, writes both reports, and
leaves the deployment as it found it. The GUI check runs the app on a private Xvfb (DISPLAY unset here)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from support.local_cloud import descendants, pid_running

from app.cli import acceptance
from app.cli.acceptance import checks
from app.cli.acceptance.target import LocalTarget
from tlfif_common import api


PNG = b"\x89PNG\r\n\x1a\n"


def test_acceptance_local_passes_every_check_and_writes_both_reports(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)  # the GUI check starts its own Xvfb
    report, page = tmp_path / "out.json", tmp_path / "out.html"

    code = acceptance.main(["--local", "--yes", "--report", str(report), "--html", str(page)])

    out = capsys.readouterr().out
    data = json.loads(report.read_text())
    assert code == 0, out
    assert [c["name"] for c in data["checks"]] == list(checks.CHECKS)
    assert all(c["verdict"] == "pass" for c in data["checks"]) and data["passed"]
    assert data["restored"]["gpu"] == api.GPU_STOPPED and data["restored"]["results_deleted"] >= 3
    html = page.read_text()
    assert html.startswith("<!doctype html>") and "TL-FIF acceptance: PASS" in html
    for name in checks.CHECKS:
        assert name in out and f"<td>{name}</td>" in html
    assert "≤ 90 s to first token" in out and "a minute is 3 s here" in out
    # GUI QA: the prompt typed into the window came back in its output pane, with the screen before and after
    [gui] = [c for c in data["checks"] if c["name"] == "gui"]
    assert gui["details"]["own_xvfb"] and gui["details"]["status"] == "done", gui
    assert f"You said: {gui['details']['prompt']}" in gui["details"]["shown"] and gui["details"]["seconds"] <= 60
    assert [s["name"] for s in gui["screenshots"]] == ["the window, before the prompt", "the window, the answer shown"]
    for shot in gui["screenshots"]:
        assert (tmp_path / shot["file"]).read_bytes().startswith(PNG) and "png_base64" not in shot
    assert html.count('src="data:image/png;base64,iVBORw0KGgo') == 2


def test_a_run_restores_a_running_gpu_and_keep_warm_and_deletes_its_results():
    with LocalTarget() as target:
        run = checks.Run(target)
        run.ensure_running(60)
        assert run.call("POST", "/keepwarm", json={"on": True, "max_minutes": 30}).status_code == 200
        run.delete_results()  # the warm-up job belongs to the test, not to the run below
        until = target.keep_warm_until()

        results, restored = acceptance.run_checks(target, ["stop-gpu", "idle-stop"], yes=True)

        assert [r.verdict for r in results] == ["pass", "pass"], results
        assert run.api_state() == api.GPU_READY
        # the same end as before (to the minute: /keepwarm takes minutes), though /stop switched it off
        assert restored["keep_warm_minutes"] < 30
        assert abs(target.keep_warm_until() - until) <= target.minute_seconds * 1000
        assert restored["results_deleted"] >= 1
        assert target.client("s3").list_objects_v2(Bucket=target.responses_bucket).get("KeyCount") == 0


def test_without_yes_a_refused_question_skips_the_gpu_checks(capsys):
    with LocalTarget() as target:
        results, _ = acceptance.run_checks(target, ["stop-gpu", "cost"], ask=lambda prompt: "n")
    assert [r.name for r in results] == ["cost"]
    assert "about €0.00" in capsys.readouterr().out


def test_gui_fails_when_no_answer_ends_in_the_window_in_time(monkeypatch, tmp_path):
    # The echo engine waits 2 s between words: the answer cannot end within a threshold lowered to 3 s.
    from app.cli.acceptance import gui_check

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setattr(gui_check, "ANSWER_S", 3.0)
    with LocalTarget(["--echo-delay-ms", "2000"]) as target:
        [result], _ = acceptance.run_checks(target, ["gui"], yes=True)
        gpu_after = checks.Run(target).api_state()
    assert result.verdict == "fail" and result.figure.startswith("no answer ended in the window within 3 s"), result
    assert result.details["answers"] == 1, result  # the prompt reached the app: it is the answer that is missing
    assert [s["name"] for s in result.screenshots] == ["the window, before the prompt", "the window, no answer"]
    assert gpu_after in (api.GPU_STOPPED, api.GPU_STOPPING)  # the GPU the prompt started was stopped again


def test_gui_fails_when_the_app_cannot_open_its_window(monkeypatch):
    # a display nobody serves: the app exits at once and the check says so without waiting out WINDOW_S
    monkeypatch.setenv("DISPLAY", ":4095")
    with LocalTarget() as target:
        [result], _ = acceptance.run_checks(target, ["gui"], yes=True)
    assert result.verdict == "fail" and "showed no window" in result.figure, result
    assert "cannot open a window" in result.details["app_log"], result


def test_an_unknown_check_is_a_usage_error(capsys):
    assert acceptance.main(["--local", "--only", "cold-start,coffee"]) == 2
    assert "unknown check coffee" in capsys.readouterr().err


def test_tl_fif_dispatches_acceptance(capsys):
    from app import cli

    assert cli.main(["acceptance", "--help"]) == 0
    assert "--stack" in capsys.readouterr().out


def test_a_killed_acceptance_run_leaves_no_app_display_or_cloud_behind(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "acceptance", "--local", "--only", "gui", "--yes"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        tree: dict[int, str] = {}
        while time.monotonic() < deadline and not any("gui_app" in cmd for cmd in tree.values()):
            time.sleep(0.2)
            tree = descendants(proc.pid)
        assert any("Xvfb" in cmd for cmd in tree.values()), tree
        time.sleep(2)  # the app's window is up and connected to the display
        tree = descendants(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(pid_running(pid) for pid in tree):
            time.sleep(0.2)
        assert not [cmd for pid, cmd in tree.items() if pid_running(pid)], tree
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_gui_signs_the_app_in_with_the_run_s_token_where_the_login_needs_a_browser(monkeypatch):
    # A stack's app endpoint: the hosted login in a browser, which no one answers here. The local cloud's endpoint
    # marked so, and a token of its issuer: the answer only comes if the app starts signed in with that token.
    import dataclasses

    class BrowserLoginTarget(LocalTarget):
        def app_endpoint(self):
            endpoint, _ = super().app_endpoint()
            return dataclasses.replace(endpoint, browser=True), self.token("gui-user")

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setenv("BROWSER", "false")  # were the app to open a login page, it would fail at once
    with BrowserLoginTarget() as target:
        [result], _ = acceptance.run_checks(target, ["gui"], yes=True)
    assert result.verdict == "pass" and result.details["status"] == "done", result
