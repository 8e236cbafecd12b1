"""The command line: one argparse front end over the same core the GUI uses.

Each command module exposes ``register(subparsers)``, adding its subcommands with a ``func``
default that takes the parsed namespace and returns the exit status.
Exit status everywhere: 0 done, 1 failed (or problems found by ``check``), 2 refused or bad
argument, 128 + the signal when cancelled by one (130 Ctrl-C, 129 SIGHUP, 143 SIGTERM).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import shlex
import sys

from imagegui.cli.parser import Parser
from imagegui.commands import COMMAND_MODULES
from imagegui.commands import SUBCOMMANDS as SUBCOMMANDS  # imported from here too

#: Only the module a command needs is imported (``imagegui.commands`` names them).
_MODULES = COMMAND_MODULES


class UsageError(Exception):
    """A bad argument: printed as ``imagegui: error: ...`` with exit status 2."""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser for ``command`` (every command when None: help, tests)."""
    parser = Parser(
        prog="imagegui",
        description="See and safely work with QEMU/KVM disk-image backing chains.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    wanted = [_MODULES[command]] if command in _MODULES else sorted(set(_MODULES.values()))
    for name in dict.fromkeys(wanted):
        importlib.import_module(f"imagegui.cli.{name}").register(sub)
    for p in (parser, *sub.choices.values()):
        p.add_argument(
            "-v",
            "--verbose",
            action="count",
            default=0 if p is parser else argparse.SUPPRESS,
            help="log to stderr too: -v what is run and found, -vv debugging detail "
            "(the log file is $XDG_STATE_HOME/imagegui/imagegui.log)",
        )
    return parser


def run_cli(argv: list[str]) -> int:
    parser = build_parser(argv[0] if argv else None)
    args = parser.parse_args(argv)
    from imagegui import logsetup

    logsetup.setup(getattr(args, "verbose", 0))
    log = logging.getLogger("imagegui.cli")
    from imagegui.core.units import printable

    log.info("imagegui %s", printable(shlex.join(argv)))
    try:
        code = args.func(args)
        log.info("imagegui %s: exit status %s", args.command, code)
        return code
    except UsageError as exc:
        log.info("imagegui %s refused: %s", args.command, printable(str(exc)))
        print(f"imagegui: error: {printable(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        log.warning("imagegui %s cancelled (Ctrl-C)", args.command)
        print("imagegui: cancelled", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except Exception:
        log.exception("imagegui %s failed", args.command)
        raise
