"""`make test-gui`: a screenshot of every GUI test's final window under build/gui-report/, with an index page.

Active only when $TLFIF_GUI_REPORT names a directory (the Makefile sets it). After each `gui`-marked test's call
phase (the window is still up; fixtures close it in teardown) the whole virtual display is grabbed with Pillow's
X grab (`ImageGrab.grab(xdisplay=...)`). A passing test's picture is `<test>.png`; a failing one's is
`FAILED-<test>.png`, so the failures sort first and say which test they belong to.
"""
from __future__ import annotations

import html
import os
import re
from pathlib import Path

import pytest

ENV_DIR = "TLFIF_GUI_REPORT"
_shots: list[tuple[str, str, str]] = []  # (test id, outcome, file name)


def _dir() -> Path | None:
    value = os.environ.get(ENV_DIR, "").strip()
    return Path(value) if value else None


def file_name(nodeid: str, failed: bool) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.replace("::", "__").replace("/", "_"))[:180]
    return f"{'FAILED-' if failed else ''}{stem}.png"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    folder = _dir()
    if folder is None or report.when != "call" or item.get_closest_marker("gui") is None:
        return
    display = os.environ.get("DISPLAY")
    if not display:
        return
    from PIL import ImageGrab

    folder.mkdir(parents=True, exist_ok=True)
    name = file_name(item.nodeid, report.failed)
    ImageGrab.grab(xdisplay=display).save(folder / name)
    _shots.append((item.nodeid, report.outcome, name))


def pytest_sessionfinish(session, exitstatus):
    folder = _dir()
    if folder is None or not _shots:
        return
    rows = "".join(f'<tr class="{o}"><td>{html.escape(t)}</td><td>{o}</td><td><a href="{n}"><img src="{n}" '
                   f'width="320"></a></td></tr>' for t, o, n in sorted(_shots, key=lambda s: (s[1] == "passed", s[0])))
    (folder / "index.html").write_text(
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>TL-FIF GUI tests</title><style>'
        "td{border:1px solid #ccc;padding:.3em}tr.failed td{color:#b00;font-weight:bold}</style></head><body>"
        f"<h1>TL-FIF GUI tests: {len(_shots)} final windows</h1><table>{rows}</table></body></html>\n",
        encoding="utf-8")
