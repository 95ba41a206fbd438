"""The acceptance run's outputs: a terminal table, a JSON report and a one-file HTML report (screenshots inline)."""
from __future__ import annotations

import base64
import html
import json
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

from .checks import Check

COLUMNS = ("check", "figure", "threshold", "verdict")


def table(checks: Sequence[Check]) -> str:
    rows = [COLUMNS] + [(c.name, c.figure, c.threshold, c.verdict.upper()) for c in checks]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = [" · ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def as_dict(checks: Sequence[Check], *, target: str, started: str, restored: dict) -> dict:
    """`passed`: no check failed and at least one passed (a check that could not run is listed, not counted)."""
    return {"target": target, "started": started,
            "passed": not any(c.failed for c in checks) and any(c.passed for c in checks),
            "restored": restored, "checks": [asdict(c) for c in checks]}


def write_json(path: Path, report: dict) -> None:
    """The report, with each screenshot written beside it as `<report>-<check>-<n>.png` and named by its file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    checks = []
    for check in report["checks"]:
        shots = []
        for number, shot in enumerate(check["screenshots"], 1):
            image = path.with_name(f"{path.stem}-{check['name']}-{number}.png")
            image.write_bytes(base64.b64decode(shot["png_base64"]))
            shots.append({"name": shot["name"], "file": image.name})
        checks.append(dict(check, screenshots=shots))
    data = dict(report, checks=checks)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_html(path: Path, report: dict) -> None:
    e = html.escape
    rows = []
    for check in report["checks"]:
        shots = "".join(f'<figure><img alt="{e(s["name"])}" src="data:image/png;base64,{s["png_base64"]}">'
                        f'<figcaption>{e(s["name"])}</figcaption></figure>' for s in check["screenshots"])
        details = e(json.dumps(check["details"], indent=1, ensure_ascii=False))
        css = check["verdict"].replace(" ", "-")
        rows.append(f'<tr class="{e(css)}"><td>{e(check["name"])}</td><td>{e(check["figure"])}</td>'
                    f'<td>{e(check["threshold"])}</td><td>{e(check["verdict"].upper())}</td></tr>'
                    f'<tr><td colspan="4"><details><summary>details</summary><pre>{details}</pre></details>'
                    f'{shots}</td></tr>')
    verdict = "PASS" if report["passed"] else "FAIL"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>TL-FIF acceptance: {verdict}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;
padding:.3em .6em;vertical-align:top}}tr.pass td:last-child{{color:#070}}tr.fail td:last-child{{color:#b00;
font-weight:bold}}tr.not-run td:last-child{{color:#777}}img{{max-width:640px;border:1px solid #999}}</style>
</head><body>
<h1>TL-FIF acceptance: {verdict}</h1>
<p>Target: {e(report["target"])} · started {e(report["started"])} · restored: {e(json.dumps(report["restored"]))}</p>
<table><tr>{"".join(f"<th>{c}</th>" for c in COLUMNS)}</tr>
{"".join(rows)}
</table></body></html>
""", encoding="utf-8")
