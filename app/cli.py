"""The `tl-fif` command. With no arguments it opens the desktop app; subcommands serve the cloud and setup.

    tl-fif                      the desktop app (local cloud when no AWS stack is configured)
    tl-fif cloud up|token ...   the local cloud (see README)
    tl-fif configure ...        write the AWS settings to ~/.tl-fif.ini
"""
from __future__ import annotations

import sys

# subcommand -> "module:function"; each takes the remaining argv and returns an exit code.
SUBCOMMANDS = {
    "cloud": "tlfif_local.cli:main",
    "configure": "app.services.configure_cli:main",
    "cost": "app.cost_cli:main",
}


def _load(target: str):
    import importlib

    module, _, func = target.partition(":")
    return getattr(importlib.import_module(module), func)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    if argv and argv[0] in SUBCOMMANDS:
        return int(_load(SUBCOMMANDS[argv[0]])(argv[1:]) or 0)
    if argv:
        print(f"tl-fif: unknown command {argv[0]!r}; try 'tl-fif --help'", file=sys.stderr)
        return 2
    return int(_load("app.main:main")([]) or 0)


if __name__ == "__main__":
    sys.exit(main())
