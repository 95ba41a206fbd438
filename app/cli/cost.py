"""`tl-fif cost estimate [--profile full|lean | --from-stack NAME] [--sessions 30] [--minutes 10] [--idle 5]
[--region eu-central-1]`

--from-stack reads a deployed stack's parameters (CostProfile, GpuInstanceType, CostPollSchedule, GpuMode ...) and
prices what the templates build with those values.

Prints the month's AWS bill of a TL-FIF deployment, one line per component, ending `Total: €N.NN / month`.
Prices: tlfif_common/prices.json (region, date and source of each). EUR per USD: TLFIF_USD_TO_EUR, else the table.
Exit codes: 0 printed, 2 bad arguments (an unknown region or profile, a negative count).
"""
from __future__ import annotations

import argparse
import sys

from app.cli import cost_estimate
from tlfif_common import names, prices

PROG = "tl-fif cost"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="What TL-FIF costs on AWS.")
    sub = parser.add_subparsers(dest="command", metavar="estimate")
    est = sub.add_parser("estimate", help="print the monthly bill, one line per component",
                         description="Print the monthly AWS bill, one line per component, and the total in EUR.")
    est.add_argument("--profile", choices=sorted(cost_estimate.PROFILES), default=cost_estimate.DEFAULT_PROFILE,
                     help=f"cost profile of the deployment (default {cost_estimate.DEFAULT_PROFILE})")
    est.add_argument("--sessions", type=int, default=30, help="GPU sessions per month (default 30)")
    est.add_argument("--minutes", type=float, default=10.0, help="minutes of use per session (default 10)")
    est.add_argument("--idle", type=float, default=5.0,
                     help="idle timeout in minutes: the GPU runs this long after the last answer (default 5)")
    est.add_argument("--region", default=names.DEFAULT_REGION, help=f"AWS region (default {names.DEFAULT_REGION})")
    est.add_argument("--from-stack", metavar="NAME", help="estimate a deployed stack from its parameters")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exit_:  # argparse: --help (0) or a usage error (2, message already printed)
        return int(exit_.code or 0)
    if args.command != "estimate":
        parser.print_usage(sys.stderr)
        print(f"{PROG}: choose a command: estimate", file=sys.stderr)
        return 2
    usage = cost_estimate.Usage(sessions=args.sessions, minutes=args.minutes, idle=args.idle)
    profile, gpu_mode = args.profile, "single"
    try:
        if args.from_stack:
            values = _stack_parameters(args.from_stack, args.region)
            profile = cost_estimate.profile_from_templates(values.get("CostProfile", args.profile), values)
            gpu_mode = values.get("GpuMode", gpu_mode)
        table = prices.load()
        rate = prices.usd_to_eur(table=table)
        result = cost_estimate.estimate(profile, usage, args.region, table, rate, gpu_mode=gpu_mode)
    except (LookupError, ValueError) as err:  # UnknownRegion, a bad argument, a bad TLFIF_USD_TO_EUR
        print(f"{PROG} estimate: {_message(err)}", file=sys.stderr)
        return 2
    print("\n".join(cost_estimate.format_estimate(result)))
    return 0


def _stack_parameters(stack: str, region: str) -> dict[str, str]:
    from botocore.exceptions import BotoCoreError, ClientError

    from app.cli.aws_clients import Clients

    try:
        found = Clients(region)("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    except ClientError as err:
        raise LookupError(f"cannot read stack {stack!r}: {err.response.get('Error', {}).get('Message', err)}") \
            from None
    except BotoCoreError as err:
        raise LookupError(f"cannot read stack {stack!r}: {err}") from None
    return {p["ParameterKey"]: p.get("ParameterValue", "") for p in
            found.get("Parameters") or [] if not p["ParameterKey"].startswith("LatestAmiId")}


def _message(err: Exception) -> str:
    return str(err.args[0]) if err.args else str(err)


if __name__ == "__main__":
    sys.exit(main())
