"""Entry point: ``imagegui SUBCOMMAND ...`` is the command line, anything else opens the window."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    from imagegui.cli import SUBCOMMANDS, run_cli

    if args and args[0] in SUBCOMMANDS:
        return run_cli(args)
    from imagegui.gui.app import main as gui_main

    return gui_main(args)


if __name__ == "__main__":
    sys.exit(main())
