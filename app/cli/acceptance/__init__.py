"""`tl-fif acceptance`: the RQL's acceptance checklist run against a deployment, one verdict per line.

    tl-fif acceptance --local | --stack NAME [--region R] [--report out.json] [--html out.html]
                      [--only CHECK[,CHECK...]] [--yes]

Checks: stop-gpu, cold-start, idle-stop, cost, security, api-contract (see checks.py) and gui (gui_check.py: the
desktop app on $DISPLAY or a private Xvfb answers a prompt typed with Ctrl+Enter; screenshots in the reports;
"not run" without a display, xdotool or, against a stack, a signed-in user). The GPU checks start the GPU: the
expected cost is printed and asked for unless --yes. Whatever the checks do, the GPU is left as found (stopped or
running), keep-warm is switched back on when it was on, and the run's result objects are deleted.
Against a stack the API and GUI checks need a signed-in user's ID token in $TLFIF_ACCEPTANCE_TOKEN.

Exit codes: 0 no selected check failed and one passed, 1 a check failed, 2 usage error or the target could not be
reached.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from app.cli.usage import Parser as _Parser, UsageError as _UsageError

from . import checks as checklist
from . import report
from .target import LocalTarget, StackTarget, Target, TargetError

PROG = "tl-fif acceptance"
ENV_TOKEN = "TLFIF_ACCEPTANCE_TOKEN"
EXIT_FAILED, EXIT_USAGE = 1, 2
# GPU minutes the GPU checks cost at most: three boots of ~1.5 min, two idle minutes, the stops.
GPU_MINUTES = 8.0


def _parser() -> _Parser:
    parser = _Parser(prog=PROG, description="Run the acceptance checklist against a TL-FIF deployment.")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--stack", metavar="NAME", help="a deployed stack (its outputs, your AWS credentials)")
    where.add_argument("--local", action="store_true", help="start a local cloud and check it")
    parser.add_argument("--region", metavar="R", help="the stack's region (default: the AWS CLI's)")
    parser.add_argument("--report", metavar="FILE", type=Path, help="write the JSON report here")
    parser.add_argument("--html", metavar="FILE", type=Path, help="write the HTML report here")
    parser.add_argument("--only", metavar="CHECKS", help=f"comma-separated subset of {', '.join(checklist.CHECKS)}")
    parser.add_argument("--yes", action="store_true", help="do not ask before starting the GPU")
    parser.add_argument("--local-arg", metavar="ARG", action="append", default=[],
                        help=argparse.SUPPRESS)  # extra `cloud up` options (tests: fault options)
    return parser


def _selected(only: str | None) -> list[str]:
    if not only:
        return list(checklist.CHECKS)
    names = [name.strip() for name in only.split(",") if name.strip()]
    unknown = [name for name in names if name not in checklist.CHECKS]
    if unknown:
        raise _UsageError(f"unknown check {', '.join(unknown)}; choose from {', '.join(checklist.CHECKS)}")
    return [name for name in checklist.CHECKS if name in names]


def expected_cost_eur(target: Target, run: checklist.Run) -> float:
    """What the GPU checks cost: GPU_MINUTES of the GPU's instance type at the price table's rate."""
    if target.kind == "local":
        return 0.0
    from tlfif_common import prices

    table = prices.load()
    instance_type = checklist._instance(run)["InstanceType"]
    return table.ec2_hourly_usd(instance_type, target.region) * prices.usd_to_eur(table=table) * GPU_MINUTES / 60


def _confirm(target: Target, run: checklist.Run, yes: bool, ask: Callable[[str], str]) -> bool:
    cost = expected_cost_eur(target, run)
    where = " (the local cloud: nothing is billed)" if target.kind == "local" else ""
    print(f"{PROG}: the GPU checks start the GPU for up to {GPU_MINUTES:g} minutes: about €{cost:.2f}{where}")
    if yes:
        return True
    return ask("Run them? [y/N] ").strip().lower() in ("y", "yes")


def _restore(run: checklist.Run, gpu_before: str, keep_warm_before: int | None) -> dict:
    """Puts the GPU and keep-warm back as they were; deletes this run's result objects."""
    from tlfif_common import api

    restored: dict = {"gpu": gpu_before}
    if gpu_before in (api.GPU_STOPPED, api.GPU_STOPPING):
        run.ensure_stopped(checklist.STOP_S * 12)
    else:
        run.ensure_running(checklist.COLD_START_S * 2)
    if keep_warm_before is not None:
        # keep-warm's until counts in the deployment's minutes (the local cloud shortens them)
        minutes = round((keep_warm_before - time.time() * 1000) / (run.target.minute_seconds * 1000))
        if minutes > 0:
            run.call("POST", "/keepwarm", json={"on": True, "max_minutes": min(minutes, 480)})
            restored["keep_warm_minutes"] = minutes
    restored["results_deleted"] = run.delete_results()
    return restored


def run_checks(target: Target, names: list[str], *, yes: bool = False,
               ask: Callable[[str], str] = input) -> tuple[list[checklist.Check], dict]:
    run = checklist.Run(target)
    gpu_names = [name for name in names if name in checklist.GPU_CHECKS]
    if gpu_names and not _confirm(target, run, yes, ask):
        print(f"{PROG}: skipping {', '.join(gpu_names)} (not confirmed)")
        names = [name for name in names if name not in gpu_names]
        gpu_names = []
    results: list[checklist.Check] = []
    gpu_before = run.api_state() if gpu_names else ""
    keep_warm_before = target.keep_warm_until() if gpu_names else None
    try:
        for name in names:
            try:
                results.append(checklist.CHECKS[name](run))
            except Exception as err:  # one broken check must not hide the others' figures
                results.append(checklist.Check(name, f"error: {type(err).__name__}: {err}"[:300], "—",
                                               checklist.FAIL))
            print(f"{PROG}: {name}: {results[-1].verdict}", file=sys.stderr)
    finally:
        restored = _restore(run, gpu_before, keep_warm_before) if gpu_names else {}
        if not gpu_names:
            restored["results_deleted"] = run.delete_results()
    return results, restored


def _target(args) -> Target:
    if args.local:
        return LocalTarget(extra_args=args.local_arg)
    token = os.environ.get(ENV_TOKEN, "").strip()
    return StackTarget(args.stack, args.region, token_source=(lambda user: token) if token else None)


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_or_help(argv)
        if args is None:
            return 0
        names = _selected(args.only)
    except _UsageError as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return EXIT_USAGE
    started = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        with _target(args) as target:
            results, restored = run_checks(target, names, yes=args.yes)
            label = f"{target.kind}: {target.name} ({target.region})"
    except TargetError as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return EXIT_USAGE
    print(report.table(results))
    data = report.as_dict(results, target=label, started=started, restored=restored)
    if args.report:
        report.write_json(args.report, data)
    if args.html:
        report.write_html(args.html, data)
    return 0 if data["passed"] and results else EXIT_FAILED
