"""Fixtures every GUI test module shares: one Tk root per module (withdrawn, destroyed at the end, callback
errors collected) and a throwaway HOME with its own ~/.tl-fif.ini. conftest.py registers them; `root` needs the
`xvfb_display` session fixture, which each GUI module imports from support.xvfb.
"""
from __future__ import annotations

import tkinter as tk

import pytest


@pytest.fixture(scope="module")
def root(xvfb_display):
    root = tk.Tk()
    root.withdraw()
    root.errors = []
    root.report_callback_exception = lambda *exc: root.errors.append(exc)
    yield root
    root.destroy()


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("TLFIF_CONFIG", str(home / ".tl-fif.ini"))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    return home
