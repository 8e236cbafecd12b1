"""QED parser against the real qemu-img: fields, refusals, patched hazards."""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from pathlib import Path

import formatcheck
import pytest
from conftest import ImageMaker, qemu_img
from formatcheck import assert_common_fields, parse_file

from imagegui.core.read.formats import qed
from imagegui.core.read.formats.base import Header, ParseError


def read_header(path: Path) -> tuple[Header | ParseError, int]:
    return parse_file(qed, path)


def _same_fields(ours: Header, info: dict) -> None:
    assert_common_fields(ours, info)
    assert ours.flags["cluster_size"] == info["cluster-size"]
    # qemu-img info's dirty-flag stays false for QED even with "needs check" set: not compared.


def assert_like_qemu(path: Path) -> Header | ParseError:
    """We open it iff qemu-img info does (as qed), and then report the same fields."""
    return formatcheck.assert_like_qemu(qed, path, _same_fields)


def overlay(m: ImageMaker, name: str, backing: str, fmt: str = "qed") -> Path:
    return m.overlay(name, backing, fmt, fmt="qed")


CREATED: dict[str, Callable[[ImageMaker], Path]] = {
    "plain": lambda m: m.create("a.qed", "qed"),
    "cluster-4k": lambda m: m.create("a.qed", "qed", "64M", "cluster_size=4096"),
    "cluster-2M": lambda m: m.create("a.qed", "qed", "1G", "cluster_size=2M"),
    "table-16": lambda m: m.create("a.qed", "qed", "64M", "table_size=16"),
    "table-2": lambda m: m.create("a.qed", "qed", "64M", "table_size=2"),
    "overlay-qed": lambda m: overlay(m, "a.qed", "base.qed"),
    "overlay-raw": lambda m: overlay(m, "a.qed", "base.img", "raw"),
    "overlay-qcow2": lambda m: overlay(m, "a.qed", "/abs/base.qcow2", "qcow2"),
    "overlay-dotdot": lambda m: overlay(m, "d/e/a.qed", "../../ba se/ß.raw", "raw"),
    "overlay-protocol": lambda m: overlay(m, "a.qed", "http://example.com/x.img", "raw"),
    "overlay-long": lambda m: overlay(m, "a.qed", "q/" * 511 + "x", "raw"),
}


@pytest.mark.parametrize("case", sorted(CREATED))
def test_created_images_match_qemu(make: ImageMaker, case: str) -> None:
    path = CREATED[case](make)
    h, used = read_header(path)
    assert isinstance(h, Header), h
    assert_like_qemu(path)
    assert used == 0  # everything sits in the scanner's first block


def test_needs_check_flag(make: ImageMaker) -> None:
    path = patch(overlay(make, "a.qed", "q.qed"), 16, "<Q", 0x3)
    h = assert_like_qemu(path)
    assert isinstance(h, Header) and h.flags["needs_check"] is True


def test_backing_format_only_raw(make: ImageMaker) -> None:
    raw = assert_like_qemu(overlay(make, "r.qed", "base.img", "raw"))
    assert isinstance(raw, Header)
    assert raw.backing_format == "raw" and raw.flags["backing_raw"] is True
    q = assert_like_qemu(overlay(make, "q.qed", "base.qed", "qed"))
    assert isinstance(q, Header)
    assert q.backing_file == "base.qed" and q.backing_format is None
    assert q.flags["backing_raw"] is False


def test_table_size_1_is_never_openable(make: ImageMaker) -> None:
    """qemu creates it but its own table-offset check refuses one-cluster tables."""
    path = make.root / "t1.qed"
    qemu_img("create", "-q", "-f", "qed", "-o", "table_size=1", path, "64M", check=False)
    h = assert_like_qemu(path)
    assert isinstance(h, ParseError)


def patch(path: Path, offset: int, fmt: str, *values: int) -> Path:
    data = bytearray(path.read_bytes())
    struct.pack_into(fmt, data, offset, *values)
    path.write_bytes(bytes(data))
    return path


HAZARDS: dict[str, Callable[[Path], object]] = {
    "unknown-feature": lambda p: patch(p, 16, "<Q", 0x9),
    "needs-check": lambda p: patch(p, 16, "<Q", 0x3),
    "raw-bit-without-backing": lambda p: patch(p, 16, "<Q", 0x4),
    "raw-bit": lambda p: patch(p, 16, "<Q", 0x5),
    "unknown-compat-autoclear": lambda p: (patch(p, 24, "<Q", 0xFF), patch(p, 32, "<Q", 0xFF)),
    "cluster-size-3000": lambda p: patch(p, 4, "<I", 3000),
    "cluster-size-2k": lambda p: patch(p, 4, "<I", 2048),
    "cluster-size-128M": lambda p: patch(p, 4, "<I", 1 << 27),
    # qemu's maximum image size computation wraps to 0 for 4 MiB clusters and 4-cluster tables.
    "cluster-size-4M": lambda p: patch(p, 4, "<I", 1 << 22),
    "cluster-size-2M": lambda p: patch(p, 4, "<I", 1 << 21),
    "table-size-3": lambda p: patch(p, 8, "<I", 3),
    "table-size-32": lambda p: patch(p, 8, "<I", 32),
    "table-size-0": lambda p: patch(p, 8, "<I", 0),
    "image-size-odd": lambda p: patch(p, 48, "<Q", 1000),
    "image-size-huge": lambda p: patch(p, 48, "<Q", 1 << 62),
    "image-size-0": lambda p: patch(p, 48, "<Q", 0),
    "l1-misaligned": lambda p: patch(p, 40, "<Q", 0x10001),
    "l1-past-eof": lambda p: patch(p, 40, "<Q", 0x100000),
    "l1-in-header": lambda p: patch(p, 40, "<Q", 0),
    "l1-wraps": lambda p: patch(p, 40, "<Q", (1 << 64) - 0x10000),
    "header-size-2": lambda p: patch(p, 12, "<I", 2),
    "header-size-huge": lambda p: patch(p, 12, "<I", 1 << 20),
    "header-size-0": lambda p: patch(p, 12, "<I", 0),
    "backing-past-header": lambda p: patch(p, 56, "<I", 65535),
    "backing-size-4095": lambda p: patch(p, 60, "<I", 4095),
    "backing-size-4096": lambda p: patch(p, 60, "<I", 4096),
    "backing-size-0": lambda p: patch(p, 60, "<I", 0),
    "backing-name-with-nul": lambda p: patch(p, 0x41, "<B", 0),
    "backing-bit-cleared": lambda p: patch(p, 16, "<Q", 0),
}


@pytest.mark.parametrize("case", sorted(HAZARDS))
def test_hazards_agree_with_qemu(make: ImageMaker, case: str) -> None:
    path = overlay(make, "a.qed", "q.qed")
    assert path.read_bytes()[0x40:0x45] == b"q.qed"  # layout the cases assume
    HAZARDS[case](path)
    assert_like_qemu(path)


@pytest.mark.parametrize("cut", [0, 4, 20, 64, 70, 4096, 65536, 131072, 131172, 196608, 262144])
def test_truncated_agrees_with_qemu(make: ImageMaker, cut: int) -> None:
    """QED's checks depend on the file's length: the L1 table must lie inside the file."""
    path = overlay(make, "a.qed", "q.qed")
    os.truncate(path, cut)
    assert_like_qemu(path)


def test_probe() -> None:
    assert qed.probe(b"QED\0")
    assert qed.probe(b"QED\0" + bytes(60))
    assert not qed.probe(b"QED")
    assert not qed.probe(b"QFI\xfb\0\0\0\3")
