"""The one ArgumentParser class of the command line: its error messages are terminal-safe.

argparse repeats what the user typed in its errors ("unrecognized arguments: ..."); an argument
can be a file name pasted from a directory listing, carrying ``ESC ]`` or ``ESC [2J`` sequences,
so the message goes through :func:`imagegui.core.units.printable` like every other output.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from imagegui.core.units import printable


class Parser(argparse.ArgumentParser):
    #: Options and positionals in any order, an optional positional included (``resize IMAGE
    #: --shrink -- -5G`` and ``resize --undo IMAGE``): argparse's plain parse takes every
    #: positional from the first run of them, leaving SIZE after an option unrecognised. Set
    #: on a subcommand's parser (one without subcommands of its own) by ``intermixed``.
    intermixed = False
    _parsing = False

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        if not self.intermixed or self._parsing:
            return super().parse_known_args(args, namespace)
        self._parsing = True  # the intermixed parse calls this method for each of its passes
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._parsing = False

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {printable(message)}\n")
