"""Sizes and paths as people read them."""

from __future__ import annotations

import re

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
_SUFFIX = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def human_size(n: int) -> str:
    """``1073741824`` -> ``1 GiB``; ``200704`` -> ``196 KiB`` (three significant figures)."""
    value = float(n)
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            break
        value /= 1024
    if unit == "B":
        return f"{int(value)} B"
    text = f"{value:.3g}" if value < 1000 else f"{value:.0f}"
    return f"{text} {unit}"


def parse_size(text: str) -> int:
    """qemu-img's size syntax: ``10G``, ``512M``, ``1.5T``, ``4096`` (bytes), ``20GiB``."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([bkmgtp]?)(?:i?b)?\s*", text, re.IGNORECASE)
    if not m:
        raise ValueError(f"not a size: {text!r} (use e.g. 10G, 512M, 4096)")
    number, suffix = m.groups()
    return int(float(number) * _SUFFIX[suffix.lower()])


def display_path(path: str) -> str:
    """A path safe to print: bytes that are not UTF-8 shown as ``\\xNN``, never an exception."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
