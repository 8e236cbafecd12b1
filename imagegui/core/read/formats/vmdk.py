"""VMDK: sparse extents (``KDMV``, VMware 3 ``COWD``) and text descriptor files.

Everything here mirrors qemu 7.2's ``block/vmdk.c`` rather than the VMware spec, because the point
is to predict what ``qemu-img info`` will say without running it:

* qemu treats the descriptor as a C string: a NUL ends it.
* Extent lines are parsed with ``sscanf("%10s %ld %10s \\"%511[^\\n\\r\\"]\\" %ld")`` starting at
  every line *but running over the rest of the text*, so a blank line just before an extent line
  makes qemu count that extent twice. We emulate the scan instead of using a regex so we agree.
* ``CID``, ``parentCID`` and ``parentFileNameHint`` are found with ``strstr`` in the first
  20 sectors of the descriptor (sector 1 of a sparse file; offset 0 of a descriptor file).
* ``parentFileNameHint`` is read whenever it is present, whatever ``parentCID`` says, and qemu then
  reports the backing format as ``vmdk``.

We never open extent files: the virtual size of a descriptor is the sum of its extents' sectors
(qemu would use each sparse extent's own header capacity, which normally agrees).
"""

from __future__ import annotations

import posixpath
import re
import struct
from typing import NamedTuple, cast

from .base import BoundedReader, Header, ParseError, decode_name, named_struct
from .limits import (
    BACKING_NAME_BUF,
    INT64_MAX,
    UINT32_MAX,
    UINT64_MAX,
    VMDK_DESC_SIZE,
    VMDK_MAX_CLUSTER_SECTORS,
    VMDK_MAX_GTES_PER_GT,
    VMDK_MAX_L1_ENTRIES,
    VMDK_MAX_VERSION,
)

MAGIC = b"KDMV"
MAGIC_VMDK3 = b"COWD"

#: We refuse descriptor texts longer than this (qemu reads up to 1 MiB); real ones are < 2 KiB.
MAX_DESCRIPTOR = 64 * 1024
#: The embedded descriptor of a sparse file is always looked up at sector 1 (s->desc_offset).
SPARSE_DESC_OFFSET = 0x200

GD_AT_END = 0xFFFFFFFFFFFFFFFF
FLAG_MARKER = 1 << 17
COMPRESSION_DEFLATE = 1
MARKER_FOOTER = 3

#: createType values qemu accepts in a descriptor-only file (vmdk_open_desc_file).
DESC_CREATE_TYPES = frozenset(
    {
        "monolithicFlat",
        "vmfs",
        "vmfsSparse",
        "seSparse",
        "twoGbMaxExtentSparse",
        "twoGbMaxExtentFlat",
    }
)
EXTENT_TYPES = frozenset({"FLAT", "SPARSE", "VMFS", "VMFSSPARSE", "SESPARSE"})


class Vmdk4Header(NamedTuple):
    """qemu's ``VMDK4Header`` (block/vmdk.c), after the ``KDMV`` magic, little-endian; sizes
    and offsets in 512-byte sectors."""

    version: int
    flags: int
    capacity: int
    granularity: int
    desc_offset: int
    desc_size: int
    num_gtes_per_gt: int
    rgd_offset: int
    gd_offset: int
    grain_offset: int
    filler: bytes
    check_bytes: bytes
    compress_algorithm: int


class Vmdk3Header(NamedTuple):
    """qemu's ``VMDK3Header`` (VMware 3 ``COWD``), after the magic, little-endian."""

    version: int
    flags: int
    disk_sectors: int
    granularity: int
    l1dir_offset: int
    l1dir_size: int
    file_sectors: int
    cylinders: int
    heads: int
    sectors_per_track: int


_VMDK4 = named_struct("<IIQQQQIQQQc4sH", Vmdk4Header._fields)
_VMDK3 = named_struct("<10I", Vmdk3Header._fields)
# Stream-optimized footer: marker (val, size, type) / magic + header / end-of-stream marker.
_MARKER = struct.Struct("<QII")

_C_SPACE = b" \t\n\v\f\r"
_RW_LINE = re.compile(rb"(?m)^[ \t\v\f\r]*RW(?=[ \t\n\v\f\r]|\Z)")
_HEX = re.compile(rb"[ \t\n\v\f\r]*([+-]?)(?:0[xX](?=[0-9a-fA-F]))?([0-9a-fA-F]+)")
_DEC = re.compile(rb"[ \t\n\v\f\r]*([+-]?)([0-9]+)")
_VERSION = re.compile(rb"(?m)^version=(\d+)")
_PROBE_VERSIONS = (b"version=1", b"version=2", b"version=3")
#: qemu probes with the first BLOCK_PROBE_BUF_SIZE bytes only.
PROBE_BUF_SIZE = 512


def probe(head: bytes) -> bool:
    """True if qemu's ``vmdk_probe`` would claim these first bytes.

    Sparse magics win outright; otherwise the text must reach a ``version=1|2|3`` line skipping
    only ``#`` comment lines and lines made of spaces (an empty line stops the probe, as in qemu).
    """
    buf = head[:PROBE_BUF_SIZE]
    if len(buf) < 4:
        return False
    if buf[:4] in (MAGIC, MAGIC_VMDK3):
        return True
    p, end = 0, len(buf)
    while p < end:
        c = buf[p]
        if c == 0x23:  # '#': skip the comment line
            nl = buf.find(b"\n", p)
            p = end + 1 if nl < 0 else nl + 1
            continue
        if c == 0x20:  # only blank lines of spaces before 'version='
            while p < end and buf[p] == 0x20:
                p += 1
            if p < end and buf[p] == 0x0D:
                p += 1
            if p == end or buf[p] != 0x0A:
                return False
            p += 1
            continue
        word = buf[p : p + 9]
        if word in _PROBE_VERSIONS:
            nxt = buf[p + 9 : p + 11]
            return nxt[:1] == b"\n" or nxt == b"\r\n"
        return False
    return False


def parse(r: BoundedReader) -> Header:
    """Parse a VMDK file the way ``vmdk_open`` does, without opening any extent."""
    head = r.read(0, 4)
    if len(head) < 4:
        raise ParseError("file is too small to be a VMDK image")
    if head == MAGIC:
        return _parse_vmdk4(r)
    if head == MAGIC_VMDK3:
        return _parse_vmdk3(r)
    text = _read_c_text(r, 0, MAX_DESCRIPTOR, "VMDK descriptor")
    header_extents, create_type, extents = _parse_descriptor(text)
    return _finish(
        text[:VMDK_DESC_SIZE],
        virtual_size=_sectors(extents) * 512,
        create_type=create_type,
        version=_descriptor_version(text),
        extents=extents,
        extent_names=header_extents,
        compressed=False,
    )


# --- sparse files ---------------------------------------------------------------------------


def _parse_vmdk4(r: BoundedReader) -> Header:
    raw = r.read(4, _VMDK4.size)
    if len(raw) < _VMDK4.size:
        # qemu zero-fills a short read; a header that small cannot be a usable image anyway.
        raise ParseError("file is truncated: VMDK sparse header runs past the end")
    h = Vmdk4Header._make(_VMDK4.unpack(raw))
    desc_offset = h.desc_offset

    if h.capacity == 0 and desc_offset:
        # A sparse file that only carries a descriptor (qemu opens it as a descriptor file).
        text = _read_c_text(r, desc_offset << 9, MAX_DESCRIPTOR, "embedded VMDK descriptor")
        names, create_type, extents = _parse_descriptor(text)
        return _finish(
            _read_c_text(r, SPARSE_DESC_OFFSET, VMDK_DESC_SIZE, "embedded VMDK descriptor"),
            virtual_size=_sectors(extents) * 512,
            create_type=create_type,
            version=h.version,
            extents=extents,
            extent_names=names,
            compressed=False,
        )

    stream_footer = False
    if h.gd_offset == GD_AT_END:
        h = _read_stream_footer(r)
        stream_footer = True
    version, capacity, granularity = h.version, h.capacity, h.granularity
    num_gtes, grain_offset = h.num_gtes_per_gt, h.grain_offset

    if version > VMDK_MAX_VERSION:
        raise ParseError(
            f"unsupported VMDK version {version} (qemu reads versions 1 to {VMDK_MAX_VERSION})"
        )
    if num_gtes > VMDK_MAX_GTES_PER_GT:
        raise ParseError(f"VMDK L2 table size too big ({num_gtes} entries per grain table)")
    l1_entry_sectors = (num_gtes * granularity) & UINT32_MAX
    if l1_entry_sectors == 0:
        raise ParseError("VMDK L1 entry size is invalid (grain size or grain table size is 0)")
    l1_size = (((capacity + l1_entry_sectors - 1) & UINT64_MAX) // l1_entry_sectors) & UINT32_MAX
    file_sectors = -(-r.size // 512)
    if file_sectors < grain_offset:
        raise ParseError(
            f"VMDK file is truncated: expecting at least {grain_offset * 512} bytes, found {r.size}"
        )
    _check_extent_limits(granularity, l1_size)

    compressed = h.compress_algorithm == COMPRESSION_DEFLATE
    hdr = _finish(
        _read_c_text(r, SPARSE_DESC_OFFSET, VMDK_DESC_SIZE, "embedded VMDK descriptor"),
        virtual_size=(capacity & INT64_MAX) * 512,
        create_type="streamOptimized" if compressed else "monolithicSparse",
        version=version,
        extents=[],
        extent_names=(),
        compressed=compressed,
    )
    hdr.flags.update(
        {
            "cluster_size": granularity * 512,
            "grain_directory_at_end": stream_footer,
            "has_markers": bool(h.flags & FLAG_MARKER),
            # qemu opens version 3 (changed block tracking) images read-only only.
            "read_only": version == 3 and not compressed,
            "gd_offset": h.gd_offset,
        }
    )
    return hdr


def _read_stream_footer(r: BoundedReader) -> Vmdk4Header:
    """The stream-optimized footer: the real header, 1536 bytes before the end of the file."""
    off = (-(-r.size // 512)) * 512 - 1536
    if off < 0:
        raise ParseError("file is truncated: VMDK stream-optimized footer is missing")
    buf = r.read(off, 1536).ljust(1536, b"\0")
    _, m_size, m_type = _MARKER.unpack_from(buf, 0)
    e_val, e_size, e_type = _MARKER.unpack_from(buf, 1024)
    if (
        buf[512:516] != MAGIC
        or m_size != 0
        or m_type != MARKER_FOOTER
        or e_val != 0
        or e_size != 0
        or e_type != 0
    ):
        raise ParseError("invalid VMDK stream-optimized footer (file truncated or corrupt?)")
    return Vmdk4Header._make(_VMDK4.unpack_from(buf, 516))


def _parse_vmdk3(r: BoundedReader) -> Header:
    raw = r.read(4, _VMDK3.size)
    if len(raw) < _VMDK3.size:
        raise ParseError("file is truncated: VMDK3 (COWD) header runs past the end")
    h = Vmdk3Header._make(_VMDK3.unpack(raw))
    granularity = h.granularity
    _check_extent_limits(granularity, h.l1dir_size)
    hdr = _finish(
        _read_c_text(r, SPARSE_DESC_OFFSET, VMDK_DESC_SIZE, "VMDK3 descriptor area"),
        virtual_size=h.disk_sectors * 512,
        create_type=None,
        version=h.version,
        extents=[],
        extent_names=(),
        compressed=False,
    )
    hdr.flags.update({"cluster_size": granularity * 512, "vmware3": True})
    return hdr


def _check_extent_limits(cluster_sectors: int, l1_size: int) -> None:
    """vmdk_add_extent's sanity limits."""
    if cluster_sectors > VMDK_MAX_CLUSTER_SECTORS:
        raise ParseError("invalid VMDK granularity (over 1 GiB per grain); image may be corrupt")
    if l1_size > VMDK_MAX_L1_ENTRIES:
        raise ParseError("VMDK L1 table too big; image may be corrupt")


# --- descriptor text ------------------------------------------------------------------------


def _read_c_text(r: BoundedReader, offset: int, limit: int, what: str) -> bytes:
    """Read a NUL-terminated text of at most ``limit`` bytes, cheaply.

    The first chunk stays inside the scanner's primed 4 KiB when it can, so the usual small
    descriptor costs no read at all; we only go further when no NUL has been seen yet.
    """
    first = min(limit, max(4096 - offset, 512))
    data = r.read(offset, first)
    nul = data.find(b"\0")
    if nul >= 0:
        return data[:nul]
    if len(data) == first and first < limit:
        data += r.read(offset + first, limit - first)
        nul = data.find(b"\0")
        if nul >= 0:
            return data[:nul]
    if len(data) >= limit and limit == MAX_DESCRIPTOR and offset + limit < r.size:
        raise ParseError(
            f"{what} is larger than {MAX_DESCRIPTOR // 1024} KiB; refusing to read it "
            "(is this really a VMDK descriptor?)"
        )
    return data[:limit]


def _sectors(extents: list[dict[str, object]]) -> int:
    """The descriptor's extents' total length in sectors (each ``sectors`` is a parsed int)."""
    return sum(cast(int, e["sectors"]) for e in extents)


def _parse_descriptor(text: bytes) -> tuple[tuple[str, ...], str, list[dict[str, object]]]:
    """createType and extents of a descriptor-only file (vmdk_open_desc_file)."""
    create_type = _description_value(text, b"createType", 128)
    if create_type is None:
        raise ParseError('invalid VMDK image descriptor: no createType="..." value')
    ct = decode_name(create_type)
    if ct not in DESC_CREATE_TYPES:
        raise ParseError(f"unsupported VMDK image type '{ct}' in a descriptor file")
    extents = _parse_extents(text)
    if not extents:
        # qemu 7.2 opens it and then aborts (assertion s->num_extents) in qemu-img info.
        raise ParseError("VMDK descriptor lists no usable extent (no 'RW <sectors> ...' line)")
    names: list[str] = []
    for e in extents:
        if e["file"] not in names:
            names.append(e["file"])  # type: ignore[arg-type]
    return tuple(names), ct, extents


def _description_value(text: bytes, key: bytes, buf_size: int) -> bytes | None:
    """vmdk_parse_description: skip two characters after the key, read up to the next quote."""
    pos = text.find(key)
    if pos < 0:
        return None
    pos += len(key) + 2
    if pos >= len(text):
        return None
    end = text.find(b'"', pos)
    if end < 0 or buf_size < end - pos + 1:
        return None
    return text[pos:end]


def _skip_space(text: bytes, i: int) -> int:
    n = len(text)
    while i < n and text[i] in _C_SPACE:
        i += 1
    return i


def _scan_word(text: bytes, i: int, width: int) -> tuple[bytes | None, int]:
    """``%<width>s``: skip white space, then up to ``width`` non-space bytes."""
    i = _skip_space(text, i)
    j, n = i, len(text)
    while j < n and j - i < width and text[j] not in _C_SPACE:
        j += 1
    return (text[i:j] if j > i else None), j


def _scan_long(text: bytes, i: int) -> tuple[int | None, int]:
    """``%ld``: optional sign and decimal digits, saturating like strtol."""
    m = _DEC.match(text, i)
    if not m:
        return None, i
    v = int(m.group(2))
    v = -v if m.group(1) == b"-" else v
    return max(-INT64_MAX - 1, min(v, INT64_MAX)), m.end()


def _scan_extent_line(text: bytes, i: int) -> tuple[int, list]:
    """Emulate qemu's sscanf of one extent line; returns (matches, values)."""
    vals: list = []
    access, i = _scan_word(text, i, 10)
    if access is None:
        return 0, vals
    vals.append(access)
    sectors, i = _scan_long(text, i)
    if sectors is None:
        return 1, vals
    vals.append(sectors)
    etype, i = _scan_word(text, i, 10)
    if etype is None:
        return 2, vals
    vals.append(etype)
    i = _skip_space(text, i)
    if text[i : i + 1] != b'"':
        return 3, vals
    i += 1
    j, n = i, len(text)
    while j < n and j - i < 511 and text[j] not in b'\n\r"':
        j += 1
    if j == i:
        return 3, vals
    vals.append(text[i:j])
    if text[j : j + 1] != b'"':
        return 4, vals
    offset, _ = _scan_long(text, j + 1)
    if offset is None:
        return 4, vals
    vals.append(offset)
    return 5, vals


def _parse_extents(text: bytes) -> list[dict[str, object]]:
    """vmdk_parse_extents, minus opening the files."""
    extents: list[dict[str, object]] = []
    n = len(text)
    scanned: tuple[int, tuple[int, list]] = (-1, (0, []))
    for p, rw_line in _candidate_starts(text):
        nl = text.find(b"\n", p)
        line_end = n if nl < 0 else nl
        # A scan from a blank line skips to the RW line and reads the very same fields:
        # scan once per RW line (else many blank lines make this quadratic).
        if scanned[0] != rw_line:
            scanned = (rw_line, _scan_extent_line(text, rw_line))
        matches, vals = scanned[1]
        if matches >= 4 and vals[0] == b"RW":
            _, sectors, etype, fname = vals[:4]
            offset = vals[4] if matches == 5 else None
            if etype == b"FLAT":
                if matches != 5 or offset is None or offset < 0:
                    raise _invalid_line(text[p:line_end])
            elif etype == b"VMFS":
                if matches != 4:
                    raise _invalid_line(text[p:line_end])
                offset = 0
            elif matches != 4:
                raise _invalid_line(text[p:line_end])
            if sectors > 0 and etype.decode("ascii", "replace") in EXTENT_TYPES:
                extents.append(
                    {
                        "access": "RW",
                        "sectors": sectors,
                        "type": etype.decode("ascii"),
                        "file": decode_name(fname),
                        "offset": offset,
                    }
                )
    return extents


def _candidate_starts(text: bytes) -> list[tuple[int, int]]:
    """(line start, RW line start) for each line from which qemu's scan reaches ``RW``, in order.

    That is every line whose first token is ``RW``, plus the blank lines just before it (sscanf
    skips their newlines and reads the next line). Emulating sscanf only there keeps the common
    descriptor (comments, ddb lines) cheap, and the search stays linear in the text size.
    """
    starts: list[tuple[int, int]] = []
    for m in _RW_LINE.finditer(text):
        line = m.start()
        blanks = []
        q = line
        while q > 0:
            prev = text.rfind(b"\n", 0, q - 1) + 1
            if text[prev : q - 1].strip(_C_SPACE):
                break
            blanks.append(prev)
            q = prev
        starts.extend((b, line) for b in reversed(blanks))
        starts.append((line, line))
    return starts


def _invalid_line(line: bytes) -> ParseError:
    shown = line.rstrip(b"\r").decode("utf-8", "replace")[:200]
    return ParseError(f"invalid VMDK extent line: {shown}")


def _descriptor_version(text: bytes) -> int | None:
    m = _VERSION.search(text)
    return int(m.group(1)) if m else None


def _scan_cid(desc: bytes, key: bytes) -> int | None:
    """vmdk_read_cid: ``strstr`` for the key, skip it and one character, then ``%x``."""
    pos = desc.find(key)
    if pos < 0:
        return None
    m = _HEX.match(desc, pos + len(key) + 1)
    if not m:
        return None
    v = min(int(m.group(2), 16), UINT64_MAX)
    if m.group(1) == b"-":
        v = -v % (1 << 64)
    return v & UINT32_MAX


def _parent_hint(desc: bytes) -> str | None:
    """vmdk_parent_open: ``parentFileNameHint`` plus ``="``, up to the next quote."""
    pos = desc.find(b"parentFileNameHint")
    if pos < 0:
        return None
    start = pos + len(b"parentFileNameHint") + 2
    end = desc.find(b'"', start) if start <= len(desc) else -1
    if end < 0:
        raise ParseError("VMDK parentFileNameHint has no closing quote; qemu refuses the image")
    if end - start >= BACKING_NAME_BUF:
        raise ParseError(
            f"VMDK parentFileNameHint is longer than {BACKING_NAME_BUF - 1} bytes; qemu refuses it"
        )
    name = desc[start:end]
    return decode_name(name) if name else None


def _outside_dir(name: str) -> bool:
    """An extent qemu would open outside the descriptor's directory (CVE-2022-47951)."""
    return posixpath.isabs(name) or ".." in name.split("/")


def _finish(
    desc: bytes,
    *,
    virtual_size: int,
    create_type: str | None,
    version: int | None,
    extents: list[dict[str, object]],
    extent_names: tuple[str, ...],
    compressed: bool,
) -> Header:
    """The parent and CID steps of vmdk_open, common to every kind of VMDK."""
    desc = desc[:VMDK_DESC_SIZE]
    backing = _parent_hint(desc)
    cid_area = desc[: VMDK_DESC_SIZE - 1]
    cid = _scan_cid(cid_area, b"CID")
    if cid is None:
        raise ParseError("VMDK descriptor has no readable CID=; qemu refuses to open it")
    parent_cid = _scan_cid(cid_area, b"parentCID")
    if parent_cid is None:
        raise ParseError("VMDK descriptor has no readable parentCID=; qemu refuses to open it")
    return Header(
        format="vmdk",
        virtual_size=virtual_size,
        backing_file=backing,
        backing_format="vmdk" if backing else None,
        flags={
            "create_type": create_type,
            "cid": cid,
            "parent_cid": parent_cid,
            "version": version,
            "extents": extents,
            "extent_outside_dir": any(_outside_dir(n) for n in extent_names),
            "compressed": compressed,
        },
        extents=extent_names,
    )
