"""`python -m app` opens the window titled TL-FIF and exits cleanly on SIGTERM — with an AWS stack configured, and
with none (then it runs the local cloud as a child and stops it on exit)."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.xvfb import xvfb_display  # noqa: F401  (session fixture)

pytestmark = [pytest.mark.gui, pytest.mark.timeout(90)]


def children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            raw = stat.read_text()
        except OSError:
            continue
        if int(raw[raw.rindex(")") + 2:].split()[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def wait_for_window(proc, timeout: float = 30.0) -> None:
    xdotool = shutil.which("xdotool")
    assert xdotool, "xdotool is not installed (Debian package: xdotool)"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()
        found = subprocess.run([xdotool, "search", "--name", "^TL-FIF$"], capture_output=True, text=True)
        if found.stdout.strip():
            return
        time.sleep(0.2)
    raise AssertionError("no window titled TL-FIF")


def start_app(tmp_path, ini: str | None):
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, HOME=str(home), TLFIF_CONFIG=str(home / ".tl-fif.ini"))
    if ini:
        (home / ".tl-fif.ini").write_text(ini)
    return subprocess.Popen([sys.executable, "-m", "app"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def stop_app(proc) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_python_m_app_with_an_aws_stack_configured(xvfb_display, tmp_path):  # noqa: F811
    ini = ("[aws]\napi_url = http://127.0.0.1:9\nclient_id = abc\n"
           "auth_domain = http://127.0.0.1:9\nregion = eu-central-1\n")
    proc = start_app(tmp_path, ini)
    wait_for_window(proc)
    assert stop_app(proc) == 0


def test_python_m_app_runs_the_local_cloud_and_stops_it_on_exit(xvfb_display, tmp_path):  # noqa: F811
    proc = start_app(tmp_path, None)
    wait_for_window(proc)
    deadline = time.monotonic() + 30
    cloud = []
    while time.monotonic() < deadline and not cloud:
        cloud = [pid for pid in children(proc.pid) if "tlfif_local up" in cmdline(pid)]
        time.sleep(0.2)
    assert cloud, "the app started the local cloud"
    assert stop_app(proc) == 0
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and Path(f"/proc/{cloud[0]}").exists() \
            and "tlfif_local" in cmdline(cloud[0]):
        time.sleep(0.2)
    assert "tlfif_local" not in cmdline(cloud[0]), "the local cloud stopped with the app"
