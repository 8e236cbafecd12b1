"""VHD (qemu's ``vpc``): dynamic and differencing disks, and fixed disks by their footer.

Mirrors qemu 7.2's ``block/vpc.c`` ``vpc_open``:

* The footer is read at offset 0; only when that is not ``conectix`` is it read at EOF-512, and
  then the disk is *fixed* whatever the footer's type field says. Conversely a footer copy at
  offset 0 always means "dynamic" to qemu: a differencing disk opens as a plain dynamic disk and
  its parent is silently ignored.
* A wrong footer checksum is an error in 7.2 ("Incorrect header checksum"), not a warning.
* The virtual size is cylinders x heads x sectors x 512 unless the creator app is one of
  ``win ``, ``qem2``, ``d2v ``, ``CTXS``, ``tap\\0`` (Hyper-V, qemu with force_size, ...) or the
  geometry is the maximum one; then it is the footer's current size.

qemu's prober does not recognise a fixed VHD (no magic at offset 0): it is ``raw`` to
``qemu-img info`` and only opens as ``vpc`` with ``-f vpc``; :func:`parse_fixed_footer` says so.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from .base import BoundedReader, Header, ParseError, named_struct
from .limits import UINT32_MAX, VHD_MAX_GEOMETRY, VHD_MAX_SECTORS, VHD_MAX_TABLE_ENTRIES

MAGIC = b"conectix"
DYN_MAGIC = b"cxsparse"
FOOTER_SIZE = 512

VHD_FIXED, VHD_DYNAMIC, VHD_DIFFERENCING = 2, 3, 4
_TYPE_NAMES = {VHD_FIXED: "fixed", VHD_DYNAMIC: "dynamic", VHD_DIFFERENCING: "differencing"}

#: Creator apps whose images qemu sizes by current_size rather than by CHS geometry.
_CURRENT_SIZE_CREATORS = frozenset({b"win ", b"qem2", b"d2v ", b"CTXS", b"tap\0"})


class VhdFooter(NamedTuple):
    """qemu's ``VHDFooter`` (block/vpc.c), big-endian, the first 85 of its 512 bytes."""

    cookie: bytes
    features: int
    version: int
    data_offset: int
    timestamp: int
    creator_app: bytes
    creator_major: int
    creator_minor: int
    creator_os: bytes
    orig_size: int
    current_size: int
    cyls: int
    heads: int
    secs_per_cyl: int
    type: int
    checksum: int
    uuid: bytes
    in_saved_state: int


class VhdDynHeader(NamedTuple):
    """qemu's ``VHDDynDiskHeader`` up to the parent name (at 64; locators at 576)."""

    magic: bytes
    data_offset: int
    table_offset: int
    version: int
    max_table_entries: int
    block_size: int
    checksum: int
    parent_uuid: bytes
    parent_timestamp: int
    reserved: int


class VhdParentLocator(NamedTuple):
    """One of the eight parent locator entries (24 bytes each)."""

    platform: bytes
    data_space: int
    data_length: int
    reserved: int
    data_offset: int


_FOOTER = named_struct(">8sIIQI4sHH4sQQHBBII16sB", VhdFooter._fields)
_CHECKSUM_AT = 64
_DYN = named_struct(">8sQQIIII16sII", VhdDynHeader._fields)
_LOCATOR = named_struct(">4sIIIQ", VhdParentLocator._fields)
_PARENT_NAME_AT, _PARENT_NAME_LEN, _LOCATORS_AT = 64, 512, 576
DYN_HEADER_SIZE = 1024

#: Read the BAT to check it against the file size only while it is this small (qemu reads it all).
_BAT_CHECK_MAX = 16 * 1024
#: Parent locator payloads longer than this are ignored (a path is a few hundred bytes).
_LOCATOR_MAX = 4096


def probe(head: bytes) -> bool:
    """qemu's ``vpc_probe``: ``conectix`` at offset 0 (so never a fixed VHD)."""
    return head[:8] == MAGIC


def _checksum(footer: bytes) -> int:
    """One's complement of the byte sum, with the checksum field counted as zero."""
    total = sum(footer) - sum(footer[_CHECKSUM_AT : _CHECKSUM_AT + 4])
    return ~total & 0xFFFFFFFF


def _qemu_size(footer: VhdFooter) -> tuple[int, str]:
    """Virtual size in bytes as qemu computes it, and which rule it used."""
    chs = footer.cyls * footer.heads * footer.secs_per_cyl
    if footer.creator_app in _CURRENT_SIZE_CREATORS or chs == VHD_MAX_GEOMETRY:
        return (footer.current_size // 512) * 512, "current_size"
    return chs * 512, "chs"


def _read_footer(r: BoundedReader) -> tuple[bytes, bool]:
    """Footer bytes and whether they came from offset 0 (qemu: dynamic) or EOF-512 (fixed)."""
    head = r.read(0, FOOTER_SIZE)
    if head[:8] == MAGIC:
        return head.ljust(FOOTER_SIZE, b"\0"), True
    if r.size < FOOTER_SIZE:
        raise ParseError("file too small for a VHD footer")
    footer = r.read_exact(r.size - FOOTER_SIZE, FOOTER_SIZE, "VHD footer")
    if footer[:8] != MAGIC:
        raise ParseError("invalid VHD image: no 'conectix' footer at offset 0 or at the end")
    return footer, False


def _check_footer(raw: bytes) -> VhdFooter:
    footer = VhdFooter._make(_FOOTER.unpack_from(raw))
    stored = footer.checksum
    if _checksum(raw) != stored:
        raise ParseError(
            f"incorrect VHD footer checksum (stored {stored:#010x}, computed "
            f"{_checksum(raw):#010x}); qemu refuses the image"
        )
    return footer


def _base_flags(footer: VhdFooter, size_rule: str) -> dict[str, object]:
    disk_type = footer.type
    return {
        "vhd_type": _TYPE_NAMES.get(disk_type, f"unknown({disk_type})"),
        "vhd_current_size": footer.current_size,
        "vhd_original_size": footer.orig_size,
        "vhd_geometry": [footer.cyls, footer.heads, footer.secs_per_cyl],
        "creator_app": footer.creator_app.decode("latin-1"),
        "size_rule": size_rule,
    }


def parse(r: BoundedReader) -> Header:
    """Parse a VHD as ``vpc_open`` would (also a fixed one, as with ``-f vpc``)."""
    raw, at_start = _read_footer(r)
    footer = _check_footer(raw)
    size, rule = _qemu_size(footer)
    if size // 512 > VHD_MAX_SECTORS:
        raise ParseError(f"VHD virtual size {size} is over qemu's 2040 GiB limit")
    flags = _base_flags(footer, rule)
    flags["qemu_supported"] = True
    if not at_start:
        flags["qemu_disk_type"] = "fixed"
        return Header(format="vpc", virtual_size=size, flags=flags)

    flags["qemu_disk_type"] = "dynamic"
    data_offset = footer.data_offset
    dyn = r.read(data_offset, DYN_HEADER_SIZE) if data_offset <= r.size else b""
    if dyn[:8] != DYN_MAGIC:
        raise ParseError(
            f"invalid VHD dynamic header magic at offset {data_offset} (file truncated?)"
        )
    dyn = dyn.ljust(DYN_HEADER_SIZE, b"\0")
    dyn_header = VhdDynHeader._make(_DYN.unpack_from(dyn))
    block_size = dyn_header.block_size
    _check_dynamic(r, size, dyn_header.table_offset, dyn_header.max_table_entries, block_size)
    flags["block_size"] = block_size
    flags["cluster_size"] = block_size

    backing = None
    if footer.type == VHD_DIFFERENCING:
        backing = _parent(r, dyn, flags)
        # qemu opens it as a dynamic disk and ignores the parent: reads would be wrong.
        flags["qemu_supported"] = False
        flags["qemu_ignores_parent"] = True
    # Positional: keywords cost 0.2 us, once per image of a scan.
    return Header("vpc", size, backing, "vpc" if backing else None, flags)


def _check_dynamic(
    r: BoundedReader, size: int, bat_offset: int, max_entries: int, block_size: int
) -> None:
    """The dynamic-header checks of vpc_open, with the BAT read only when it is small."""
    if block_size < 512 or block_size & (block_size - 1):
        raise ParseError(f"invalid VHD block size {block_size}")
    if size // block_size > UINT32_MAX:
        raise ParseError("VHD has too many blocks")
    if max_entries * block_size < size:
        raise ParseError("VHD block allocation table is too small for the disk size")
    if max_entries > VHD_MAX_TABLE_ENTRIES:
        raise ParseError(f"VHD max table entries too large ({max_entries})")
    table_bytes = max_entries * 4
    free_offset = -(-(bat_offset + table_bytes) // 512) * 512
    if table_bytes <= _BAT_CHECK_MAX and bat_offset + table_bytes <= r.size:
        bitmap_size = ((block_size // (8 * 512)) + 511) & ~511
        bat = struct.unpack(f">{max_entries}I", r.read_exact(bat_offset, table_bytes, "VHD BAT"))
        for entry in bat:
            if entry != 0xFFFFFFFF:
                free_offset = max(free_offset, 512 * entry + bitmap_size + block_size)
    if free_offset > r.size:
        raise ParseError(
            "VHD data blocks point after the end of the file: the image has been truncated"
        )


def _parent(r: BoundedReader, dyn: bytes, flags: dict[str, object]) -> str | None:
    """The parent of a differencing disk.

    We prefer the relative Windows locator (``W2ru``) because it finds the parent from the
    child's directory as Virtual PC / Hyper-V do; the parent unicode name is only a file name and
    the absolute locator (``W2ku``) is a Windows path (``C:\\...``) that cannot resolve here.
    Backslashes of the locator are turned into ``/`` so the scanner can resolve it; the stored
    values stay in ``flags`` untouched.
    """
    raw_name = dyn[_PARENT_NAME_AT : _PARENT_NAME_AT + _PARENT_NAME_LEN]
    unicode_name = _utf16(raw_name, "utf-16-be")
    flags["parent_unicode_name"] = unicode_name
    locators: dict[str, str] = {}
    for i in range(8):
        loc = VhdParentLocator._make(_LOCATOR.unpack_from(dyn, _LOCATORS_AT + _LOCATOR.size * i))
        platform, length, offset = loc.platform.decode("latin-1"), loc.data_length, loc.data_offset
        if platform not in ("W2ru", "W2ku") or platform in locators:
            continue
        if not 0 < length <= _LOCATOR_MAX or offset >= r.size:
            continue
        locators[platform] = _utf16(r.read(offset, length), "utf-16-le")
    flags["parent_locators"] = locators
    relative = locators.get("W2ru")
    if relative:
        return relative.replace("\\", "/")
    return unicode_name or None


def _utf16(raw: bytes, codec: str) -> str:
    """Decode a UTF-16 name, cutting at the first NUL character."""
    text = raw[: len(raw) & ~1].decode(codec, "replace")
    return text.split("\0", 1)[0]


def parse_fixed_footer(r: BoundedReader) -> Header | None:
    """A file with no magic whose last 512 bytes are a valid VHD footer: a fixed VHD.

    qemu probes it as ``raw`` (virtual size = file size, footer included); with ``-f vpc`` it opens
    as a VHD. The scanner calls this for magic-less ``.vhd``/``.vpc`` files so the graph can say
    both. Returns None when the end of the file is not a valid footer.
    """
    if r.size < FOOTER_SIZE or r.read(0, 8) == MAGIC:
        return None  # too small, or a dynamic VHD that qemu probes as vpc itself
    raw = r.read(r.size - FOOTER_SIZE, FOOTER_SIZE)
    if raw[:8] != MAGIC or len(raw) != FOOTER_SIZE:
        return None
    footer = VhdFooter._make(_FOOTER.unpack_from(raw))
    if _checksum(raw) != footer.checksum:
        return None
    size, rule = _qemu_size(footer)
    if size // 512 > VHD_MAX_SECTORS:
        return None
    flags = _base_flags(footer, rule)
    flags["vpc_virtual_size"] = size
    return Header(format="raw", virtual_size=r.size, flags=flags, also_opens_as=("vpc",))
