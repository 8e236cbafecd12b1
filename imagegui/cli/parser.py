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
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {printable(message)}\n")
