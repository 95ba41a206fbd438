"""The answer parser's child process: it parses what the render worker sends, and it never outlives the app's
process, even when that is killed (SIGKILL: no clean-up code runs)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARENT = """
import sys, time
from app.bus import Bus, Outbox
from app.controllers.render_controller import RenderController

if __name__ == "__main__":  # the parser process is spawned: it imports this module again
    controller = RenderController(Bus(), Outbox())
    print(controller._parse("**bold** and `code`"), flush=True)
    print(" ".join(str(pid) for pid in controller._parser._processes), flush=True)
    time.sleep(120)
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


def test_the_parser_process_parses_and_exits_when_the_app_is_killed(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    parent = subprocess.Popen([sys.executable, str(script)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        segments = parent.stdout.readline()
        assert "('bold', ('md_bold',))" in segments and "('code', ('md_code',))" in segments
        [child] = [int(pid) for pid in parent.stdout.readline().split()]
        assert alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 10
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(child), "the parser process outlived the app"
    finally:
        parent.kill()
        parent.wait(10)
