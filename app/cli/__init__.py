"""The `tl-fif` command. With no arguments it opens the desktop app; subcommands serve the cloud and setup.

    tl-fif                      the desktop app (local cloud when no AWS stack is configured)
    tl-fif cloud up|token ...   the local cloud (see README)
    tl-fif deploy --stack NAME --profile lean|full ...   deploy the AWS stack (cloud/cfn), then configure the app
    tl-fif destroy --stack NAME  delete the stack and the data it holds
    tl-fif status --stack NAME   the stack, its GPU and this month's spend
    tl-fif configure ...        write the AWS settings to ~/.tl-fif.ini
    tl-fif cost estimate ...    the monthly AWS bill
    tl-fif acceptance ...       run the acceptance checklist against a stack or a local cloud
"""
from __future__ import annotations

import importlib
import sys

# This package holds the command-line tools the window never uses (configure, cost); `main` is the dispatcher.
# subcommand -> module; its `main(argv)` takes the remaining arguments and returns an exit code. Imported on use:
# `tl-fif configure` need not load Tk, the desktop app need not load boto3.
SUBCOMMANDS = {
    "cloud": "tlfif_local.cli",
    "configure": "app.cli.configure",
    "cost": "app.cli.cost",
    "deploy": "app.cli.deploy",
    "destroy": "app.cli.destroy",
    "status": "app.cli.status",
    "acceptance": "app.cli.acceptance",
}
APP = "app.main"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    if argv and argv[0] in SUBCOMMANDS:
        return int(importlib.import_module(SUBCOMMANDS[argv[0]]).main(argv[1:]) or 0)
    if argv:
        print(f"tl-fif: unknown command {argv[0]!r}; try 'tl-fif --help'", file=sys.stderr)
        return 2
    return int(importlib.import_module(APP).main([]) or 0)


if __name__ == "__main__":
    sys.exit(main())
