"""overlay / rebase / commit / flatten / check-image / launch (being written)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Adds the operation subcommands."""
