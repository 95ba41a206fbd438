"""The command-line parser the tl-fif subcommands share: a usage error is raised instead of exiting, and --help is
printed without parsing the rest, so that main() returns its exit code (and the tests call main() directly).
"""
from __future__ import annotations

import argparse
import sys


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse exits with 2; raising keeps main() returning instead of exiting
        raise UsageError(message)

    def parse_or_help(self, argv: list[str] | None) -> argparse.Namespace | None:
        """The parsed arguments (of sys.argv when argv is None), or None once the help was printed for -h/--help."""
        argv = list(sys.argv[1:] if argv is None else argv)
        if any(arg in ("-h", "--help") for arg in argv):
            self.print_help()
            return None
        return self.parse_args(argv)
