"""`tl-fif configure`: write the [aws] section of ~/.tl-fif.ini, keeping every other setting.

    tl-fif configure --from-stack NAME [--region R]
    tl-fif configure --api-url URL --client-id ID --auth-domain URL [--region R] [--redirect-port N]

Exit codes: 0 written, 2 usage error or the stack could not be read (the message says why).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, replace
from urllib.parse import urlparse

from app.models.settings import AwsSettings
from app.services import stack_outputs
from app.services import config_file
from app.cli.usage import Parser, UsageError

PROG = "tl-fif configure"


def _parser() -> Parser:
    parser = Parser(prog=PROG, description="Write the AWS settings of a deployed TL-FIF stack to the settings file.")
    parser.add_argument("--from-stack", metavar="NAME", help="read the outputs of this CloudFormation stack")
    parser.add_argument("--api-url", metavar="URL", help="the stack's ApiUrl output")
    parser.add_argument("--client-id", metavar="ID", help="the stack's UserPoolClientId output")
    parser.add_argument("--auth-domain", metavar="URL", help="the stack's HostedUiDomain output")
    parser.add_argument("--region", metavar="R", help="AWS region (default: the AWS CLI's)")
    parser.add_argument("--redirect-port", metavar="N", type=int, help="login callback port (default 8765)")
    return parser


def _check_url(name: str, value: str) -> str:
    value = value.strip().rstrip("/")
    parsed = urlparse(value)
    if parsed.scheme not in ("https", "http") or not parsed.netloc:
        raise UsageError(f"{name} must be an http(s) URL, got {value!r}")
    return value


def _settings_from_args(args: argparse.Namespace, base: AwsSettings) -> AwsSettings:
    given = {"--api-url": args.api_url, "--client-id": args.client_id, "--auth-domain": args.auth_domain}
    missing = [flag for flag, value in given.items() if not (value or "").strip()]
    if missing:
        raise UsageError(f"give --from-stack NAME, or all of --api-url, --client-id, --auth-domain "
                          f"(missing {', '.join(missing)})")
    return replace(base, api_url=_check_url("--api-url", args.api_url), client_id=args.client_id.strip(),
                   auth_domain=_check_url("--auth-domain", args.auth_domain),
                   region=(args.region or base.region or "").strip())


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_or_help(argv)
        if args is None:
            return 0
        if args.redirect_port is not None and not 1 <= args.redirect_port <= 65535:
            raise UsageError(f"--redirect-port must be 1-65535, got {args.redirect_port}")
        loaded = config_file.load()
        if loaded.warning:
            print(f"{PROG}: {loaded.warning}", file=sys.stderr)
        settings = loaded.settings
        if args.from_stack:
            manual = [flag for flag, value in (("--api-url", args.api_url), ("--client-id", args.client_id),
                                               ("--auth-domain", args.auth_domain)) if value]
            if manual:
                raise UsageError(f"--from-stack cannot be combined with {', '.join(manual)}")
            outputs, region = stack_outputs.read_outputs(args.from_stack, region=args.region)
            aws = stack_outputs.aws_settings(outputs, settings.aws, region=args.region or region)
        else:
            aws = _settings_from_args(args, settings.aws)
        if args.redirect_port is not None:
            aws = replace(aws, redirect_port=args.redirect_port)
    except UsageError as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        print(f"usage: {PROG} --from-stack NAME [--region R]  |  --api-url URL --client-id ID --auth-domain URL "
              f"[--region R] [--redirect-port N]", file=sys.stderr)
        return 2
    except stack_outputs.StackError as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return 2
    path = config_file.save(replace(settings, aws=aws))
    print(f"Wrote the [aws] settings to {path}:")
    shown = asdict(aws)
    for key in ("api_url", "client_id", "auth_domain", "region", "redirect_port"):
        print(f"  {key} = {shown[key]}")
    return 0
