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

import struct

from imagegui.core.read.formats.base import BoundedReader, Header, ParseError, decode_name

MAGIC = b"QFI\xfb"

_HEADER = struct.Struct(">4sIQIIQBBHIQ")
_HEADER_SIZE = _HEADER.size  # 48

_INT_MAX = (1 << 31) - 1
_U64_MAX = (1 << 64) - 1
#: qemu's BDRV_MAX_LENGTH: no request may reach past it (an I/O error otherwise).
BDRV_MAX_LENGTH = ((1 << 63) - 1) & ~((1 << 30) - 1)


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
    (
        magic,
        version,
        backing_offset,
        backing_size,
        _mtime,
        size,
        cluster_bits,
        l2_bits,
        _pad,
        crypt_method,
        l1_offset,
    ) = _HEADER.unpack(r.read(0, _HEADER_SIZE).ljust(_HEADER_SIZE, b"\0"))

    if magic != MAGIC:
        raise ParseError("not a qcow image (no QFI\\xfb magic)")
    if version != 1:
        raise ParseError(f"qcow header: unsupported version {version} (qcow is version 1)")
    if size <= 1:
        raise ParseError(f"qcow header: image size {size} too small (must be at least 2 bytes)")
    if cluster_bits < 9 or cluster_bits > 16:
        raise ParseError(f"qcow header: cluster_bits {cluster_bits} out of range 9..16")
    if l2_bits < 6 or l2_bits > 13:
        raise ParseError(f"qcow header: l2_bits {l2_bits} out of range 6..13")
    if crypt_method > 1:
        raise ParseError(f"qcow header: invalid encryption method {crypt_method}")

    shift = cluster_bits + l2_bits
    if size > _U64_MAX - (1 << shift):
        raise ParseError(f"qcow header: image too large ({size} bytes)")
    l1_size = (size + (1 << shift) - 1) >> shift
    if l1_size > _INT_MAX // 8:
        raise ParseError(f"qcow header: image too large ({size} bytes)")
    # qemu reads the L1 table here; only its position can make that read fail.
    if l1_offset + l1_size * 8 > BDRV_MAX_LENGTH:
        raise ParseError(f"qcow header: L1 table offset {l1_offset} lies beyond any possible file")

    backing_file = None
    truncated = r.size < _HEADER_SIZE
    if backing_offset:
        if backing_size > 1023:
            raise ParseError(
                f"qcow header: backing file name too long ({backing_size} bytes, at most 1023)"
            )
        raw = _read(r, backing_offset, backing_size, "backing file name")
        backing_file = decode_name(raw, "backing file") or None
        truncated = truncated or r.size < backing_offset + backing_size

    return Header(
        format="qcow",
        virtual_size=size & ~511,
        backing_file=backing_file,
        backing_format=None,
        flags={
            "version": 1,
            "cluster_size": 1 << cluster_bits,
            "l2_bits": l2_bits,
            "encrypted": crypt_method == 1,
            "encryption": "aes" if crypt_method == 1 else None,
            "truncated": truncated,
        },
    )
