"""Fixtures every GUI test module shares: one Tk root per module (withdrawn, destroyed at the end, callback
errors collected) and a throwaway HOME with its own ~/.tl-fif.ini. conftest.py registers them; `root` needs the
`xvfb_display` session fixture, which each GUI module imports from support.xvfb.
"""
from __future__ import annotations

import gc
import tkinter as tk

import pytest

# Every root stays referenced until the process exits. A Tcl interpreter must be freed on the thread that made it:
# when the last reference to a root goes away in a worker thread (an app still finishing a request holds one) or in a
# GC pass another thread runs, freeing it aborts the whole test process.
_ROOTS: list[tk.Tk] = []


@pytest.fixture(scope="module")
def root(xvfb_display):
    root = tk.Tk()
    _ROOTS.append(root)
    root.withdraw()
    errors = root.errors = []
    root.report_callback_exception = lambda *exc: errors.append(exc)  # no cycle through the root
    yield root
    root.destroy()
    gc.collect()  # the apps built on this root sit in reference cycles: free their Tk variables here, on the Tk thread


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("TLFIF_CONFIG", str(home / ".tl-fif.ini"))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    return home
