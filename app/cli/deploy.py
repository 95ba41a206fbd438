"""`tl-fif deploy`: package the templates, show the change set, apply it and follow it live, configure the app.

The CLI path (this command):

    tl-fif deploy --stack tl-fif --profile lean --region eu-central-1 --param AlarmEmail=me@example.com

  1. builds the Lambda zip (cloud/lambda/build_zip.py) and uploads it and the templates to a private, encrypted
     artifacts bucket (tl-fif-artifacts-ACCOUNT-REGION), the S3 locations written into the templates;
  2. creates a change set and prints it, one line per resource: add / modify / replace / remove;
  3. asks before executing it (unless --yes), then prints the stack's events as they come, each under a
     progress prefix [done/total elapsed], until the stack settles;
  4. on success prints the outputs and writes the [aws] section of ~/.tl-fif.ini (as `tl-fif configure
     --from-stack` does); on failure names the first failed resource and its reason, reports the rollback and
     exits 1. Nothing to change: says so and changes nothing.

The console path: `tl-fif deploy --stack NAME --profile lean --package-only` uploads the same artifacts and prints
the template URL to paste into CloudFormation's "Create stack" (Amazon S3 URL); the console shows the parameter
groups of cloud/cfn/main.yaml. Then run `tl-fif configure --from-stack NAME`.

Exit codes: 0 deployed / nothing to change / packaged, 1 the deployment failed or was declined, 2 usage error.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from app.cli import package, stack_events
from app.services import stack_outputs
from app.cli.aws_clients import Clients
from app.cli.usage import Parser, UsageError

PROG = "tl-fif deploy"
PROFILES = ("lean", "full")
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
NO_CHANGES = ("didn't contain changes", "No updates are to be performed")
ACTIONS = {"Add": "add", "Modify": "modify", "Remove": "remove", "Dynamic": "modify", "Import": "import"}


def _parser() -> Parser:
    doc = __doc__.split("\n\n", 1)[1].rsplit("\n\nExit codes", 1)[0]
    parser = Parser(prog=PROG, description="Deploy TL-FIF's CloudFormation stack (cloud/cfn/main.yaml).",
                    epilog=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", required=True, metavar="NAME", help="the stack's name")
    parser.add_argument("--profile", choices=PROFILES, help="cost profile (a new stack needs one; an update "
                        "keeps the stack's own unless given)")
    parser.add_argument("--region", metavar="R", help="AWS region (default: the AWS CLI's)")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="a parameter of cloud/cfn/main.yaml (repeatable); others keep their defaults, or on "
                             "an update their current values")
    parser.add_argument("--yes", action="store_true", help="execute the change set without asking")
    parser.add_argument("--package-only", action="store_true",
                        help="upload the artifacts and print the template URL for the console; deploy nothing")
    parser.add_argument("--lambda-zip", type=Path, metavar="PATH",
                        help="a zip built by cloud/lambda/build_zip.py (default: build one now)")
    return parser


def parse_params(pairs: list[str], template: dict) -> dict[str, str]:
    known = template.get("Parameters") or {}
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--param takes KEY=VALUE, got {pair!r}")
        if key not in known:
            raise UsageError(f"--param {key}: cloud/cfn/main.yaml has no such parameter; it has: "
                             f"{', '.join(sorted(known))}")
        out[key] = value
    return out


def existing_stack(cfn: Any, name: str) -> dict | None:
    from botocore.exceptions import ClientError

    try:
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    except ClientError as err:
        if "does not exist" in err.response.get("Error", {}).get("Message", ""):
            return None
        raise
    return None if stack["StackStatus"] in ("REVIEW_IN_PROGRESS", "DELETE_COMPLETE") else stack


def change_lines(changes: list[dict]) -> list[str]:
    """One line per resource: the action (add / modify / replace / remove), logical id and type."""
    out = []
    for change in changes:
        rc = change.get("ResourceChange") or {}
        action = ACTIONS.get(rc.get("Action", ""), (rc.get("Action") or "?").lower())
        if action == "modify" and rc.get("Replacement") in ("True", "Conditional"):
            action = "replace" if rc["Replacement"] == "True" else "replace?"
        out.append(f"  {action:<8} {rc.get('LogicalResourceId', '?'):<28} {rc.get('ResourceType', '')}")
    counts: dict[str, int] = {}
    for line in out:
        counts[line.split()[0]] = counts.get(line.split()[0], 0) + 1
    summary = ", ".join(f"{n} to {action}" for action, n in counts.items())
    return out + [f"Change set: {summary or 'no resource changes'}"]


def _describe_change_set(cfn: Any, stack: str, change_set: str) -> dict:
    pages = list(cfn.get_paginator("describe_change_set").paginate(StackName=stack, ChangeSetName=change_set)) \
        if cfn.can_paginate("describe_change_set") else [cfn.describe_change_set(StackName=stack,
                                                                                    ChangeSetName=change_set)]
    first = dict(pages[0])
    first["Changes"] = [change for page in pages for change in page.get("Changes", [])]
    return first


def deploy(args: argparse.Namespace, clients: Clients, *, ask: Callable[[str], str] | None = None,
           out: Callable[[str], None] = print, err: Callable[[str], None] = None,
           poll_seconds: float = 5.0) -> int:
    err = err or (lambda text: print(text, file=sys.stderr))
    ask = ask or input
    region = clients.region
    if not region:
        raise UsageError("no AWS region: pass --region (or set AWS_REGION / a profile region)")
    root = package.cfn_yaml.load(package.ROOT_TEMPLATE)
    params = parse_params(args.param, root)
    if args.profile:
        params["CostProfile"] = args.profile
    cfn, s3 = clients("cloudformation"), clients("s3")
    account = clients("sts").get_caller_identity()["Account"]
    bucket = package.artifacts_bucket_name(account, region)
    if package.ensure_bucket(s3, bucket, region):
        out(f"Created the artifacts bucket s3://{bucket} (private, encrypted)")
    out(f"Packaging cloud/cfn/main.yaml and the Lambda zip into s3://{bucket}/{args.stack}/ ...")
    packaged = package.package(s3, bucket=bucket, region=region, prefix=args.stack, zip_path=args.lambda_zip)
    if args.package_only:
        out(f"Uploaded {len(packaged.uploaded)} objects. Template URL for the console's \"Create stack\" "
            "(Template source: Amazon S3 URL):")
        out(f"  {packaged.template_url}")
        out(f"Then set CostProfile={args.profile or 'lean'} and the other parameters in the console's groups, "
            f"and after the stack completes run: tl-fif configure --from-stack {args.stack} --region {region}")
        return 0

    current = existing_stack(cfn, args.stack)
    if current is None and "CostProfile" not in params:
        raise UsageError("a new stack needs --profile lean|full")
    if current is not None and current["StackStatus"].endswith("_IN_PROGRESS"):
        err(f"{PROG}: stack {args.stack} is {current['StackStatus']}; wait until it settles")
        return 1
    parameters = [{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()]
    if current is not None:
        had = {p["ParameterKey"] for p in current.get("Parameters") or []}
        parameters += [{"ParameterKey": k, "UsePreviousValue": True}
                       for k in sorted(had & set(root.get("Parameters") or {})) if k not in params]
    kind = "UPDATE" if current is not None else "CREATE"
    change_set = f"tl-fif-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}"
    from botocore.exceptions import ClientError, WaiterError

    try:
        created = cfn.create_change_set(
            StackName=args.stack, ChangeSetName=change_set, ChangeSetType=kind, TemplateURL=packaged.template_url,
            Parameters=parameters, Capabilities=CAPABILITIES, Tags=[{"Key": "Project", "Value": "tl-fif"}])
    except ClientError as error:
        err(f"{PROG}: CloudFormation refused the change set: {error.response.get('Error', {}).get('Message')}")
        return 1
    try:
        cfn.get_waiter("change_set_create_complete").wait(
            StackName=args.stack, ChangeSetName=created["Id"],
            WaiterConfig={"Delay": max(1, int(poll_seconds)), "MaxAttempts": 120})
    except WaiterError:
        pass  # the description below says why
    described = _describe_change_set(cfn, args.stack, created["Id"])
    if described.get("Status") == "FAILED":
        reason = described.get("StatusReason") or ""
        if any(text in reason for text in NO_CHANGES):
            cfn.delete_change_set(StackName=args.stack, ChangeSetName=created["Id"])
            out(f"Stack {args.stack} is up to date: nothing to change.")
            return 0
        err(f"{PROG}: the change set failed: {reason}")
        return 1
    if not described["Changes"]:  # an update whose parameters differ only in form, not in any resource
        cfn.delete_change_set(StackName=args.stack, ChangeSetName=created["Id"])
        out(f"Stack {args.stack} is up to date: nothing to change.")
        return 0
    for line in change_lines(described["Changes"]):
        out(line)
    if not args.yes:
        try:
            answer = ask(f"Execute this change set on {args.stack} in {region}? [y/N] ").strip().lower()
        except EOFError:  # no terminal to answer from: never execute unasked
            answer = ""
        if answer not in ("y", "yes"):
            cfn.delete_change_set(StackName=args.stack, ChangeSetName=created["Id"])
            if kind == "CREATE":
                cfn.delete_stack(StackName=args.stack)  # the empty REVIEW_IN_PROGRESS stack the change set made
            out("Nothing executed.")
            return 1
    since = datetime.now(timezone.utc).replace(microsecond=0)
    cfn.execute_change_set(StackName=args.stack, ChangeSetName=created["Id"])
    status = stack_events.follow(cfn, args.stack, since=since, total=len(described["Changes"]), out=out,
                                 poll_seconds=poll_seconds)
    if status in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
        return _configure(cfn, args.stack, region, out, err)
    failure = stack_events.first_failure(cfn, args.stack, since)
    err(f"{PROG}: the deployment failed: {failure or 'no failed resource reported'}")
    err(f"{PROG}: stack {args.stack} ended {status}" + (
        " - CloudFormation rolled the changes back" if "ROLLBACK" in status else ""))
    return 1


def _configure(cfn: Any, stack: str, region: str, out: Callable[[str], None], err: Callable[[str], None]) -> int:
    from app.services import config_file

    outputs, _ = stack_outputs.read_outputs(stack, region=region, client=cfn)
    out(f"Stack {stack} is ready. Outputs:")
    for key in sorted(outputs):
        out(f"  {key} = {outputs[key]}")
    loaded = config_file.load()
    try:
        aws = stack_outputs.aws_settings(outputs, loaded.settings.aws, region=region)
    except stack_outputs.StackError as error:
        err(f"{PROG}: {error}")
        return 1
    path = config_file.save(replace(loaded.settings, aws=aws))
    out(f"Wrote the [aws] settings to {path}; start the app with: tl-fif")
    return 0


def main(argv: list[str] | None = None) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        args = _parser().parse_or_help(argv)
        if args is None:
            return 0
        return deploy(args, Clients(args.region))
    except (BotoCoreError, ClientError) as error:  # no credentials, no region, access denied, ...
        print(f"{PROG}: {error}", file=sys.stderr)
        return 1
    except UsageError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        print(f"usage: {PROG} --stack NAME --profile lean|full [--region R] [--param KEY=VALUE ...] [--yes] "
              "[--package-only]", file=sys.stderr)
        return 2
    except stack_outputs.StackError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
