"""VHD (vpc) headers read natively must say what ``qemu-img info`` says about the same file."""

from __future__ import annotations

import os
import struct
import subprocess
from pathlib import Path

import pytest
from conftest import qemu_img, qemu_info

from imagegui.core.read.formats import vpc
from imagegui.core.read.formats.base import BoundedReader, BytesReader, Header, ParseError


def reader(path: Path) -> BoundedReader:
    f = open(path, "rb")  # noqa: SIM115 - kept open for the reader's lifetime in the test
    r = BoundedReader(f, os.fstat(f.fileno()).st_size)
    r.prime(0, os.pread(f.fileno(), 4096, 0))
    r._keep = f  # type: ignore[attr-defined]
    return r


def parse_file(path: Path) -> Header:
    return vpc.parse(reader(path))


def qemu_fails(path: Path, fmt: str | None = None) -> bool:
    args = ["info", "-U", "--output=json"] + (["-f", fmt] if fmt else [])
    return qemu_img(*args, path, check=False).returncode != 0


def fix_checksum(data: bytearray, off: int) -> None:
    struct.pack_into(">I", data, off + 64, 0)
    struct.pack_into(">I", data, off + 64, ~sum(data[off : off + 512]) & 0xFFFFFFFF)


@pytest.mark.parametrize("opts", [(), ("force_size=on",)])
@pytest.mark.parametrize("size", ["64M", "100M", "1G"])
def test_dynamic_matches_qemu(make, opts: tuple[str, ...], size: str) -> None:
    path = make.create("d.vhd", "vpc", size, *opts)
    with open(path, "rb") as f:
        assert vpc.probe(f.read(4096))
    r = reader(path)
    h = vpc.parse(r)
    q = qemu_info(path)
    assert (h.format, h.virtual_size) == (q["format"], q["virtual-size"])
    assert h.backing_file is None and "backing-filename" not in q
    assert h.flags["block_size"] == q["cluster-size"]
    assert h.flags["vhd_type"] == "dynamic"
    assert h.flags["size_rule"] == ("current_size" if opts else "chs")
    assert r.used == 0
    assert vpc.parse_fixed_footer(r) is None  # magic at 0: not a fixed VHD


@pytest.mark.parametrize("opts", [(), ("force_size=on",)])
def test_fixed_is_raw_to_qemu_but_opens_as_vpc(make, opts: tuple[str, ...]) -> None:
    path = make.create("f.vhd", "vpc", "100M", "subformat=fixed", *opts)
    with open(path, "rb") as f:
        assert not vpc.probe(f.read(4096))
    r = reader(path)
    h = vpc.parse_fixed_footer(r)
    assert h is not None
    probed, as_vpc = qemu_info(path), qemu_info(path, "vpc")
    assert (
        (h.format, h.virtual_size)
        == (probed["format"], probed["virtual-size"])
        == (
            "raw",
            path.stat().st_size,
        )
    )
    assert h.also_opens_as == ("vpc",)
    assert h.flags["vhd_type"] == "fixed"
    assert h.flags["vpc_virtual_size"] == as_vpc["virtual-size"]
    assert h.flags["vhd_current_size"] == (104857600 if opts else 104865792)
    # parse() itself behaves like -f vpc.
    assert r.used == 512  # just the footer
    full = vpc.parse(reader(path))
    assert (full.format, full.virtual_size) == ("vpc", as_vpc["virtual-size"])


def test_fixed_footer_absent_or_bad(tmp_path: Path) -> None:
    assert vpc.parse_fixed_footer(BytesReader(b"")) is None
    assert vpc.parse_fixed_footer(BytesReader(bytes(4096))) is None
    data = bytearray(4096)
    data[-512:-504] = b"conectix"
    assert vpc.parse_fixed_footer(BytesReader(bytes(data))) is None  # bad checksum
    fix_checksum(data, len(data) - 512)
    h = vpc.parse_fixed_footer(BytesReader(bytes(data)))
    assert h is not None and h.virtual_size == 4096


def test_bad_checksum_is_refused_like_qemu_7_2(make) -> None:
    """qemu 7.2 refuses ("Incorrect header checksum"); older qemu only warned."""
    path = make.create("c.vhd", "vpc", "64M")
    data = bytearray(path.read_bytes())
    data[40] ^= 1
    path.write_bytes(bytes(data))
    assert qemu_fails(path)
    with pytest.raises(ParseError, match="checksum"):
        parse_file(path)


def _differencing(path: Path, locator: str | None) -> None:
    """A dynamic VHD made by qemu, turned into a differencing disk by hand."""
    data = bytearray(path.read_bytes())
    data[512 + 64 : 512 + 64 + 1024 - 64] = bytes(1024 - 64)
    name = "base.vhd".encode("utf-16-be")
    data[512 + 64 : 512 + 64 + len(name)] = name
    if locator is not None:
        payload = locator.encode("utf-16-le")
        loc_off = len(data) - 512  # put the locator where the footer was, re-append footer
        footer = bytes(data[-512:])
        data[loc_off:] = payload.ljust(512, b"\0") + footer
        struct.pack_into(">4sIIIQ", data, 512 + 576, b"W2ru", 1, len(payload), 0, loc_off)
    for off in (0, len(data) - 512):
        struct.pack_into(">I", data, off + 60, 4)
        fix_checksum(data, off)
    path.write_bytes(bytes(data))


def test_differencing_reports_parent_but_qemu_ignores_it(make) -> None:
    path = make.create("child.vhd", "vpc", "64M")
    _differencing(path, locator=".\\parent-dir\\base.vhd")
    h = parse_file(path)
    assert h.backing_file == "./parent-dir/base.vhd"  # relative locator wins
    assert h.backing_format == "vpc"
    assert h.flags["parent_unicode_name"] == "base.vhd"
    assert h.flags["parent_locators"] == {"W2ru": ".\\parent-dir\\base.vhd"}
    assert h.flags["vhd_type"] == "differencing"
    assert h.flags["qemu_supported"] is False
    # qemu 7.2 opens it as a plain dynamic disk with no backing file at all.
    q = qemu_info(path)
    assert q["format"] == "vpc" and "backing-filename" not in q
    assert h.virtual_size == q["virtual-size"]


def test_differencing_without_locator_uses_unicode_name(make) -> None:
    path = make.create("child.vhd", "vpc", "64M")
    _differencing(path, locator=None)
    assert parse_file(path).backing_file == "base.vhd"


def test_truncated_dynamic_is_refused_like_qemu(make) -> None:
    path = make.create("t.vhd", "vpc", "64M")
    subprocess.run(["qemu-io", "-f", "vpc", "-c", "write 0 1M", str(path)], check=True)
    os.truncate(path, 1024 * 1024)
    assert qemu_fails(path)
    with pytest.raises(ParseError, match="truncated"):
        parse_file(path)


@pytest.mark.parametrize(
    ("offset", "fmt", "value", "message"),
    [
        (512 + 32, ">I", 3000, "block size"),  # block_size not a power of two
        (512 + 28, ">I", 1, "too small"),  # max_table_entries
        (512, ">8s", b"cxspars_", "magic"),
        (16, ">Q", 1 << 40, "magic"),  # data_offset past the end
    ],
)
def test_bad_dynamic_header_values(make, offset, fmt, value, message) -> None:
    path = make.create("b.vhd", "vpc", "64M")
    data = bytearray(path.read_bytes())
    struct.pack_into(fmt, data, offset, value)
    fix_checksum(data, 0)
    path.write_bytes(bytes(data))
    assert qemu_fails(path)
    with pytest.raises(ParseError, match=message):
        parse_file(path)


def test_too_big_and_tiny(make) -> None:
    path = make.create("big.vhd", "vpc", "64M", "force_size=on")
    data = bytearray(path.read_bytes())
    struct.pack_into(">Q", data, 48, 3 << 40)  # current_size 3 TiB
    fix_checksum(data, 0)
    path.write_bytes(bytes(data))
    assert qemu_fails(path)
    with pytest.raises(ParseError, match="2040 GiB"):
        parse_file(path)
    for blob in (b"", b"conectix", bytes(100)):
        with pytest.raises(ParseError):
            vpc.parse(BytesReader(blob))
