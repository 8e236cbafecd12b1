"""The command line: one argparse front end over the same core the GUI uses.

Each command module exposes ``register(subparsers)``, adding its subcommands with a ``func``
default that takes the parsed namespace and returns the exit status.
Exit status everywhere: 0 done, 1 failed (or problems found by ``check``), 2 refused or bad
argument, 130 cancelled.
"""

from __future__ import annotations

import argparse
import sys

from imagegui.cli import ops_cmds, scan_cmds

SUBCOMMANDS = (
    "scan",
    "check",
    "overlay",
    "rebase",
    "commit",
    "flatten",
    "check-image",
    "launch",
)


class UsageError(Exception):
    """A bad argument: printed as ``imagegui: error: ...`` with exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imagegui",
        description="See and safely work with QEMU/KVM disk-image backing chains.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    scan_cmds.register(sub)
    ops_cmds.register(sub)
    return parser


def run_cli(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"imagegui: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("imagegui: cancelled", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
