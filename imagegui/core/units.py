"""Sizes and paths as people read them."""

from __future__ import annotations

import re

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
_SUFFIX = {
    "": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50,
    "e": 1 << 60,
}  # fmt: skip
#: The largest size qemu accepts (INT64_MAX: "Image size must be less than 8 EiB").
MAX_SIZE = (1 << 63) - 1


def counted(n: int, noun: str) -> str:
    """``1 error``, ``3 errors``, ``1,204 images``: a count a reader need not correct."""
    return f"{n:,} {noun}{'s' * (n != 1)}"


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
    """qemu-img's size syntax: ``10G``, ``512M``, ``1.5T``, ``4096`` (bytes), ``20GiB``.

    Exact integer arithmetic (a float turned 9223372036854775807 into ...808); like qemu, a
    fraction needs a unit, a fraction of a byte is cut off, and 8 EiB or more is refused.
    """
    m = re.fullmatch(r"\s*(\d+)(?:\.(\d+))?\s*([bkmgtpe]?)(?:i?b)?\s*", text, re.IGNORECASE)
    if not m:
        raise ValueError(f"not a size: {text!r} (use e.g. 10G, 512M, 4096)")
    whole, fraction, suffix = m.groups()
    mul = _SUFFIX[suffix.lower()]
    if fraction and mul == 1:
        raise ValueError(f"not a size: {text!r} (a fraction needs a unit, e.g. 1.5G)")
    value = int(whole) * mul
    if fraction:
        value += int(fraction) * mul // 10 ** len(fraction)
    if value > MAX_SIZE:
        raise ValueError(f"too large: {text!r} (qemu's limit is just under 8 EiB)")
    return value


def display_path(path: str) -> str:
    """A path safe to print: bytes that are not UTF-8 shown as ``\\xNN``, never an exception."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


#: What a terminal acts on instead of showing: C0 (ESC, CR, LF, BEL, ...), DEL, C1 (0x9b is a
#: CSI on its own), line/paragraph separators and bidirectional overrides (text shown reversed).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(m: re.Match[str]) -> str:
    c = m.group()
    return _NAMED.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 256 else f"\\u{ord(c):04x}")


def printable(text: str) -> str:
    """One line of text safe for a terminal: what ``display_path`` does, and every control
    character escaped (``\\x1b``, ``\\n``, ...). Names come from disk - a backing name can carry
    ``ESC ] 0;...BEL`` (retitle the window), ``ESC [2J`` (clear the screen) or a line feed that
    forges a line of output. Every text output of the command line goes through this."""
    if text.isascii():
        if text.isprintable():
            return text
    else:
        text = display_path(text)
    return _CONTROL.sub(_escape, text)
