"""The ``fnac`` console command: one dispatcher over the subcommands of every package.

Each package keeps its subcommands in its ``commands.py``, which exposes ``register(subparsers)``
and imports its heavy dependencies inside each command, so ``fnac --help`` stays fast. This module
is the top of the house: the one place that imports every package's commands.
Expected failures (bad files, bad arguments) print one ``fnac: error: ...`` line, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys

from fnac.flags import plain_help_everywhere
from fnac.threads import share_cores


class UsageError(Exception):
    """A problem with what the user asked for; the message names the fix."""


def build_parser() -> argparse.ArgumentParser:
    from fnac import __version__

    parser = argparse.ArgumentParser(
        prog="fnac", description="Real-time audio-visual sound source localization with FNAC."
    )
    parser.add_argument("--version", action="version", version=f"fnac {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    # in the order ``fnac --help`` lists them
    import fnac.commands
    import gui.commands
    import realtime.commands
    import train.commands

    for package in (fnac.commands, train.commands, realtime.commands, gui.commands):
        package.register(sub)
    plain_help_everywhere(parser, sub.choices)
    return parser


def _expected_errors() -> tuple[type[BaseException], ...]:
    # CheckpointError, SourceError, DatasetError, ... are ValueErrors.
    return (
        UsageError,
        FileNotFoundError,
        NotADirectoryError,
        IsADirectoryError,
        PermissionError,
        ValueError,
    )


def main(argv: list[str] | None = None) -> int:
    share_cores()  # before the subcommand modules load numpy and torch
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("fnac: interrupted", file=sys.stderr)
        return 130
    except _expected_errors() as exc:
        if args.verbose:
            raise
        print(f"fnac: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
