"""Checking a format parser against the real qemu-img: one way, shared by the format tests."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from conftest import qemu_img, qemu_info

from imagegui.core.read.formats.base import BoundedReader, Header, ParseError

HEAD = 4096


def parse_file(mod: ModuleType, path: Path) -> tuple[Header | ParseError, int]:
    """Parse as the scanner does (one 4 KiB read, primed); also the bytes read beyond it."""
    with open(path, "rb") as f:
        head = os.pread(f.fileno(), HEAD, 0)
        r = BoundedReader(f, os.fstat(f.fileno()).st_size)
        r.prime(0, head)
        try:
            return mod.parse(r), r.used
        except ParseError as exc:
            return exc, r.used


def qemu_opens(path: Path) -> dict | None:
    """qemu-img info's answer, or None when qemu refuses to open the file."""
    proc = qemu_img("info", "-U", "--output=json", path, check=False)
    if proc.returncode != 0:
        return None
    return qemu_info(path)


def assert_like_qemu(
    mod: ModuleType, path: Path, same_fields: Callable[[Header, dict], None]
) -> Header | ParseError:
    """We open ``path`` as ``mod``'s format iff qemu-img info does, and then ``same_fields``
    asserts that what we read equals what qemu reports."""
    ours, _ = parse_file(mod, path)
    info = qemu_opens(path)
    fmt = mod.__name__.rsplit(".", 1)[-1]
    if not mod.probe(path.read_bytes()[:HEAD]):
        # Not this format to qemu either (its prober reads the same bytes as ours).
        assert info is None or info["format"] != fmt
        return ours
    if info is None:
        assert isinstance(ours, ParseError), f"qemu refuses {path.name} but we parsed {ours}"
        assert str(ours)
        return ours
    assert isinstance(ours, Header), f"qemu opens {path.name}, we said: {ours}"
    same_fields(ours, info)
    return ours


def assert_common_fields(ours: Header, info: dict) -> None:
    """Format, virtual size, backing name and backing format: what every format must match."""
    assert (ours.format, ours.virtual_size, ours.backing_file, ours.backing_format) == (
        info["format"],
        info["virtual-size"],
        info.get("backing-filename"),
        info.get("backing-filename-format"),
    )
