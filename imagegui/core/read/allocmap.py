"""One layer's allocation map read natively: which guest bytes its own file stores and which it
reads as zeroes, without starting qemu-img.

Space accounting maps every image of a directory, so this is on the hot path of ``space`` on
thousands of files: a raw file costs a few ``lseek`` calls, a qcow2 image one read of its L1
table and one read per L2 table actually in use. Where a format or feature is not read here,
:func:`native_map` answers None and the caller (``core.qemu.qemuimg.read_layer_map``) asks
``qemu-img map`` instead; the ranges are the ones ``qemu-img map`` reports for the layer opened
alone, byte for byte (tests compare the two on real images).
"""

from __future__ import annotations

import errno
import os
import struct
from array import array
from collections.abc import Callable
from sys import byteorder

from imagegui.core.read.extents import LayerMap, MapUnavailable, Range, normalise, subtract
from imagegui.core.read.formats import qcow2
from imagegui.core.read.formats.limits import (
    QCOW2_MAX_CLUSTER_BITS,
    QCOW2_MAX_L1_SIZE,
    QCOW2_MIN_CLUSTER_BITS,
)
from imagegui.core.read.model import ImageInfo

#: The formats whose maps are read here, in microseconds; the others cost a ``qemu-img map``.
NATIVE_FORMATS = frozenset({"raw", "qcow2"})


def native_map(info: ImageInfo) -> LayerMap | None:
    """The map of ``info``'s own file, or None when it is not read natively (the caller falls
    back to ``qemu-img map``). Raises :class:`MapUnavailable` when the file cannot be read."""
    if info.format == "raw":
        return raw_map(info.path, info.virtual_size)
    if info.format == "qcow2":
        return qcow2_map(info.path)
    return None


def raw_map(path: str, virtual_size: int) -> LayerMap:
    """A raw file stores what the file system holds (``SEEK_DATA``/``SEEK_HOLE``, as qemu's
    file driver asks) and reads everything else, holes and the tail past its end, as zeroes.

    qemu sees a raw file's size rounded up to whole 512-byte sectors, the tail read as zeroes;
    the map is of that disk (a 1000-byte file is a 1024-byte disk, 24 of them zero).
    """
    virtual_size = (virtual_size + 511) & ~511
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise MapUnavailable(
            f"cannot open {os.path.basename(path)}: {exc.strerror or exc}"
        ) from exc
    try:
        end = min(os.fstat(fd).st_size, virtual_size)
        data = _data_ranges(fd, end)
    except OSError as exc:
        raise MapUnavailable(
            f"cannot read which parts of {os.path.basename(path)} hold data: {exc.strerror or exc}"
        ) from exc
    finally:
        os.close(fd)
    everything = ((0, virtual_size),) if virtual_size > 0 else ()
    ranges = normalise(data)
    return LayerMap(virtual_size, ranges, subtract(everything, ranges))


def _data_ranges(fd: int, end: int) -> list[Range]:
    """The data extents of ``fd`` below ``end``."""
    out: list[Range] = []
    pos = 0
    while pos < end:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # no data past pos
                break
            raise
        if start >= end:
            break
        hole = os.lseek(fd, start, os.SEEK_HOLE)
        out.append((start, min(hole, end)))
        pos = hole
    return out


# --------------------------------------------------------------------------- qcow2
#
# An L2 entry (big-endian u64): bit 63 COPIED (refcount 1), bit 62 COMPRESSED, bits 9..55 the
# host cluster offset (0 = none), bit 0 ZERO (v3; with extended L2 entries it is ignored and a
# second u64 follows: bit x = subcluster x allocated, bit 32+x = subcluster x reads as zeroes).
# What each combination means, and which ones make qemu refuse the read, follows qemu 7.2's
# qcow2_get_subcluster_type / qcow2_get_host_offset / qcow2_co_block_status:
#   compressed                      -> data, the whole cluster
#   ZERO flag (v3, standard L2)     -> zero (with or without a host offset)
#   host offset (or, with an external data file, offset 0 and COPIED) -> data
#   nothing                         -> not this layer's: reads fall through to the backing file
# qemu refuses (I/O error) a ZERO flag in a v2 image, a host offset not aligned to the cluster,
# a compressed cluster in an image with an external data file, an external data file cluster
# whose offset is not its guest offset, and contradictory subcluster bitmaps. So do we.

_L1E_OFFSET_MASK = 0x00FFFFFFFFFFFE00
_L2E_OFFSET_MASK = 0x00FFFFFFFFFFFE00
_COPIED = 1 << 63
_COMPRESSED = 1 << 62
_ZERO = 1
_ALL_ALLOC = 0x00000000FFFFFFFF
_ALL_ZERO = 0xFFFFFFFF00000000

#: One translation table per question asked of a byte of every entry at once: the tables turn
#: a column of bytes (``table[k::8]``, byte k of each entry) into a column of 0/1 answers, and
#: ``int.from_bytes`` turns columns into integers that answer for all entries in one C-speed
#: bitwise operation. A 1024-entry L2 table costs microseconds instead of a Python loop.
_NONZERO = bytes([0] + [1] * 255)
_BIT0 = bytes(i & 1 for i in range(256))
_BIT6 = bytes(i >> 6 & 1 for i in range(256))
_BIT7 = bytes(i >> 7 for i in range(256))
_LOW7 = bytes(i & 0xFE for i in range(256))  # byte 6 of an entry without bit 8 (reserved)
#: Bytes of an L2 table compared with zeroes at once when skipping unallocated entries: a
#: chunk (512 entries) first, the blocks (64 entries) of a chunk that is not all zero next.
_CHUNK = 4096
_BLOCK = 512
_ZERO_CHUNK = bytes(_CHUNK)
_ZERO_BLOCK = bytes(_BLOCK)


def _nonzero_spans(t: bytes) -> list[tuple[int, int]]:
    """Byte ranges of ``t`` (8-byte aligned, in order, adjacent ones merged) outside which
    every byte is zero, found by ``memcmp`` with zeroes (``startswith``), chunk by chunk,
    then block by block: a 64 KiB table with a few allocated clusters costs two dozen
    compares, not a Python step per entry."""
    spans: list[tuple[int, int]] = []
    size = len(t)
    starts = t.startswith
    full = size - size % _CHUNK
    for c in range(0, size, _CHUNK):
        if c < full:
            if starts(_ZERO_CHUNK, c):
                continue
            c_end = c + _CHUNK
        else:
            c_end = size
        for a in range(c, c_end, _BLOCK):
            b = a + _BLOCK
            if b > c_end:
                b = c_end
            elif starts(_ZERO_BLOCK, a):
                continue
            if spans and spans[-1][1] == a:
                spans[-1] = (spans[-1][0], b)
            else:
                spans.append((a, b))
    return spans


def _add_runs(flags: bytes, base: int, bits: int, add: Callable[[int, int], None]) -> None:
    """``add(start, end)`` for each run of 1 bytes in ``flags`` (one byte per cluster)."""
    find = flags.find
    n = len(flags)
    pos = find(1)
    while pos >= 0:
        end = find(0, pos)
        if end < 0:
            end = n
        add(base + (pos << bits), base + (end << bits))
        pos = find(1, end)


def _any_bits(mask: int) -> bytes:
    return bytes(1 if i & mask else 0 for i in range(256))


#: Per cluster_bits: the (byte 5, byte 6) tables that answer "host offset not aligned".
_MISALIGNED = {
    bits: (_any_bits((1 << bits) - 1 >> 16 & 0xFF), _any_bits(((1 << bits) - 1 & 0xFE00) >> 8))
    for bits in range(QCOW2_MIN_CLUSTER_BITS, QCOW2_MAX_CLUSTER_BITS + 1)
}
_HEADER_READ = 112


class _Ranges:
    """Ranges appended in increasing order, touching ones merged as they come (no sort)."""

    __slots__ = ("out",)

    def __init__(self) -> None:
        self.out: list[list[int]] = []

    def add(self, start: int, end: int) -> None:
        out = self.out
        if out and out[-1][1] == start:
            out[-1][1] = end
        else:
            out.append([start, end])

    def done(self, limit: int) -> tuple[Range, ...]:
        """Canonical ranges, the last clamped to ``limit`` (the last cluster may pass the disk's
        end)."""
        out = self.out
        while out and out[-1][0] >= limit:
            out.pop()
        if out and out[-1][1] > limit:
            out[-1][1] = limit
        return tuple((a, b) for a, b in out)


def qcow2_map(path: str) -> LayerMap | None:
    """The active L1/L2 tables of a qcow2 image: one read for the header, one for the L1 table
    and one per L2 table in use. None for what is left to qemu-img (unknown features)."""
    name = os.path.basename(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise MapUnavailable(f"cannot open {name}: {exc.strerror or exc}") from exc
    try:
        return _Qcow2Tables(fd, name).read()
    except OSError as exc:
        raise MapUnavailable(f"cannot read {name}: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)


class _Qcow2Tables:
    __slots__ = (
        "fd",
        "name",
        "file_size",
        "version",
        "cluster_bits",
        "cluster_size",
        "virtual_size",
        "extended",
        "data_file",
        "data",
        "zero",
    )

    def __init__(self, fd: int, name: str) -> None:
        self.fd = fd
        self.name = name
        self.file_size = os.fstat(fd).st_size
        self.data = _Ranges()
        self.zero = _Ranges()

    def bad(self, what: str) -> MapUnavailable:
        return MapUnavailable(
            f"{self.name} is damaged: {what}; its allocation cannot be read "
            "(qemu-img check tells more)"
        )

    def pread(self, offset: int, length: int, what: str) -> bytes:
        if offset + length > self.file_size:
            raise self.bad(f"its {what} at offset {offset:#x} lies past the end of the file")
        buf = os.pread(self.fd, length, offset)
        if len(buf) != length:
            raise self.bad(f"its {what} at offset {offset:#x} lies past the end of the file")
        return buf

    def read(self) -> LayerMap | None:
        h = qcow2.fixed_header(os.pread(self.fd, _HEADER_READ, 0))
        if h.magic != qcow2.MAGIC or h.version not in (2, 3):
            raise MapUnavailable(f"{self.name} is no longer a qcow2 image this program knows")
        bits = h.cluster_bits
        if not QCOW2_MIN_CLUSTER_BITS <= bits <= QCOW2_MAX_CLUSTER_BITS:
            raise self.bad(f"cluster_bits {bits} out of range")
        incompat = h.incompatible_features if h.version == 3 else 0
        if incompat & ~qcow2.INCOMPAT_MASK:
            return None  # features we do not know: qemu-img decides
        self.version = h.version
        self.cluster_bits = bits
        cluster_size = self.cluster_size = 1 << bits
        self.extended = bool(incompat & qcow2.INCOMPAT_EXTL2)
        self.data_file = bool(incompat & qcow2.INCOMPAT_DATA_FILE)
        vsize = self.virtual_size = h.size & ~511
        entry_size = 16 if self.extended else 8
        per_l2 = cluster_size // entry_size
        clusters = (vsize + cluster_size - 1) >> bits
        l1_needed = (clusters + per_l2 - 1) // per_l2
        if l1_needed > h.l1_size:
            raise self.bad(f"its L1 table is too small ({h.l1_size} entries for {vsize} bytes)")
        if l1_needed * 8 > QCOW2_MAX_L1_SIZE:
            raise self.bad(f"its L1 table is too large ({l1_needed} entries)")
        l1_offset = h.l1_table_offset
        if l1_offset & (cluster_size - 1):
            raise self.bad(f"its L1 table offset {l1_offset:#x} is not cluster-aligned")
        if l1_needed:
            l1 = array("Q", self.pread(l1_offset, l1_needed * 8, "L1 table"))
            if byteorder == "little":
                l1.byteswap()
            seen: set[int] = set()
            span = per_l2 << bits
            for index, entry in enumerate(l1):
                l2_offset = entry & _L1E_OFFSET_MASK
                if not l2_offset:
                    continue
                if l2_offset & (cluster_size - 1):
                    raise self.bad(f"L2 table offset {l2_offset:#x} is not cluster-aligned")
                if l2_offset in seen:
                    raise self.bad(f"two L1 entries point to the L2 table at {l2_offset:#x}")
                seen.add(l2_offset)
                count = min(per_l2, clusters - index * per_l2)
                table = self.pread(l2_offset, count * entry_size, "L2 table")
                if self.extended:
                    self.extended_l2(table, index * span)
                else:
                    self.standard_l2(table, count, index * span)
        return LayerMap(vsize, self.data.done(vsize), self.zero.done(vsize))

    def standard_l2(self, t: bytes, n: int, base: int) -> None:
        """The ``n`` entries of ``t``: runs of unallocated entries are skipped by comparing
        blocks with zeroes, the rest classified column by column (see ``_NONZERO``)."""
        bits = self.cluster_bits
        for a, b in _nonzero_spans(t):
            self.classify(t[a:b], (b - a) >> 3, base + ((a >> 3) << bits))

    def classify(self, t: bytes, n: int, base: int) -> None:
        frm = int.from_bytes
        top = t[0::8]
        offset_bytes = (
            frm(t[1::8], "big")
            | frm(t[2::8], "big")
            | frm(t[3::8], "big")
            | frm(t[4::8], "big")
            | frm(t[5::8], "big")
            | frm(t[6::8].translate(_LOW7), "big")
        )
        allocated = frm(offset_bytes.to_bytes(n, "big").translate(_NONZERO), "big")
        compressed = frm(top.translate(_BIT6), "big")
        zero = frm(t[7::8].translate(_BIT0), "big") & ~compressed
        if self.data_file:
            allocated |= frm(top.translate(_BIT7), "big")
            if compressed:
                raise self.bad("a compressed cluster in an image with an external data file")
        if zero and self.version < 3:
            raise self.bad("a zero cluster in a version 2 (compat=0.10) image")
        byte5, byte6 = _MISALIGNED[self.cluster_bits]
        if self.cluster_bits > 9 and (
            (frm(t[5::8].translate(byte5), "big") | frm(t[6::8].translate(byte6), "big"))
            & ~compressed
        ):
            raise self.bad("a cluster's host offset is not aligned to the cluster size")
        if self.data_file:
            self.check_data_file_offsets(t, n, base)
        data = compressed | (allocated & ~zero)
        bits = self.cluster_bits
        if data:
            _add_runs(data.to_bytes(n, "big"), base, bits, self.data.add)
        if zero:
            _add_runs(zero.to_bytes(n, "big"), base, bits, self.zero.add)

    def check_data_file_offsets(self, t: bytes, n: int, base: int) -> None:
        """In an external data file a cluster lives at its guest offset (qemu refuses others):
        a data cluster (a host offset, or offset 0 and COPIED) or a zero cluster that keeps
        its host offset."""
        bits = self.cluster_bits
        for i, (entry,) in enumerate(struct.iter_unpack(">Q", t[: n * 8])):
            host = entry & _L2E_OFFSET_MASK
            placed = host or (entry & _COPIED and not entry & _ZERO)
            if placed and host != base + (i << bits):
                raise self.bad(
                    f"the cluster at guest offset {base + (i << bits):#x} is at {host:#x} "
                    "of the external data file (it must be at the same offset)"
                )

    def extended_l2(self, t: bytes, base: int) -> None:
        """Extended L2 entries (rare): entry by entry, subcluster by subcluster where mixed."""
        bits = self.cluster_bits
        sub_bits = bits - 5
        data, zero = self.data.add, self.zero.add
        for i, (entry, bitmap) in enumerate(struct.iter_unpack(">QQ", t)):
            if not entry and not bitmap:
                continue
            start = base + (i << bits)
            if entry & _COMPRESSED:
                if self.data_file:
                    raise self.bad("a compressed cluster in an image with an external data file")
                data(start, start + (1 << bits))
                continue
            host = entry & _L2E_OFFSET_MASK
            allocated = bool(host) or (self.data_file and bool(entry & _COPIED))
            if allocated:
                if (bitmap >> 32) & bitmap:
                    raise self.bad(f"contradictory subcluster bits at guest offset {start:#x}")
                if host & ((1 << bits) - 1):
                    raise self.bad("a cluster's host offset is not aligned to the cluster size")
                if self.data_file and host != start:
                    raise self.bad(
                        f"the cluster at guest offset {start:#x} is at {host:#x} of the "
                        "external data file (it must be at the same offset)"
                    )
            elif bitmap & _ALL_ALLOC:
                raise self.bad(f"allocated subclusters without a cluster at {start:#x}")
            if not bitmap:
                continue  # no subcluster of it is this layer's
            if bitmap == _ALL_ZERO:
                zero(start, start + (1 << bits))
                continue
            if allocated and bitmap == _ALL_ALLOC:
                data(start, start + (1 << bits))
                continue
            for sc in range(32):
                at = start + (sc << sub_bits)
                if bitmap >> (32 + sc) & 1:
                    zero(at, at + (1 << sub_bits))
                elif bitmap >> sc & 1:
                    data(at, at + (1 << sub_bits))
