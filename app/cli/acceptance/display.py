"""The X display the GUI check runs the app on: $DISPLAY when there is one, else a private Xvfb for the run.

    with VirtualDisplay() as display:   # display.name is ":N" (None: no display and no Xvfb here)
        png = display.screenshot()      # the whole screen as PNG bytes

Xvfb comes from Debian's `xvfb` package; the screen is grabbed with Pillow's X grab (`ImageGrab.grab(xdisplay=...)`).
"""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import time
from pathlib import Path

SCREEN = "1280x800x24"
FIRST, LAST = 140, 400  # display numbers tried for a private Xvfb (tests start theirs from 90)


class VirtualDisplay:
    def __init__(self, env: dict[str, str] | None = None):
        self.name: str | None = (env if env is not None else os.environ).get("DISPLAY") or None
        self.why_none = ""
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> VirtualDisplay:
        if self.name:
            return self
        binary = shutil.which("Xvfb")
        if binary is None:
            self.why_none = "no display: DISPLAY is unset and Xvfb is not installed (Debian package xvfb)"
            return self
        for number in range(FIRST, LAST):
            if Path(f"/tmp/.X{number}-lock").exists() or Path(f"/tmp/.X11-unix/X{number}").exists():
                continue
            # -terminate: the server exits when its last client goes, so the app quitting (it quits when this
            # process dies) takes the server with it
            proc = subprocess.Popen([binary, f":{number}", "-screen", "0", SCREEN, "-nolisten", "tcp", "-terminate"],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and proc.poll() is None:
                if Path(f"/tmp/.X11-unix/X{number}").exists():
                    self.name, self.proc = f":{number}", proc
                    return self
                time.sleep(0.05)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            # another process took this number first (or Xvfb failed on it): try the next one
        self.why_none = "no display: Xvfb found no free display number"
        return self

    def screenshot(self) -> bytes:
        from PIL import ImageGrab

        out = io.BytesIO()
        ImageGrab.grab(xdisplay=self.name).save(out, format="PNG")
        return out.getvalue()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> VirtualDisplay:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
