"""Entry point: ``imagegui SUBCOMMAND ...`` is the command line, anything else opens the window.

Only opening the window imports Qt: subcommands, ``--help``, ``--version`` and mistakes are
answered by the command-line parsers first (a server without Qt's libraries runs them all).

Before anything else, a subcommand or the window has the files it loaded last time read ahead
when they are not in the page cache (:mod:`imagegui.startup`: a cold start is mostly imports,
read one file after another), and remembers them for next time once it is done.
"""

from __future__ import annotations

import re
import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    kind = _start_kind(args)
    if kind is None:
        return _main(args)
    from imagegui import startup

    started = startup.warm(kind)
    code = _main(args)
    # Done (or problems found): what it loaded is what the next start needs. A refused
    # command stopped part-way. The window remembers once its first graph is drawn (gui/app.py).
    if kind != "window" and code in (0, 1):
        startup.remember(started)
    return code


def _start_kind(args: list[str]) -> str | None:
    """Which start this is, for :mod:`imagegui.startup`: the subcommand, "window", or None for
    a help or version request (nothing worth reading ahead)."""
    from imagegui.commands import SUBCOMMANDS

    lead = _leading_verbose(args)
    if len(args) > lead and args[lead] in SUBCOMMANDS:
        return args[lead]
    if any(a in ("-h", "--help", "--version") for a in args):
        return None
    return "window"


def _main(args: list[str]) -> int:
    from imagegui.commands import SUBCOMMANDS

    if args and args[0] in SUBCOMMANDS:
        from imagegui.cli import run_cli

        return run_cli(args)
    lead = _leading_verbose(args)
    if lead and len(args) > lead and args[lead] in SUBCOMMANDS:
        from imagegui.cli import run_cli

        # ``imagegui -v scan DIR`` as well as ``imagegui scan -v DIR``.
        return run_cli([args[lead], *args[:lead], *args[lead + 1 :]])
    from imagegui.cli.window_args import parse_args, unknown_command

    message = unknown_command(args)
    if message:
        from imagegui.core.units import printable

        print(printable(message), file=sys.stderr)
        return 2
    namespace = parse_args(args)  # --help and --version exit here
    try:
        from imagegui.gui.app import main as gui_main
    except ImportError as exc:
        print(
            f"imagegui: the window cannot start: {exc}. The command line works without it "
            "(imagegui scan DIR; imagegui --help).",
            file=sys.stderr,
        )
        return 1
    return gui_main(namespace)


def _leading_verbose(args: list[str]) -> int:
    """How many of the first words are ``-v``, ``-vv``, ... or ``--verbose``."""
    n = 0
    while n < len(args) and (args[n] == "--verbose" or re.fullmatch("-v+", args[n])):
        n += 1
    return n


if __name__ == "__main__":
    sys.exit(main())
