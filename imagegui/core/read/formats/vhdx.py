"""VHDX: virtual size, block size and parent locator from the metadata region.

Follows qemu 7.2's ``block/vhdx.c`` open path (headers, log sanity, region table, metadata table,
metadata items, BAT size) but reads only the handful of bytes each step needs: a qemu-made VHDX
keeps its metadata at 2-3 MiB, past the scanner's 1 MiB read budget if we read it like qemu does
(64 KiB blocks). Five or six small preads, a few hundred bytes in all.

What we do not check, and qemu does: the CRC-32C checksums of the headers and the region table
(pure Python CRC-32C over 72 KiB would cost more than the whole rest of a scan; a header with the
right signature but a bad checksum is accepted here, ``flags["checksums_verified"]`` says so),
log replay (``flags["log_pending"]``: qemu refuses a read-only open if the log has entries), and
the BAT entries themselves (only the BAT region's size).

qemu refuses differencing VHDX files (``has_parent``); we still read their parent locator so the
graph can show the chain: ``backing_file`` is ``relative_path`` (backslashes turned into ``/`` so
it resolves from the child's directory) or else ``absolute_win32_path`` as stored.
"""

from __future__ import annotations

import struct
import uuid
from typing import NamedTuple

from .base import BoundedReader, Header, ParseError, named_struct
from .limits import (
    UINT32_MAX,
    VHDX_BLOCK_SIZE_MAX,
    VHDX_BLOCK_SIZE_MIN,
    VHDX_MAX_REGION_ENTRIES,
    VHDX_MAX_SECTORS_PER_BLOCK,
    VHDX_METADATA_TABLE_MAX_SIZE,
)

MAGIC = b"vhdxfile"

HEADER1_OFFSET, HEADER2_OFFSET = 64 * 1024, 128 * 1024
REGION_TABLE_OFFSET = 192 * 1024
MIB = 1024 * 1024
#: A parent locator is a few short UTF-16 strings; more than this is not a real one.
PARENT_LOCATOR_MAX = 64 * 1024
#: Fixed metadata items are read in one go when they sit this close together.
_ITEM_SPAN_MAX = 64 * 1024


def _guid(text: str) -> bytes:
    return uuid.UUID(text).bytes_le


BAT_GUID = _guid("2DC27766-F623-4200-9D64-115E9BFD4A08")
METADATA_GUID = _guid("8B7CA206-4790-4B9A-B8FE-575F050F886E")
FILE_PARAMETERS_GUID = _guid("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
VIRTUAL_SIZE_GUID = _guid("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
PAGE83_GUID = _guid("BECA12AB-B2E6-4523-93EF-C309E000C746")
LOGICAL_SECTOR_GUID = _guid("8141BF1D-A96F-4709-BA47-F233A8FAAB5F")
PHYSICAL_SECTOR_GUID = _guid("CDA348C7-445D-4471-9CC9-E9885251C556")
PARENT_LOCATOR_GUID = _guid("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C")
#: Locator type of a VHDX parent (the only kind the spec defines).
PARENT_VHDX_GUID = _guid("B04AEFB7-D19E-4A81-B789-25B8E9445913")

_ITEMS = {
    FILE_PARAMETERS_GUID: "file_parameters",
    VIRTUAL_SIZE_GUID: "virtual_size",
    PAGE83_GUID: "page83",
    LOGICAL_SECTOR_GUID: "logical_sector_size",
    PHYSICAL_SECTOR_GUID: "physical_sector_size",
    PARENT_LOCATOR_GUID: "parent_locator",
}
_REQUIRED_ITEMS = frozenset(_ITEMS.values()) - {"parent_locator"}


class VhdxHeader(NamedTuple):
    """qemu's ``VHDXHeader`` (block/vhdx.h) up to the log offset, little-endian."""

    signature: bytes
    checksum: int
    sequence_number: int
    file_write_guid: bytes
    data_write_guid: bytes
    log_guid: bytes
    log_version: int
    version: int
    log_length: int
    log_offset: int


class VhdxMetadataTableHeader(NamedTuple):
    """qemu's ``VHDXMetadataTableHeader``: the entries follow it, 32 bytes each."""

    signature: bytes
    reserved: int
    entry_count: int
    reserved2: bytes


#: Where a region (or the log) lies in the file: (start, end), end excluded. A plain tuple:
#: made several times per file, and a NamedTuple costs three times as much to make.
Region = tuple[int, int]

_HEADER = named_struct("<4sIQ16s16s16sHHIQ", VhdxHeader._fields)
_REGION_HDR = struct.Struct("<4sIII")  # signature, checksum, entry_count, reserved
_REGION_ENTRY = struct.Struct("<16sQII")  # guid, file_offset, length, required bit
_META_HDR = named_struct("<8sHH20s", VhdxMetadataTableHeader._fields)
_META_ENTRY = struct.Struct("<16sIII4s")  # item_id, offset, length, flags (bit 2 required)
_LOCATOR_HDR = struct.Struct("<16sHH")  # locator type, reserved, key_value_count
_LOCATOR_ENTRY = struct.Struct("<IIHH")  # key_offset, value_offset, key_length, value_length
_ZERO_GUID = bytes(16)


def probe(head: bytes) -> bool:
    """qemu's ``vhdx_probe``: ``vhdxfile`` at offset 0."""
    return head[:8] == MAGIC


def parse(r: BoundedReader) -> Header:
    """Read what ``qemu-img info`` reports for a VHDX, in a few small reads."""
    if r.read(0, 8) != MAGIC:
        raise ParseError("not a VHDX file: no 'vhdxfile' signature")
    hdr = _current_header(r)
    log_guid, log_version = hdr.log_guid, hdr.log_version
    log_length, log_offset = hdr.log_length, hdr.log_offset
    if log_offset < MIB or log_offset % MIB:
        raise ParseError(f"invalid VHDX log offset {log_offset} (must be a multiple of 1 MiB)")
    if log_version != 0:
        raise ParseError(f"unsupported VHDX log version {log_version}")
    if log_guid != _ZERO_GUID and log_length and log_length % MIB:
        raise ParseError(f"invalid VHDX log length {log_length}")
    regions: list[Region] = [(log_offset, log_offset + log_length)]
    (bat_start, bat_end), metadata = _region_table(r, regions)
    items = _metadata_table(r, metadata)
    meta_start, _ = metadata
    values = _read_items(r, meta_start, items)

    block_size, param_bits = struct.unpack_from("<II", values["file_parameters"])
    (virtual_size,) = struct.unpack_from("<Q", values["virtual_size"])
    (logical,) = struct.unpack_from("<I", values["logical_sector_size"])
    (physical,) = struct.unpack_from("<I", values["physical_sector_size"])
    has_parent = bool(param_bits & 2)
    flags: dict[str, object] = {
        "block_size": block_size,
        "cluster_size": block_size,
        "logical_sector_size": logical,
        "physical_sector_size": physical,
        "leave_blocks_allocated": bool(param_bits & 1),
        "has_parent": has_parent,
        "log_pending": log_guid != _ZERO_GUID and log_length != 0,
        "checksums_verified": False,
        "qemu_supported": not has_parent,
    }
    backing = backing_format = None
    if has_parent:
        if "parent_locator" not in items:
            raise ParseError("VHDX has_parent is set but there is no parent locator")
        ltype, locator = _parent_locator(r, meta_start, items["parent_locator"])
        flags["parent_locator"] = locator
        flags["parent_locator_type"] = str(uuid.UUID(bytes_le=ltype))
        rel = locator.get("relative_path")
        backing = rel.replace("\\", "/") if rel else locator.get("absolute_win32_path")
        backing_format = "vhdx" if backing and ltype == PARENT_VHDX_GUID else None

    in_range = VHDX_BLOCK_SIZE_MIN <= block_size <= VHDX_BLOCK_SIZE_MAX
    if not in_range or block_size & (block_size - 1):
        raise ParseError(f"invalid VHDX block size {block_size}")
    if logical not in (512, 4096):
        raise ParseError(f"invalid VHDX logical sector size {logical}")
    _check_bat_size(virtual_size, block_size, logical, has_parent, bat_end - bat_start)
    # Positional: keywords cost 0.2 us, once per image of a scan.
    return Header("vhdx", virtual_size // 512 * 512, backing or None, backing_format, flags)


def _current_header(r: BoundedReader) -> VhdxHeader:
    """The valid header with the higher sequence number (signature and version only)."""
    found: list[VhdxHeader] = []
    for off in (HEADER1_OFFSET, HEADER2_OFFSET):
        raw = r.read(off, _HEADER.size)
        if len(raw) == _HEADER.size:
            h = VhdxHeader._make(_HEADER.unpack(raw))
            if h.signature == b"head" and h.version == 1:
                found.append(h)
    if not found:
        raise ParseError("no valid VHDX header found (file truncated or corrupt)")
    if (
        len(found) == 2
        and found[0].sequence_number == found[1].sequence_number
        and found[0] != found[1]
    ):
        raise ParseError("both VHDX headers have the same sequence number but differ")
    return max(found, key=lambda h: h.sequence_number)


def _overlaps(regions: list[Region], start: int, end: int) -> bool:
    return any(not (start >= r_end or end <= r_start) for r_start, r_end in regions)


def _region_table(r: BoundedReader, regions: list[Region]) -> tuple[Region, Region]:
    """BAT and metadata regions; the rules of vhdx_open_region_tables."""
    raw = r.read(REGION_TABLE_OFFSET, _REGION_HDR.size + 4 * _REGION_ENTRY.size)
    if len(raw) < _REGION_HDR.size:
        raise ParseError("file is truncated: VHDX region table is missing")
    sig, _, count, _ = _REGION_HDR.unpack_from(raw)
    if sig != b"regi":
        raise ParseError("invalid VHDX region table signature")
    if count > VHDX_MAX_REGION_ENTRIES:
        raise ParseError(f"VHDX region table has too many entries ({count})")
    need = _REGION_HDR.size + count * _REGION_ENTRY.size
    if len(raw) < need:
        raw = r.read_exact(REGION_TABLE_OFFSET, need, "VHDX region table")
    bat = metadata = None
    for i in range(count):
        guid, start, length, bits = _REGION_ENTRY.unpack_from(raw, _REGION_HDR.size + 32 * i)
        end = start + length
        if _overlaps(regions, start, end):
            raise ParseError(f"VHDX region {start}-{end} overlaps another region")
        region = (start, end)
        regions.append(region)
        if guid == BAT_GUID:
            if bat:
                raise ParseError("VHDX region table lists the BAT twice")
            bat = region
        elif guid == METADATA_GUID:
            if metadata:
                raise ParseError("VHDX region table lists the metadata region twice")
            metadata = region
        elif bits & 1:
            raise ParseError("VHDX has a required region qemu does not know; it cannot open it")
    if bat is None or metadata is None:
        raise ParseError("VHDX region table lacks the BAT or the metadata region")
    return bat, metadata


def _metadata_table(r: BoundedReader, metadata: Region) -> dict[str, tuple[int, int]]:
    """Metadata items by name -> (offset in region, length); vhdx_parse_metadata's checks."""
    start, _ = metadata
    raw = r.read(start, _META_HDR.size + 8 * _META_ENTRY.size)
    if len(raw) < _META_HDR.size or raw[:8] != b"metadata":
        raise ParseError(
            f"invalid VHDX metadata table signature at offset {start} (file truncated?)"
        )
    count = VhdxMetadataTableHeader._make(_META_HDR.unpack_from(raw)).entry_count
    need = _META_HDR.size + count * _META_ENTRY.size
    if need > VHDX_METADATA_TABLE_MAX_SIZE:
        raise ParseError(f"VHDX metadata table has too many entries ({count})")
    if len(raw) < need:
        raw = r.read_exact(start, need, "VHDX metadata table")
    items: dict[str, tuple[int, int]] = {}
    for i in range(count):
        item_id, offset, length, bits, _ = _META_ENTRY.unpack_from(raw, _META_HDR.size + 32 * i)
        name = _ITEMS.get(item_id)
        if name is None:
            if bits & 4:
                raise ParseError("VHDX has a required metadata item qemu does not know")
            continue
        if name in items:
            raise ParseError(f"VHDX metadata lists {name} twice")
        items[name] = (offset, length)
    missing = _REQUIRED_ITEMS - items.keys()
    if missing:
        raise ParseError(f"VHDX metadata lacks {', '.join(sorted(missing))}")
    return items


def _read_items(r: BoundedReader, base: int, items: dict[str, tuple[int, int]]) -> dict[str, bytes]:
    """The four fixed-size items, in one read when they are close together (they always are)."""
    sizes = {
        "file_parameters": 8,
        "virtual_size": 8,
        "logical_sector_size": 4,
        "physical_sector_size": 4,
    }
    lo = min(items[n][0] for n in sizes)
    hi = max(items[n][0] + s for n, s in sizes.items())
    out: dict[str, bytes] = {}
    if hi - lo <= _ITEM_SPAN_MAX:
        block = r.read(base + lo, hi - lo)
        for n, s in sizes.items():
            off = items[n][0] - lo
            out[n] = block[off : off + s]
    else:
        for n, s in sizes.items():
            out[n] = r.read(base + items[n][0], s)
    for n, s in sizes.items():
        if len(out[n]) != s:
            raise ParseError(f"file is truncated: VHDX {n.replace('_', ' ')} is past the end")
    return out


def _check_bat_size(
    virtual_size: int, block_size: int, logical: int, has_parent: bool, bat_length: int
) -> None:
    """vhdx_calc_bat_entries, with qemu's 32-bit arithmetic, against the BAT region length."""
    chunk_ratio = VHDX_MAX_SECTORS_PER_BLOCK * logical // block_size
    data_blocks = -(-virtual_size // block_size) & UINT32_MAX
    if has_parent:
        bitmap_blocks = -(-data_blocks // chunk_ratio)
        entries = bitmap_blocks * (chunk_ratio + 1)
    else:
        entries = data_blocks + (((data_blocks - 1) & UINT32_MAX) >> (chunk_ratio.bit_length() - 1))
    if (entries & UINT32_MAX) > bat_length // 8:
        raise ParseError("VHDX BAT region is too small for the virtual disk size")


def _parent_locator(
    r: BoundedReader, base: int, item: tuple[int, int]
) -> tuple[bytes, dict[str, str]]:
    """Locator type and key/value pairs (UTF-16LE) of a differencing VHDX's parent locator."""
    offset, length = item
    if length < _LOCATOR_HDR.size or length > PARENT_LOCATOR_MAX:
        raise ParseError(f"invalid VHDX parent locator length {length}")
    raw = r.read_exact(base + offset, length, "VHDX parent locator")
    ltype, _, count = _LOCATOR_HDR.unpack_from(raw)
    if _LOCATOR_HDR.size + count * _LOCATOR_ENTRY.size > length:
        raise ParseError("VHDX parent locator entries run past the item")
    pairs: dict[str, str] = {}
    for i in range(count):
        k_off, v_off, k_len, v_len = _LOCATOR_ENTRY.unpack_from(
            raw, _LOCATOR_HDR.size + i * _LOCATOR_ENTRY.size
        )
        if k_off + k_len > length or v_off + v_len > length:
            raise ParseError("VHDX parent locator key or value runs past the item")
        key = raw[k_off : k_off + k_len].decode("utf-16-le", "replace")
        pairs[key] = raw[v_off : v_off + v_len].decode("utf-16-le", "replace")
    return ltype, pairs
