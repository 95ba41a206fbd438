"""boto3 clients for the stack commands (deploy, destroy, status), all in one region, and the main() of destroy and
status.

TLFIF_AWS_ENDPOINT_URL points every client at one endpoint: the tests' moto server. A user never sets it.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Callable

ENV_ENDPOINT_URL = "TLFIF_AWS_ENDPOINT_URL"


class Clients:
    def __init__(self, region: str | None = None):
        import boto3

        self._session = boto3.session.Session(region_name=region or None)
        self.region = self._session.region_name or ""
        self._endpoint = os.environ.get(ENV_ENDPOINT_URL) or None
        self._made: dict[str, Any] = {}

    def __call__(self, service: str) -> Any:
        if service not in self._made:
            self._made[service] = self._session.client(service, region_name=self.region or None,
                                                       endpoint_url=self._endpoint)
        return self._made[service]


def run_stack_command(prog: str, parser: argparse.ArgumentParser, argv: list[str] | None,
                      command: Callable[[argparse.Namespace, Clients], int]) -> int:
    """The main() of a stack command: argparse's exit code on a usage error or --help, else `command` run with
    clients in --region; an AWS error (no credentials, no region, access denied, ...) is one line and exit code 1."""
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return command(args, Clients(args.region))
    except (BotoCoreError, ClientError) as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 1
