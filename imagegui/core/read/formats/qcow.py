"""qcow (version 1) header reader that accepts and refuses what ``qemu-img info`` does.

Mirrors qemu 7.2's ``qcow_open``. qcow v1 has no header extensions, so it can never record a
backing format: ``backing_format`` is always None, which a scanner should flag (qemu probes the
backing file's format, the hole ``-F`` was made mandatory for).

Like qemu, bytes past the end of the file read as zeros, and a read reaching past qemu's
``BDRV_MAX_LENGTH`` (the L1 table or the backing name at an absurd offset) is an I/O error that
stops the open. The backing name may sit anywhere in the file (qemu does not bound its offset);
we read only its at most 1023 bytes, never what lies before it.
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
    BDRV_MAX_LENGTH,
    INT_MAX,
    QCOW_MAX_BACKING_NAME,
    QCOW_MAX_CLUSTER_BITS,
    QCOW_MAX_L2_BITS,
    QCOW_MIN_CLUSTER_BITS,
    QCOW_MIN_L2_BITS,
    UINT64_MAX,
)

MAGIC = b"QFI\xfb"


class QcowHeader(NamedTuple):
    """qemu's ``QCowHeader`` (block/qcow.c), big-endian, 48 bytes."""

    magic: bytes
    version: int
    backing_file_offset: int
    backing_file_size: int
    mtime: int
    size: int
    cluster_bits: int
    l2_bits: int
    padding: int
    crypt_method: int
    l1_table_offset: int


_HEADER = named_struct(">4sIQIIQBBHIQ", QcowHeader._fields)
_HEADER_SIZE = _HEADER.size  # 48


def probe(head: bytes) -> bool:
    """qemu's own probe: the magic and version exactly 1."""
    return head[:4] == MAGIC and head[4:8] == b"\0\0\0\1"


def _read(r: BoundedReader, off: int, n: int, what: str) -> bytes:
    """A read as qemu's ``bdrv_pread`` does it: an I/O error past BDRV_MAX_LENGTH, zeros past
    the end of the file."""
    if off + n > BDRV_MAX_LENGTH:
        raise ParseError(f"qcow header: {what} at offset {off} lies beyond any possible file")
    return r.read(off, n).ljust(n, b"\0")


def parse(r: BoundedReader) -> Header:
    """Read a qcow v1 header as ``qemu-img info`` would; raise ParseError where qemu refuses."""
    h = QcowHeader._make(_HEADER.unpack(r.read(0, _HEADER_SIZE).ljust(_HEADER_SIZE, b"\0")))
    size, cluster_bits, l2_bits, crypt_method = h.size, h.cluster_bits, h.l2_bits, h.crypt_method

    if h.magic != MAGIC:
        raise ParseError("not a qcow image (no QFI\\xfb magic)")
    if h.version != 1:
        raise ParseError(f"qcow header: unsupported version {h.version} (qcow is version 1)")
    if size <= 1:
        raise ParseError(f"qcow header: image size {size} too small (must be at least 2 bytes)")
    if not QCOW_MIN_CLUSTER_BITS <= cluster_bits <= QCOW_MAX_CLUSTER_BITS:
        raise ParseError(
            f"qcow header: cluster_bits {cluster_bits} out of range "
            f"{QCOW_MIN_CLUSTER_BITS}..{QCOW_MAX_CLUSTER_BITS}"
        )
    if not QCOW_MIN_L2_BITS <= l2_bits <= QCOW_MAX_L2_BITS:
        raise ParseError(
            f"qcow header: l2_bits {l2_bits} out of range {QCOW_MIN_L2_BITS}..{QCOW_MAX_L2_BITS}"
        )
    if crypt_method > 1:
        raise ParseError(f"qcow header: invalid encryption method {crypt_method}")

    shift = cluster_bits + l2_bits
    if size > UINT64_MAX - (1 << shift):
        raise ParseError(f"qcow header: image too large ({size} bytes)")
    l1_size = (size + (1 << shift) - 1) >> shift
    if l1_size > INT_MAX // 8:
        raise ParseError(f"qcow header: image too large ({size} bytes)")
    # qemu reads the L1 table here; only its position can make that read fail.
    l1_offset = h.l1_table_offset
    if l1_offset + l1_size * 8 > BDRV_MAX_LENGTH:
        raise ParseError(f"qcow header: L1 table offset {l1_offset} lies beyond any possible file")

    backing_file = None
    truncated = r.size < _HEADER_SIZE
    backing_offset, backing_size = h.backing_file_offset, h.backing_file_size
    if backing_offset:
        if backing_size > QCOW_MAX_BACKING_NAME:
            raise ParseError(
                f"qcow header: backing file name too long ({backing_size} bytes, "
                f"at most {QCOW_MAX_BACKING_NAME})"
            )
        raw = _read(r, backing_offset, backing_size, "backing file name")
        backing_file = decode_name(raw) or None
        truncated = truncated or r.size < backing_offset + backing_size

    flags: dict[str, object] = {
        "version": 1,
        "cluster_size": 1 << cluster_bits,
        "l2_bits": l2_bits,
        "encrypted": crypt_method == 1,
        "encryption": "aes" if crypt_method == 1 else None,
        "truncated": truncated,
    }
    # Positional: keywords cost 0.2 us, once per image of a scan. No backing format: qcow v1
    # cannot record one.
    return Header("qcow", size & ~511, backing_file, None, flags)
