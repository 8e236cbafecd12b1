"""VHDX headers read natively must say what ``qemu-img info`` says about the same file."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from conftest import qemu_img, qemu_info

from imagegui.core.read.formats import vhdx
from imagegui.core.read.formats.base import BoundedReader, BytesReader, Header, ParseError

RT = vhdx.REGION_TABLE_OFFSET


def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """Slow but simple CRC-32C, to re-seal hand-edited region tables so qemu reads them."""
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def reseal_region_table(data: bytearray) -> None:
    struct.pack_into("<I", data, RT + 4, 0)
    struct.pack_into("<I", data, RT + 4, crc32c(bytes(data[RT : RT + 64 * 1024])))


def parse_file(path: Path) -> tuple[Header, BoundedReader]:
    with open(path, "rb") as f:
        r = BoundedReader(f, os.fstat(f.fileno()).st_size)
        head = os.pread(f.fileno(), 4096, 0)
        r.prime(0, head)
        assert vhdx.probe(head)
        return vhdx.parse(r), r


def qemu_fails(path: Path) -> str | None:
    proc = qemu_img("info", "-U", "--output=json", path, check=False)
    return proc.stderr if proc.returncode else None


def metadata_offset(data: bytes) -> int:
    for i in range(struct.unpack_from("<I", data, RT + 8)[0]):
        guid, off, _, _ = struct.unpack_from("<16sQII", data, RT + 16 + 32 * i)
        if guid == vhdx.METADATA_GUID:
            return off
    raise AssertionError("no metadata region")


def item_offset(data: bytes, guid: bytes) -> int:
    md = metadata_offset(data)
    for i in range(struct.unpack_from("<H", data, md + 10)[0]):
        item, off, _, _, _ = struct.unpack_from("<16sIII4s", data, md + 32 + 32 * i)
        if item == guid:
            return md + off
    raise AssertionError("no such item")


@pytest.mark.parametrize(
    ("size", "opts"),
    [
        ("100M", ()),
        ("1G", ("block_size=33554432",)),
        ("10M", ("subformat=fixed",)),
        ("3T", ("block_size=268435456",)),
        ("1G", ("log_size=4M",)),
    ],
)
def test_plain_matches_qemu(make, size: str, opts: tuple[str, ...]) -> None:
    path = make.create("x.vhdx", "vhdx", size, *opts)
    h, r = parse_file(path)
    q = qemu_info(path)
    assert (h.format, h.virtual_size) == (q["format"], q["virtual-size"])
    assert h.flags["block_size"] == q["cluster-size"]
    assert h.backing_file is None and h.flags["has_parent"] is False
    assert h.flags["qemu_supported"] is True
    assert h.flags["leave_blocks_allocated"] is ("subformat=fixed" in opts)
    # Metadata lives at 2-3 MiB; a handful of small reads must do.
    assert r.used < 2048


def _make_differencing(path: Path, pairs: dict[str, str]) -> None:
    """Set has_parent and add a parent locator metadata item (qemu cannot create one)."""
    data = bytearray(path.read_bytes())
    md = metadata_offset(data)
    struct.pack_into("<I", data, item_offset(data, vhdx.FILE_PARAMETERS_GUID) + 4, 3)
    count = struct.unpack_from("<H", data, md + 10)[0]
    # Build the locator: header, entries, then UTF-16LE strings.
    head_len = 20 + 12 * len(pairs)
    blob, entries = b"", b""
    for k, v in pairs.items():
        kb, vb = k.encode("utf-16-le"), v.encode("utf-16-le")
        k_off = head_len + len(blob)
        blob += kb
        v_off = head_len + len(blob)
        blob += vb
        entries += struct.pack("<IIHH", k_off, v_off, len(kb), len(vb))
    locator = struct.pack("<16sHH", vhdx.PARENT_VHDX_GUID, 0, len(pairs)) + entries + blob
    loc_rel = 64 * 1024 + 32 * 1024  # free space after qemu's items
    data[md + loc_rel : md + loc_rel + len(locator)] = locator
    entry = struct.pack("<16sIII4s", vhdx.PARENT_LOCATOR_GUID, loc_rel, len(locator), 4, b"")
    data[md + 32 + 32 * count : md + 64 + 32 * count] = entry
    struct.pack_into("<H", data, md + 10, count + 1)
    path.write_bytes(bytes(data))


def test_differencing_reports_parent_qemu_refuses(make) -> None:
    path = make.create("child.vhdx", "vhdx", "100M")
    pairs = {
        "parent_linkage": "{83ee6c4c-2a06-4a1b-9f5e-7b5d1e0a1c11}",
        "relative_path": "..\\bases\\base.vhdx",
        "absolute_win32_path": "C:\\vms\\bases\\base.vhdx",
        "volume_path": "\\\\?\\Volume{0}\\vms\\bases\\base.vhdx",
    }
    _make_differencing(path, pairs)
    err = qemu_fails(path)
    assert err and "not supported" in err.lower()
    h, r = parse_file(path)
    assert h.backing_file == "../bases/base.vhdx"
    assert h.backing_format == "vhdx"
    assert h.flags["has_parent"] is True and h.flags["qemu_supported"] is False
    assert h.flags["parent_locator"] == pairs
    assert h.virtual_size == 100 * 1024 * 1024
    assert r.used < 4096


def test_differencing_falls_back_to_absolute_path(make) -> None:
    path = make.create("child.vhdx", "vhdx", "100M")
    _make_differencing(path, {"absolute_win32_path": "C:\\base.vhdx"})
    assert parse_file(path)[0].backing_file == "C:\\base.vhdx"


def test_has_parent_without_locator_is_refused(make) -> None:
    path = make.create("p.vhdx", "vhdx", "100M")
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, item_offset(data, vhdx.FILE_PARAMETERS_GUID) + 4, 2)
    path.write_bytes(bytes(data))
    assert qemu_fails(path)
    with pytest.raises(ParseError, match="parent locator"):
        parse_file(path)


def test_region_table_pointing_past_eof(make) -> None:
    path = make.create("r.vhdx", "vhdx", "100M")
    data = bytearray(path.read_bytes())
    for i in range(struct.unpack_from("<I", data, RT + 8)[0]):
        off = RT + 16 + 32 * i
        if data[off : off + 16] == vhdx.METADATA_GUID:
            struct.pack_into("<Q", data, off + 16, 1 << 40)
    reseal_region_table(data)
    path.write_bytes(bytes(data))
    assert qemu_fails(path)
    with pytest.raises(ParseError, match="metadata table"):
        parse_file(path)


def test_overlapping_regions_are_refused(make) -> None:
    path = make.create("o.vhdx", "vhdx", "100M")
    data = bytearray(path.read_bytes())
    bat_start = struct.unpack_from("<Q", data, RT + 16 + 16)[0]
    struct.pack_into("<Q", data, RT + 16 + 32 + 16, bat_start)  # metadata on top of the BAT
    reseal_region_table(data)
    path.write_bytes(bytes(data))
    assert qemu_fails(path)
    with pytest.raises(ParseError, match="overlaps"):
        parse_file(path)


def test_bad_block_size_and_sector_size(make) -> None:
    base = make.create("b.vhdx", "vhdx", "100M")
    original = base.read_bytes()
    for guid, rel, value, message in [
        (vhdx.FILE_PARAMETERS_GUID, 0, 3 * 1024 * 1024, "block size"),
        (vhdx.LOGICAL_SECTOR_GUID, 0, 1000, "logical sector"),
    ]:
        data = bytearray(original)
        struct.pack_into("<I", data, item_offset(data, guid) + rel, value)
        base.write_bytes(bytes(data))
        assert qemu_fails(base), message
        with pytest.raises(ParseError, match=message):
            parse_file(base)


def test_bat_too_small_for_size(make) -> None:
    path = make.create("s.vhdx", "vhdx", "100M")
    data = bytearray(path.read_bytes())
    struct.pack_into("<Q", data, item_offset(data, vhdx.VIRTUAL_SIZE_GUID), 1 << 50)
    path.write_bytes(bytes(data))
    assert qemu_fails(path)
    with pytest.raises(ParseError, match="BAT"):
        parse_file(path)


def test_truncated_and_tiny(make) -> None:
    path = make.create("t.vhdx", "vhdx", "100M")
    os.truncate(path, 200 * 1024)
    assert qemu_fails(path)
    with pytest.raises(ParseError):
        parse_file(path)
    for blob in (b"", b"vhdxfile", b"vhdxfile" + bytes(70000)):
        with pytest.raises(ParseError):
            vhdx.parse(BytesReader(blob))


def test_no_valid_header(make) -> None:
    path = make.create("h.vhdx", "vhdx", "100M")
    data = bytearray(path.read_bytes())
    data[64 * 1024 : 64 * 1024 + 4] = b"xxxx"
    data[128 * 1024 : 128 * 1024 + 4] = b"xxxx"
    path.write_bytes(bytes(data))
    assert qemu_fails(path)
    with pytest.raises(ParseError, match="header"):
        parse_file(path)
