"""The window's arguments (``imagegui [DIR] [--demo] [--screenshot PATH] ...``), parsed without Qt.

``imagegui --help``, ``--version``, a mistyped subcommand and bad window arguments are all answered
here, before anything imports PySide6: on a server without the GL libraries (where Qt's widget
libraries cannot load) they work like the subcommands do, and only opening the window needs Qt.
"""

from __future__ import annotations

import argparse
import os

import imagegui
from imagegui.cli.parser import Parser

#: The Appearance choices (``gui.theme.APPEARANCES``; a test keeps the two equal). Repeated here
#: because the theme module is Qt through and through.
APPEARANCES = ("system", "light", "dark")


def build_parser(subcommands: tuple[str, ...] = ()) -> argparse.ArgumentParser:
    p = Parser(
        prog="imagegui",
        description="See every QEMU/KVM disk-image chain in a directory and work on it safely.",
        epilog="Command line: imagegui COMMAND --help, COMMAND one of "
        + ", ".join(subcommands or _subcommands())
        + ".",
    )
    p.add_argument("directory", nargs="?", help="directory to open (default: the last one)")
    p.add_argument("--demo", action="store_true", help="build a demo directory and open it")
    p.add_argument("--screenshot", metavar="PATH", help="save a PNG of the window and exit")
    p.add_argument("--size", default="1440x900", help="window size for --screenshot (WxH)")
    p.add_argument(
        "--theme",
        choices=APPEARANCES,
        help="colours for this run: the desktop's (system), light or dark "
        "(default: the Appearance preference; also IMAGEGUI_THEME)",
    )
    p.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log to stderr too: -v what is run and found, -vv debugging detail",
    )
    p.add_argument("--version", action="version", version=f"imagegui {imagegui.__version__}")
    return p


def parse_args(argv: list[str]) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def unknown_command(argv: list[str]) -> str | None:
    """The message for a first word that is neither a subcommand nor something to open.

    A word that names an existing file or directory, or any path with a separator in it, is the
    window's to open (it says so itself when the path is missing); a bare word that exists nowhere
    is a mistyped command.
    """
    if not argv or argv[0].startswith("-"):
        return None
    word = argv[0]
    if os.sep in word or os.path.lexists(word):
        return None
    commands = _subcommands()
    if word in commands:
        return None
    import difflib  # only for a mistake: every window start passes through here

    close = difflib.get_close_matches(word, commands, n=1, cutoff=0.6)
    if close:
        return f"imagegui: unknown command '{word}'; did you mean '{close[0]}'?"
    return (
        f"imagegui: unknown command '{word}' (and no file or directory of that name); "
        f"commands: {', '.join(commands)}"
    )


def _subcommands() -> tuple[str, ...]:
    from imagegui.commands import SUBCOMMANDS  # not imagegui.cli: the window needs none of it

    return SUBCOMMANDS
