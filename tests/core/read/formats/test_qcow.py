"""qcow (v1) parser against the real qemu-img: fields, refusals, patched hazards."""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from pathlib import Path

import formatcheck
import pytest
from conftest import ImageMaker, qemu_img
from formatcheck import assert_common_fields, parse_file

from imagegui.core.read.formats import qcow, qcow2
from imagegui.core.read.formats.base import BytesReader, Header, ParseError


def read_header(path: Path) -> tuple[Header | ParseError, int]:
    return parse_file(qcow, path)


def _same_fields(ours: Header, info: dict) -> None:
    assert_common_fields(ours, info)
    assert ours.flags["cluster_size"] == info["cluster-size"]
    assert ours.flags["encrypted"] == info.get("encrypted", False)


def assert_like_qemu(path: Path) -> Header | ParseError:
    """We open it iff qemu-img info does (as qcow), and then report the same fields."""
    return formatcheck.assert_like_qemu(qcow, path, _same_fields)


def overlay(m: ImageMaker, name: str, backing: str) -> Path:
    """qemu-img wants -F even for qcow v1, which cannot store it."""
    return m.overlay(name, backing, "raw", fmt="qcow")


CREATED: dict[str, Callable[[ImageMaker], Path]] = {
    "plain": lambda m: m.create("a.qcow", "qcow"),
    "odd-size": lambda m: m.create("a.qcow", "qcow", "1000"),
    "big": lambda m: m.create("a.qcow", "qcow", "2T"),
    "overlay-relative": lambda m: overlay(m, "a.qcow", "base.raw"),
    "overlay-absolute": lambda m: overlay(m, "a.qcow", "/var/lib/images/base.img"),
    "overlay-dotdot": lambda m: overlay(m, "x/y/a.qcow", "../../b a s e/ünï.img"),
    "overlay-protocol": lambda m: overlay(m, "a.qcow", "nbd:localhost:10809"),
    "overlay-1023": lambda m: overlay(m, "a.qcow", "p/" * 511 + "x"),
    "aes": lambda m: _aes(m),
}


def _aes(m: ImageMaker) -> Path:
    path = m.root / "a.qcow"
    qemu_img(
        "create", "-q", "-f", "qcow", "--object", "secret,id=sec0,data=x",
        "-o", "encrypt.format=aes,encrypt.key-secret=sec0", path, "64M",
    )  # fmt: skip
    return path


@pytest.mark.parametrize("case", sorted(CREATED))
def test_created_images_match_qemu(make: ImageMaker, case: str) -> None:
    path = CREATED[case](make)
    h, used = read_header(path)
    assert isinstance(h, Header), h
    assert_like_qemu(path)
    assert used == 0  # everything sits in the scanner's first block
    assert h.backing_format is None  # qcow v1 cannot record one


def test_overlay_fields(make: ImageMaker) -> None:
    h = assert_like_qemu(overlay(make, "x/y/a.qcow", "../../b a s e/ünï.img"))
    assert isinstance(h, Header)
    assert h.backing_file == "../../b a s e/ünï.img"
    assert h.flags["encrypted"] is False and h.flags["version"] == 1


def patch(path: Path, offset: int, fmt: str, *values: int) -> Path:
    data = bytearray(path.read_bytes())
    struct.pack_into(fmt, data, offset, *values)
    path.write_bytes(bytes(data))
    return path


BDRV_MAX = (1 << 63) - (1 << 30)
HAZARDS: dict[str, Callable[[Path], object]] = {
    "backing-size-1023": lambda p: patch(p, 16, ">I", 1023),
    "backing-size-1024": lambda p: patch(p, 16, ">I", 1024),
    "backing-size-huge": lambda p: patch(p, 16, ">I", 0xFFFFFFFF),
    "backing-size-0": lambda p: patch(p, 16, ">I", 0),
    "backing-offset-past-eof": lambda p: patch(p, 8, ">Q", 100_000),
    "backing-offset-huge": lambda p: patch(p, 8, ">Q", 1 << 62),
    "backing-offset-at-limit": lambda p: patch(p, 8, ">Q", BDRV_MAX - 6),
    "backing-offset-past-limit": lambda p: patch(p, 8, ">Q", BDRV_MAX - 5),
    "backing-offset-negative": lambda p: patch(p, 8, ">Q", (1 << 63) + 5),
    "backing-name-with-nul": lambda p: patch(p, 0x31, ">B", 0),
    "version-2": lambda p: patch(p, 4, ">I", 2),
    "version-0": lambda p: patch(p, 4, ">I", 0),
    "cluster-bits-8": lambda p: patch(p, 32, ">B", 8),
    "cluster-bits-16": lambda p: patch(p, 32, ">B", 16),
    "cluster-bits-17": lambda p: patch(p, 32, ">B", 17),
    "l2-bits-5": lambda p: patch(p, 33, ">B", 5),
    "l2-bits-13": lambda p: patch(p, 33, ">B", 13),
    "l2-bits-14": lambda p: patch(p, 33, ">B", 14),
    "size-0": lambda p: patch(p, 24, ">Q", 0),
    "size-1": lambda p: patch(p, 24, ">Q", 1),
    "size-2": lambda p: patch(p, 24, ">Q", 2),
    "size-odd": lambda p: patch(p, 24, ">Q", 1000),
    "size-huge": lambda p: patch(p, 24, ">Q", 1 << 63),
    "size-max": lambda p: patch(p, 24, ">Q", (1 << 64) - 1),
    "crypt-aes": lambda p: patch(p, 36, ">I", 1),
    "crypt-2": lambda p: patch(p, 36, ">I", 2),
    "l1-offset-huge": lambda p: patch(p, 40, ">Q", 1 << 62),
    "l1-offset-negative": lambda p: patch(p, 40, ">Q", 1 << 63),
}


@pytest.mark.parametrize("case", sorted(HAZARDS))
def test_hazards_agree_with_qemu(make: ImageMaker, case: str) -> None:
    path = overlay(make, "a.qcow", "c.qcow")
    assert path.read_bytes()[0x30:0x36] == b"c.qcow"  # layout the cases assume
    HAZARDS[case](path)
    assert_like_qemu(path)


@pytest.mark.parametrize("cut", [0, 4, 8, 16, 32, 33, 34, 40, 48, 49, 50, 54, 100])
def test_truncated_agrees_with_qemu(make: ImageMaker, cut: int) -> None:
    """Past its end a file reads as zeros in qemu: a cut inside the backing name shortens it."""
    path = overlay(make, "a.qcow", "c.qcow")
    os.truncate(path, cut)
    h = assert_like_qemu(path)
    if cut == 50:
        assert isinstance(h, Header) and h.backing_file == "c." and h.flags["truncated"]


def test_probe() -> None:
    assert qcow.probe(b"QFI\xfb\0\0\0\1")
    assert not qcow.probe(b"QFI\xfb\0\0\0\2")
    assert not qcow.probe(b"QFI\xfb")
    assert not qcow.probe(b"")
    # A head is claimed by exactly one of the two QFI formats.
    for version in range(5):
        head = b"QFI\xfb" + version.to_bytes(4, "big")
        assert not (qcow.probe(head) and qcow2.probe(head))


def test_backing_name_read_is_bounded() -> None:
    """A name far out costs its own bytes only (one read), never the gap before it."""
    data = bytearray(48)
    struct.pack_into(
        ">4sIQIIQBBHIQ", data, 0, b"QFI\xfb", 1, 1 << 40, 1023, 0, 1 << 20, 12, 9, 0, 0, 0
    )
    r = BytesReader(bytes(data), budget=2048)
    h = qcow.parse(r)
    assert h.backing_file is None and h.flags["truncated"]
    assert r.used <= 48 + 1023
