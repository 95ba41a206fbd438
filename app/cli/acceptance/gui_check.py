"""GUI QA: the desktop app, started against the run's deployment on an X display, answers a prompt a user types.

The app runs in a child process (gui_app.py) on $DISPLAY or a private Xvfb. The prompt is typed and sent with
Ctrl+Enter as real X key events (xdotool, through the XTEST extension: what a keyboard does), into the window the
child reports; the answer is read back from what the window's output pane shows. The screen is grabbed with the
window up and with the answer shown. A GPU the prompt started is stopped again at the end.
"""
from __future__ import annotations

import base64
import dataclasses
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from tlfif_common import api

from . import gui_app
from .checks import FAIL, NOT_RUN, PASS, STOP_S, Check, Run
from .display import VirtualDisplay
from .target import TargetError

NAME = "gui"
ANSWER_S = 60.0   # Ctrl+Enter → the answer has ended in the window
WINDOW_S = 60.0   # the app's window is up (imports, Tk, the first poll)
TYPE_DELAY_MS = 15
POLL_S = 0.2


def _threshold(echo: bool) -> str:
    what = "repeating the prompt's marker (echo engine)" if echo else "not empty"
    return f"an answer in the window ≤ {ANSWER_S:.0f} s after Ctrl+Enter, {what}"


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _wait(probe: Callable[[], dict | None], timeout: float, alive: Callable[[], bool]) -> dict | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        found = probe()
        if found:
            return found
        time.sleep(POLL_S)
    return probe()


def _xdotool(display: str, *args: str) -> None:
    done = subprocess.run(["xdotool", *args], timeout=30, capture_output=True, text=True,
                          env=dict(os.environ, DISPLAY=display))
    if done.returncode:
        raise RuntimeError(f"xdotool {' '.join(args[:2])}: {(done.stderr or done.stdout).strip()[:200]}")


def check_gui(run: Run) -> Check:
    target = run.target
    threshold = _threshold(target.echo_engine)
    try:
        endpoint, id_token = target.app_endpoint()
    except TargetError as err:
        return Check(NAME, f"not run: needs a signed-in user ({err})", threshold, NOT_RUN)
    if shutil.which("xdotool") is None:
        return Check(NAME, "not run: xdotool is not installed (Debian package xdotool)", threshold, NOT_RUN)
    with VirtualDisplay() as display:
        if not display.name:
            return Check(NAME, f"not run: {display.why_none}", threshold, NOT_RUN)
        gpu_before = run.api_state()
        try:
            with tempfile.TemporaryDirectory(prefix="tlfif-gui-qa-") as work:
                return _drive(Path(work), display, endpoint, id_token, threshold, target.echo_engine)
        finally:
            # the prompt started a stopped GPU: stop it again, as the run found it
            if gpu_before in (api.GPU_STOPPED, api.GPU_STOPPING):
                run.ensure_stopped(STOP_S * 12)


def _drive(work: Path, display: VirtualDisplay, endpoint, id_token: str | None, threshold: str,
           echo: bool) -> Check:
    spec = {"endpoint": dataclasses.asdict(endpoint), "id_token": id_token}
    fd = os.open(work / gui_app.ENDPOINT_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # a login secret
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(spec, out)
    env = dict(os.environ, DISPLAY=display.name, HOME=str(work), TLFIF_DATA_DIR=str(work / "data"),
               PYTHONUNBUFFERED="1")
    log_path = work / "app.log"
    window_file = work / gui_app.WINDOW_FILE
    shots: list[dict[str, str]] = []
    details: dict = {"display": display.name, "own_xvfb": display.proc is not None}

    def shoot(name: str) -> None:
        try:
            png = display.screenshot()
        except OSError as err:  # the display went with the app (a private Xvfb ends with its last client)
            details.setdefault("screenshot_errors", []).append(f"{name}: {err}")
            return
        shots.append({"name": name, "png_base64": base64.b64encode(png).decode()})

    def log_tail() -> str:
        return log_path.read_text(errors="replace")[-1500:] if log_path.exists() else ""

    with open(log_path, "wb") as log:
        # stdin is a pipe this process holds: when it closes (or this process dies) the app quits.
        proc = subprocess.Popen([sys.executable, "-m", "app.cli.acceptance.gui_app", str(work)],
                                stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        window = _wait(lambda: _read(window_file), WINDOW_S, lambda: proc.poll() is None)
        if not window:
            details["app_log"] = log_tail()
            return Check(NAME, f"the app showed no window within {WINDOW_S:.0f} s (exit {proc.poll()})",
                         threshold, FAIL, details)
        shoot("the window, before the prompt")
        marker = secrets.token_hex(4)
        prompt = f"acceptance gui check {marker}"
        details["prompt"] = prompt
        _xdotool(display.name, "windowfocus", "--sync", str(window["window_id"]))
        _xdotool(display.name, "type", "--delay", str(TYPE_DELAY_MS), prompt)
        _xdotool(display.name, "key", "ctrl+Return")
        sent = time.monotonic()

        def ended() -> dict | None:
            seen = _read(window_file) or {}
            answers = [a for a in seen.get("answers", []) if a["status"] != "pending"]
            return answers[-1] if answers else None

        answer = _wait(ended, ANSWER_S, lambda: proc.poll() is None)
        took = time.monotonic() - sent
        shoot("the window, the answer shown" if answer else "the window, no answer")
    finally:
        if proc.stdin:
            proc.stdin.close()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    last = _read(window_file) or {}
    details.update(gpu=last.get("gpu"), answers=len(last.get("answers", [])))
    if answer is None:
        details["app_log"] = log_tail()
        typed = "a prompt was sent" if last.get("answers") else "no prompt reached the app"
        return Check(NAME, f"no answer ended in the window within {ANSWER_S:.0f} s ({typed})", threshold, FAIL,
                     details, shots)
    shown = answer["shown"]
    details.update(status=answer["status"], error=answer["error"], shown=shown[:500], seconds=round(took, 1))
    ok = (answer["status"] == "done" and took <= ANSWER_S and bool(shown.strip())
          and (marker in shown or not echo))
    figure = f"answer {answer['status']} in the window after {took:.1f} s: {shown.strip()[:80]!r}"
    if answer["error"]:
        figure += f" ({answer['error'][:120]})"
    return Check(NAME, figure, threshold, PASS if ok else FAIL, details, shots)
