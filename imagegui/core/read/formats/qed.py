"""QED header reader that accepts and refuses what ``qemu-img info`` does.

Mirrors qemu 7.2's ``bdrv_qed_do_open``. QED records no backing format except "raw" (feature
bit 0x4, "never probe the backing file"); without it qemu probes the backing file, which a
scanner should flag. Unlike qcow2, qemu's QED checks depend on the file's length (the L1 table
must start and end inside it), so a truncated QED image is refused where a truncated qcow2 often
is not. Bytes past the end of the file read as zeros, as in qemu.
"""

from __future__ import annotations

from typing import NamedTuple

from imagegui.core.read.formats.base import (
    BoundedReader,
    Header,
    ParseError,
    decode_name,
    named_struct,
)
from imagegui.core.read.formats.limits import (
    BACKING_NAME_BUF,
    QED_MAX_CLUSTER_SIZE,
    QED_MAX_TABLE_SIZE,
    QED_MIN_CLUSTER_SIZE,
    QED_MIN_TABLE_SIZE,
    UINT32_MAX,
    UINT64_MAX,
)

MAGIC = b"QED\0"


class QedHeader(NamedTuple):
    """qemu's ``QEDHeader`` (block/qed.h), little-endian, 64 bytes."""

    magic: bytes
    cluster_size: int
    table_size: int
    #: In clusters.
    header_size: int
    features: int
    compat_features: int
    autoclear_features: int
    l1_table_offset: int
    image_size: int
    backing_filename_offset: int
    backing_filename_size: int


_HEADER = named_struct("<4sIIIQQQQQII", QedHeader._fields)
_HEADER_SIZE = _HEADER.size  # 64

F_BACKING_FILE = 0x1
F_NEED_CHECK = 0x2
F_BACKING_FORMAT_NO_PROBE = 0x4
FEATURE_MASK = F_BACKING_FILE | F_NEED_CHECK | F_BACKING_FORMAT_NO_PROBE


def probe(head: bytes) -> bool:
    """qemu's own probe: the magic alone."""
    return head[:4] == MAGIC


def _pow2_in(value: int, lo: int, hi: int) -> bool:
    return lo <= value <= hi and not value & (value - 1)


def parse(r: BoundedReader) -> Header:
    """Read a QED header as ``qemu-img info`` would; raise ParseError where qemu refuses."""
    h = QedHeader._make(_HEADER.unpack(r.read(0, _HEADER_SIZE).ljust(_HEADER_SIZE, b"\0")))
    cluster_size, table_size, header_size = h.cluster_size, h.table_size, h.header_size
    features, image_size, l1_offset = h.features, h.image_size, h.l1_table_offset

    if h.magic != MAGIC:
        raise ParseError("not a QED image (no QED\\0 magic)")
    if features & ~FEATURE_MASK:
        raise ParseError(f"QED header: unsupported feature bits {features & ~FEATURE_MASK:#x}")
    if not _pow2_in(cluster_size, QED_MIN_CLUSTER_SIZE, QED_MAX_CLUSTER_SIZE):
        raise ParseError(
            f"QED header: cluster size {cluster_size} invalid (a power of two in "
            f"{QED_MIN_CLUSTER_SIZE}..{QED_MAX_CLUSTER_SIZE})"
        )
    # qemu sees the file's length in whole 512-byte sectors (bdrv_getlength rounds up), then
    # takes the start of the cluster that holds it.
    file_size = ((r.size + 511) & ~511) & ~(cluster_size - 1)
    if not _pow2_in(table_size, QED_MIN_TABLE_SIZE, QED_MAX_TABLE_SIZE):
        raise ParseError(
            f"QED header: table size {table_size} invalid (a power of two in "
            f"{QED_MIN_TABLE_SIZE}..{QED_MAX_TABLE_SIZE})"
        )
    entries = (table_size * cluster_size) // 8
    max_size = (entries * cluster_size * entries) & UINT64_MAX
    if image_size % 512 or image_size > max_size:
        raise ParseError(
            f"QED header: image size {image_size} invalid (a multiple of 512, at most {max_size})"
        )
    # qemu's qed_check_table_offset: the L1 table's first and last cluster must lie after the
    # header and inside the file. (A one-cluster table never passes: qemu's overflow check
    # compares the last cluster's offset with the first.)
    header_bytes = header_size * cluster_size
    end_offset = (l1_offset + (table_size - 1) * cluster_size) & UINT64_MAX
    if not (
        end_offset > l1_offset
        and all(
            not off & (cluster_size - 1) and header_bytes <= off < file_size
            for off in (l1_offset, end_offset)
        )
    ):
        raise ParseError(
            f"QED header: L1 table offset {l1_offset} invalid (file is {r.size} bytes, "
            f"header {header_bytes} bytes)"
        )
    if header_size > UINT32_MAX // cluster_size:
        raise ParseError(f"QED header: header size {header_size} clusters too large")

    backing_file = None
    backing_format = None
    truncated = r.size < _HEADER_SIZE
    backing_offset, backing_size = h.backing_filename_offset, h.backing_filename_size
    if features & F_BACKING_FILE:
        if backing_offset + backing_size > header_bytes:
            raise ParseError(
                f"QED header: backing file name ({backing_size} bytes at offset "
                f"{backing_offset}) lies outside the header ({header_bytes} bytes)"
            )
        if backing_size >= BACKING_NAME_BUF:
            raise ParseError(f"QED header: backing file name too long ({backing_size} bytes)")
        raw = r.read(backing_offset, backing_size).ljust(backing_size, b"\0")
        truncated = truncated or r.size < backing_offset + backing_size
        backing_file = decode_name(raw) or None
        if backing_file is not None and features & F_BACKING_FORMAT_NO_PROBE:
            backing_format = "raw"

    flags: dict[str, object] = {
        "cluster_size": cluster_size,
        "table_size": table_size,
        "header_size": header_size,
        "needs_check": bool(features & F_NEED_CHECK),
        "backing_raw": bool(features & F_BACKING_FORMAT_NO_PROBE),
        "features": features,
        "autoclear_features": h.autoclear_features,
        "truncated": truncated,
    }
    # Positional: keywords cost 0.2 us, once per image of a scan.
    return Header("qed", image_size, backing_file, backing_format, flags)
