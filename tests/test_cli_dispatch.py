"""The `tl-fif` command itself (the installed console script, run as a user runs it): its help names every
subcommand the dispatcher knows, and a mistyped subcommand is a usage error that names it, not the desktop app."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from app.cli import SUBCOMMANDS

TL_FIF = Path(sys.executable).parent / "tl-fif"


def tl_fif(*args: str) -> subprocess.CompletedProcess:
    # No display: a command that wrongly fell through to the desktop app could not open a window and would show it.
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    return subprocess.run([str(TL_FIF), *args], capture_output=True, text=True, env=env, timeout=60)


def test_the_help_names_every_subcommand():
    for flag in ("--help", "-h"):
        run = tl_fif(flag)
        assert run.returncode == 0, run.stderr
        assert run.stdout.startswith("The `tl-fif` command.")
        missing = [name for name in SUBCOMMANDS if f"tl-fif {name} " not in run.stdout]
        assert not missing, f"`tl-fif --help` does not mention {missing}:\n{run.stdout}"


def test_an_unknown_subcommand_is_a_usage_error_that_names_it():
    run = tl_fif("deplyo", "--stack", "x")
    assert run.returncode == 2
    assert run.stdout == ""
    assert "unknown command 'deplyo'" in run.stderr and "tl-fif --help" in run.stderr
    assert "Traceback" not in run.stderr
