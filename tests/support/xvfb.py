"""A virtual X display for tests that drive the real Tk window: `Xvfb :N -screen 0 1280x800x24 -nolisten tcp`.

    from support.xvfb import xvfb_display   # noqa: F401  (a session fixture: starts Xvfb, sets DISPLAY)

Xvfb comes from Debian's `xvfb` package (scripts/system-packages.sh installs it for `make test`).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

SCREEN = "1280x800x24"


class XvfbServer:
    """Starts Xvfb on the first free display number from `first`; `display` is ":N"."""

    def __init__(self, first: int = 90, last: int = 400):
        self.first, self.last = first, last
        self.display: str | None = None
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> XvfbServer:
        binary = shutil.which("Xvfb") or ("/usr/bin/Xvfb" if Path("/usr/bin/Xvfb").exists() else None)
        if binary is None:
            raise RuntimeError("Xvfb is not installed (Debian package: xvfb; `make test` installs it)")
        for number in range(self.first, self.last):
            if Path(f"/tmp/.X{number}-lock").exists() or Path(f"/tmp/.X11-unix/X{number}").exists():
                continue
            proc = subprocess.Popen([binary, f":{number}", "-screen", "0", SCREEN, "-nolisten", "tcp"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and proc.poll() is None:
                if Path(f"/tmp/.X11-unix/X{number}").exists():
                    self.display, self.proc = f":{number}", proc
                    return self
                time.sleep(0.05)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            # lost a race for this number (or it failed): try the next one
        raise RuntimeError("no free X display number for Xvfb")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> XvfbServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@pytest.fixture(scope="session")
def xvfb_display():
    """A session-wide Xvfb; DISPLAY points at it for the test process (and the processes it starts)."""
    server = XvfbServer().start()
    previous = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = server.display
    try:
        yield server.display
    finally:
        server.stop()
        if previous is None:
            os.environ.pop("DISPLAY", None)
        else:
            os.environ["DISPLAY"] = previous
