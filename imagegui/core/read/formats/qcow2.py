"""qcow2 (versions 2 and 3) header reader that accepts and refuses what ``qemu-img info`` does.

The checks mirror qemu 7.2's ``qcow2_do_open`` / ``qcow2_read_extensions`` as ``qemu-img info -U``
runs them (read-only, ``BDRV_O_NO_IO``, backing and data file not opened), so a file we accept
is one qemu opens and the fields we report are the ones it prints. Two qemu habits shape the
code:

* qemu reads past the end of a file as zeros, so a truncated image is parsed as if zero-padded
  (a file cut after its first 104 bytes still opens in qemu; one cut at 100 does not).
* Everything qemu needs sits in the first cluster, and in practice in the first 4 KiB, which the
  scanner has already read: a normal image costs no read beyond that block.

What qemu checks further away (the snapshot table's entries, the bitmap directory, the LUKS
header's key slots and cipher names) is not emulated beyond cheap sanity checks.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import NamedTuple

from imagegui.core.read.formats.base import (
    BoundedReader,
    Header,
    ParseError,
    decode_name,
    named_struct,
    shared_flags,
)
from imagegui.core.read.formats.limits import (
    BACKING_FORMAT_BUF,
    BDRV_MAX_LENGTH,
    INT64_MAX,
    INT_MAX,
    LUKS_HEADER_SIZE,
    QCOW2_MAX_BITMAP_DIRECTORY_SIZE,
    QCOW2_MAX_BITMAPS,
    QCOW2_MAX_CLUSTER_BITS,
    QCOW2_MAX_L1_SIZE,
    QCOW2_MAX_REFCOUNT_ORDER,
    QCOW2_MAX_REFTABLE_SIZE,
    QCOW2_MAX_SNAPSHOT_EXTRA_DATA,
    QCOW2_MAX_SNAPSHOTS,
    QCOW2_MAX_SNAPSHOTS_SIZE,
    QCOW2_MIN_CLUSTER_BITS,
    QCOW2_MIN_HEADER_LENGTH,
    QCOW_MAX_BACKING_NAME,
    UINT64_MAX,
)

MAGIC = b"QFI\xfb"


class Qcow2Header(NamedTuple):
    """The fixed header as qemu's ``QCowHeader`` (block/qcow2.h), big-endian, 112 bytes; a v2
    image has only the first 72 (``parse`` gives the v3 fields their v2 meaning)."""

    magic: bytes
    version: int
    backing_file_offset: int
    backing_file_size: int
    cluster_bits: int
    size: int
    crypt_method: int
    l1_size: int
    l1_table_offset: int
    refcount_table_offset: int
    refcount_table_clusters: int
    nb_snapshots: int
    snapshots_offset: int
    incompatible_features: int
    compatible_features: int
    autoclear_features: int
    refcount_order: int
    header_length: int


class SnapshotHeader(NamedTuple):
    """The fixed part of a snapshot table entry (``QCowSnapshotHeader``, 40 bytes)."""

    l1_table_offset: int
    l1_size: int
    id_str_size: int
    name_size: int
    date_sec: int
    date_nsec: int
    vm_clock_nsec: int
    vm_state_size: int
    extra_data_size: int


_HEADER = named_struct(">4sIQIIQIIQQIIQQQQII", Qcow2Header._fields)
_HEADER_SIZE = _HEADER.size  # 112
_EXT = struct.Struct(">II")
_BITMAPS_EXT = struct.Struct(">IIQQ")
_CRYPTO_EXT = struct.Struct(">QQ")
_FEATURE = struct.Struct(">BB46s")

#: Bytes worth reading at once beyond the scanner's first block (extension headers far out).
_WINDOW = 4096

INCOMPAT_DIRTY = 1 << 0
INCOMPAT_CORRUPT = 1 << 1
INCOMPAT_DATA_FILE = 1 << 2
INCOMPAT_COMPRESSION = 1 << 3
INCOMPAT_EXTL2 = 1 << 4
INCOMPAT_MASK = 0x1F
COMPAT_LAZY_REFCOUNTS = 1 << 0
AUTOCLEAR_BITMAPS = 1 << 0
AUTOCLEAR_DATA_FILE_RAW = 1 << 1

EXT_END = 0
EXT_BACKING_FORMAT = 0xE2792ACA
EXT_FEATURE_TABLE = 0x6803F857
EXT_CRYPTO_HEADER = 0x0537BE77
EXT_BITMAPS = 0x23852875
EXT_DATA_FILE = 0x44415441

_EXT_NAMES = {
    EXT_BACKING_FORMAT: "backing_format",
    EXT_FEATURE_TABLE: "feature_table",
    EXT_CRYPTO_HEADER: "crypto",
    EXT_BITMAPS: "bitmaps",
    EXT_DATA_FILE: "data_file",
}

_SNAPSHOT_HEADER = named_struct(">QIHHIIQII", SnapshotHeader._fields)
_SNAPSHOT_HEADER_SIZE = _SNAPSHOT_HEADER.size  # 40
#: qemu's qcow2_validate_table on the snapshot table: at most this many bytes of entry headers.
_MAX_SNAPSHOTS_TABLE = _SNAPSHOT_HEADER_SIZE * QCOW2_MAX_SNAPSHOTS
_LUKS_MAGIC = b"LUKS\xba\xbe"


def fixed_header(head: bytes) -> Qcow2Header:
    """The fixed header fields of ``head`` (the file's first bytes; short input reads as zeros,
    as qemu reads past the end of a file). Checks nothing: :func:`parse` does."""
    if len(head) < _HEADER_SIZE:
        head = head.ljust(_HEADER_SIZE, b"\0")
    return Qcow2Header._make(_HEADER.unpack_from(head))


def probe(head: bytes) -> bool:
    """qemu's own probe: the magic and a version of 2 or more (a too-new version is still
    qcow2 to qemu, which then refuses to open it, so we claim it and :func:`parse` refuses)."""
    if head[:4] != MAGIC:
        return False
    return int.from_bytes(head[4:8].ljust(4, b"\0"), "big") >= 2


class _Bytes:
    """Zero-padded positional access to the file's first cluster, reading as little as possible.

    The first block comes from one read (free when the scanner primed the reader); anything
    further out is fetched in small windows, so a hostile extension chain costs only the
    extension headers actually walked, never the cluster.
    """

    __slots__ = ("_r", "head", "_win_off", "_win", "max_end")

    def __init__(self, r: BoundedReader):
        self._r = r
        self.head = r.read(0, _WINDOW)
        self._win_off = 0
        self._win = b""
        #: Furthest byte any check needed (to tell whether the file is shorter than that).
        self.max_end = 0

    def get(self, off: int, n: int) -> bytes:
        end = off + n
        if end > self.max_end:
            self.max_end = end
        head = self.head
        if end <= len(head):
            return head[off:end]
        size = self._r.size
        if len(head) < _WINDOW or off >= size:
            # The file ends before this: qemu reads what lies past its end as zeros.
            return head[off:end].ljust(n, b"\0")
        win_off, win = self._win_off, self._win
        if win_off <= off and (end <= win_off + len(win) or win_off + len(win) >= size):
            return win[off - win_off : end - win_off].ljust(n, b"\0")
        if off < len(head) or n > _WINDOW:
            return self._r.read(off, n).ljust(n, b"\0")
        self._win_off = off
        self._win = win = self._r.read(off, _WINDOW)
        return win[:n].ljust(n, b"\0")


@dataclass(slots=True)
class _State:
    """What the extension walk found (qemu keeps the last of each kind)."""

    backing_format: bytes | None = None
    data_file: bytes | None = None
    nb_bitmaps: int | None = None
    crypto_offset: int | None = None
    crypto_length: int | None = None
    feature_table: bytes | None = None


def _walk_extensions(
    data: _Bytes,
    start: int,
    end: int,
    cluster_size: int,
    crypt_method: int,
    autoclear: int,
    st: _State,
    seen: list[str] | None,
    strict: bool,
) -> None:
    """qemu's ``qcow2_read_extensions``: [start, end) holds ``u32 type, u32 len, data`` records
    padded to 8 bytes, ending at type 0. ``strict=False`` only gathers the feature table (qemu
    does that, ignoring errors, to name unknown incompatible features)."""
    head = data.head
    in_head = len(head) - 8
    unpack_from = _EXT.unpack_from
    offset = start
    while offset < end:
        if offset <= in_head:
            magic, length = unpack_from(head, offset)
        else:
            magic, length = unpack_from(data.get(offset, 8))
        offset += 8
        if offset > end or length > end - offset:
            if not strict:
                return
            raise ParseError(
                f"qcow2 header extension {magic:#010x} at offset {offset - 8} runs past the end "
                f"of the header area ({end}): header extension too large"
            )
        if magic == EXT_END:
            return
        if seen is not None:
            seen.append(_EXT_NAMES.get(magic) or f"{magic:#010x}")
        if not strict:
            if magic == EXT_FEATURE_TABLE:
                st.feature_table = data.get(offset, min(length, 48 * 64))
        elif magic == EXT_BACKING_FORMAT:
            if length >= BACKING_FORMAT_BUF:
                raise ParseError(
                    f"qcow2 backing format extension: length {length} too large "
                    f"(qemu accepts at most {BACKING_FORMAT_BUF - 1} bytes)"
                )
            st.backing_format = data.get(offset, length)
        elif magic == EXT_CRYPTO_HEADER:
            if crypt_method != 2:
                raise ParseError(
                    "qcow2 crypto header extension present but the image is not LUKS-encrypted"
                )
            if length != _CRYPTO_EXT.size:
                raise ParseError(f"qcow2 crypto header extension size {length}, expected 16")
            c_off, c_len = _CRYPTO_EXT.unpack(data.get(offset, 16))
            if c_off % cluster_size:
                raise ParseError(
                    f"qcow2 encryption header offset {c_off} is not a multiple of the "
                    f"cluster size {cluster_size}"
                )
            st.crypto_offset, st.crypto_length = c_off, c_len
        elif magic == EXT_BITMAPS:
            if length != _BITMAPS_EXT.size:
                raise ParseError(f"qcow2 bitmaps extension: invalid length {length}")
            if autoclear & AUTOCLEAR_BITMAPS:
                nb, reserved, dir_size, dir_off = _BITMAPS_EXT.unpack(data.get(offset, 24))
                if reserved:
                    raise ParseError("qcow2 bitmaps extension: reserved field is not zero")
                if nb > QCOW2_MAX_BITMAPS:
                    raise ParseError(
                        f"qcow2 bitmaps extension: {nb} bitmaps exceed qemu's maximum "
                        f"{QCOW2_MAX_BITMAPS}"
                    )
                if nb == 0:
                    raise ParseError("qcow2 bitmaps extension with zero bitmaps")
                if dir_off % cluster_size:
                    raise ParseError("qcow2 bitmaps extension: invalid bitmap directory offset")
                if dir_size > QCOW2_MAX_BITMAP_DIRECTORY_SIZE:
                    raise ParseError(
                        f"qcow2 bitmaps extension: bitmap directory size {dir_size} exceeds "
                        f"the maximum {QCOW2_MAX_BITMAP_DIRECTORY_SIZE}"
                    )
                st.nb_bitmaps = nb
            # Without the autoclear bit a bitmap-unaware program touched the file: qemu warns
            # and ignores the bitmaps (they are all inconsistent now).
        elif magic == EXT_DATA_FILE:
            st.data_file = data.get(offset, length)
        offset += (length + 7) & ~7


def _feature_names(table: bytes | None, mask: int) -> list[str]:
    """Names the image's own feature table gives the incompatible bits in ``mask``."""
    names: list[str] = []
    if not table:
        return names
    for pos in range(0, len(table) - _FEATURE.size + 1, _FEATURE.size):
        ftype, bit, raw = _FEATURE.unpack_from(table, pos)
        name = raw.split(b"\0", 1)[0]
        if not name:
            break
        if ftype == 0 and bit < 64 and mask & (1 << bit):
            names.append(name.decode("utf-8", "replace"))
    return names


def parse(r: BoundedReader) -> Header:
    """Read a qcow2 header as ``qemu-img info`` would; raise ParseError where qemu refuses."""
    data = _Bytes(r)
    head = data.head
    # Unpacked into locals in ``Qcow2Header``'s order (naming them costs more than the checks).
    (
        magic,
        version,
        backing_offset,
        backing_size,
        cluster_bits,
        size,
        crypt_method,
        l1_size,
        l1_offset,
        rt_offset,
        rt_clusters,
        nb_snapshots,
        snapshots_offset,
        v3_incompat,
        v3_compat,
        v3_autoclear,
        v3_refcount_order,
        v3_header_length,
    ) = _HEADER.unpack_from(head if len(head) >= _HEADER_SIZE else data.get(0, _HEADER_SIZE))

    if magic != MAGIC:
        raise ParseError("not a qcow2 image (no QFI\\xfb magic)")
    if version < 2 or version > 3:
        raise ParseError(f"qcow2 header: unsupported version {version} (qemu opens 2 and 3)")
    if cluster_bits < QCOW2_MIN_CLUSTER_BITS or cluster_bits > QCOW2_MAX_CLUSTER_BITS:
        raise ParseError(
            f"qcow2 header: cluster_bits {cluster_bits} out of range "
            f"{QCOW2_MIN_CLUSTER_BITS}..{QCOW2_MAX_CLUSTER_BITS}"
        )
    cluster_size = 1 << cluster_bits

    if version == 2:
        incompat = compat = autoclear = 0
        refcount_order = 4
        header_length = 72
    else:
        incompat, compat = v3_incompat, v3_compat
        autoclear, refcount_order = v3_autoclear, v3_refcount_order
        header_length = v3_header_length
        if header_length < QCOW2_MIN_HEADER_LENGTH:
            raise ParseError(
                f"qcow2 header: header_length {header_length} too short "
                f"(minimum {QCOW2_MIN_HEADER_LENGTH})"
            )
    if header_length > cluster_size:
        raise ParseError(
            f"qcow2 header: header_length {header_length} exceeds the cluster size {cluster_size}"
        )
    if backing_offset > cluster_size:
        raise ParseError(
            f"qcow2 header: backing_file_offset {backing_offset} lies outside the first cluster "
            f"({cluster_size} bytes)"
        )
    ext_end = backing_offset or cluster_size

    compression = data.get(104, 1)[0] if header_length > 104 else 0
    if compression > 1:
        raise ParseError(f"qcow2 header: unknown compression type {compression}")
    if bool(compression) != bool(incompat & INCOMPAT_COMPRESSION):
        state = "must" if compression else "must not"
        raise ParseError(
            f"qcow2 header: the compression type incompatible feature bit {state} be set"
        )

    st = _State()
    unknown = incompat & ~INCOMPAT_MASK
    if unknown:
        _walk_extensions(
            data, header_length, ext_end, cluster_size, crypt_method, autoclear, st, None, False
        )
        bits = [b for b in range(64) if unknown >> b & 1]
        named = _feature_names(st.feature_table, unknown)
        what = f" ({', '.join(named)})" if named else ""
        raise ParseError(
            f"qcow2 header: unsupported incompatible feature bit(s) {bits}{what}; "
            "this qemu cannot open the image"
        )

    extended_l2 = bool(incompat & INCOMPAT_EXTL2)
    if extended_l2 and cluster_size // 32 < 512:
        raise ParseError(
            f"qcow2 header: extended L2 entries need clusters of at least 16 KiB "
            f"(cluster size {cluster_size})"
        )
    if refcount_order > QCOW2_MAX_REFCOUNT_ORDER:
        raise ParseError(
            f"qcow2 header: refcount_order {refcount_order} too large "
            f"(maximum {QCOW2_MAX_REFCOUNT_ORDER})"
        )

    if rt_clusters == 0:
        raise ParseError("qcow2 header: image does not contain a reference count table")
    # qemu's qcow2_validate_table on the refcount, snapshot and L1 tables: the usual valid
    # header passes in one expression; :func:`_table_error` names the first table that fails.
    if (
        rt_clusters > QCOW2_MAX_REFTABLE_SIZE // cluster_size
        or nb_snapshots > _MAX_SNAPSHOTS_TABLE // _SNAPSHOT_HEADER_SIZE
        or l1_size > QCOW2_MAX_L1_SIZE // 8
        or (rt_offset | snapshots_offset | l1_offset) & (cluster_size - 1)
        or INT64_MAX - rt_clusters * cluster_size < rt_offset
        or INT64_MAX - nb_snapshots * _SNAPSHOT_HEADER_SIZE < snapshots_offset
        or INT64_MAX - l1_size * 8 < l1_offset
    ):
        raise _table_error(
            cluster_size,
            (rt_offset, rt_clusters, cluster_size, QCOW2_MAX_REFTABLE_SIZE, "refcount table"),
            (
                snapshots_offset,
                nb_snapshots,
                _SNAPSHOT_HEADER_SIZE,
                _MAX_SNAPSHOTS_TABLE,
                "snapshot table",
            ),
            (l1_offset, l1_size, 8, QCOW2_MAX_L1_SIZE, "active L1 table"),
        )
    shift = cluster_bits + cluster_bits - (4 if extended_l2 else 3)
    l1_needed = ((size + (1 << shift) - 1) & UINT64_MAX) >> shift
    if l1_needed > INT_MAX:
        raise ParseError(f"qcow2 header: image too big ({size} bytes)")
    if l1_size < l1_needed:
        raise ParseError(
            f"qcow2 header: L1 table too small ({l1_size} entries, {l1_needed} needed "
            f"for {size} bytes)"
        )
    if crypt_method > 2:
        raise ParseError(f"qcow2 header: unsupported encryption method {crypt_method}")

    seen: list[str] = []
    _walk_extensions(
        data, header_length, ext_end, cluster_size, crypt_method, autoclear, st, seen, True
    )

    if crypt_method == 2:
        _check_luks(r, st)

    backing_file: str | None = None
    if backing_offset:
        if backing_size > min(QCOW_MAX_BACKING_NAME, cluster_size - backing_offset):
            raise ParseError(
                f"qcow2 header: backing file name too long ({backing_size} bytes at offset "
                f"{backing_offset}; qemu allows at most {QCOW_MAX_BACKING_NAME}, within the "
                "first cluster)"
            )
        backing_file = decode_name(data.get(backing_offset, backing_size)) or None

    if nb_snapshots:
        _walk_snapshots(data, snapshots_offset, nb_snapshots)

    backing_format = None
    if backing_file is not None and st.backing_format is not None:
        backing_format = decode_name(st.backing_format) or None

    external = bool(incompat & INCOMPAT_DATA_FILE)
    data_file = None if st.data_file is None else decode_name(st.data_file)
    truncated = r.size < data.max_end
    nb_bitmaps = st.nb_bitmaps or 0
    key = (
        version,
        cluster_size,
        header_length,
        refcount_order,
        incompat,
        compat,
        autoclear,
        crypt_method,
        compression,
        nb_snapshots,
        nb_bitmaps,
        data_file,
        tuple(seen),
        truncated,
    )
    flags = shared_flags(key, _flags)
    extents = (data_file,) if external and data_file else ()
    # Positional: keywords cost 0.2 us here, and this runs once per image of a scan.
    return Header("qcow2", size & ~511, backing_file, backing_format, flags, extents)


def _flags(
    version: int,
    cluster_size: int,
    header_length: int,
    refcount_order: int,
    incompat: int,
    compat: int,
    autoclear: int,
    crypt_method: int,
    compression: int,
    nb_snapshots: int,
    nb_bitmaps: int,
    data_file: str | None,
    extensions: tuple[str, ...],
    truncated: bool,
) -> dict[str, object]:
    """The flags for one distinct header; :func:`parse` shares one dict per distinct header."""
    external = bool(incompat & INCOMPAT_DATA_FILE)
    return {
        "version": version,
        "compat": "0.10" if version == 2 else "1.1",
        "cluster_size": cluster_size,
        "header_length": header_length,
        "refcount_bits": 1 << refcount_order,
        "dirty": bool(incompat & INCOMPAT_DIRTY),
        "corrupt": bool(incompat & INCOMPAT_CORRUPT),
        "lazy_refcounts": bool(compat & COMPAT_LAZY_REFCOUNTS),
        "external_data_file": external,
        "data_file": data_file,
        "data_file_raw": external and bool(autoclear & AUTOCLEAR_DATA_FILE_RAW),
        "encrypted": crypt_method != 0,
        "encryption": (None, "aes", "luks")[crypt_method],
        "compression_type": "zstd" if compression else "zlib",
        "extended_l2": bool(incompat & INCOMPAT_EXTL2),
        "nb_snapshots": nb_snapshots,
        "bitmaps": bool(autoclear & AUTOCLEAR_BITMAPS),
        "nb_bitmaps": nb_bitmaps,
        "incompatible_features": incompat,
        "compatible_features": compat,
        "autoclear_features": autoclear,
        "unknown_incompatible": (),
        "extensions": extensions,
        "truncated": truncated,
    }


def _table_error(cluster_size: int, *tables: tuple[int, int, int, int, str]) -> ParseError:
    """qemu's ``qcow2_validate_table`` on each ``(offset, entries, entry size, max bytes, name)``
    in turn: the error of the first table it refuses."""
    for t_off, t_entries, t_len, t_max, t_name in tables:
        if t_entries > t_max // t_len:
            return ParseError(f"qcow2 header: {t_name} too large ({t_entries} entries)")
        if INT64_MAX - t_entries * t_len < t_off or t_off & (cluster_size - 1):
            return ParseError(f"qcow2 header: {t_name} offset {t_off:#x} invalid")
    raise AssertionError("_table_error called on valid tables")


def _walk_snapshots(data: _Bytes, offset: int, count: int) -> None:
    """qemu reads the whole snapshot table on open (``qcow2_read_snapshots``): walk the entry
    headers (names are skipped, not read) for what makes it refuse. Costs a read only for
    images that have snapshots."""
    start = offset
    for i in range(count):
        offset = (offset + 7) & ~7
        if offset + _SNAPSHOT_HEADER_SIZE > BDRV_MAX_LENGTH:
            raise ParseError(f"qcow2 snapshot table: entry {i} lies beyond any possible file")
        entry = SnapshotHeader._make(
            _SNAPSHOT_HEADER.unpack(data.get(offset, _SNAPSHOT_HEADER_SIZE))
        )
        extra_size = entry.extra_data_size
        if extra_size > QCOW2_MAX_SNAPSHOT_EXTRA_DATA:
            raise ParseError(
                f"qcow2 snapshot table: too much extra metadata in entry {i} ({extra_size} "
                f"bytes; qemu-img check -r all can remove it)"
            )
        offset += _SNAPSHOT_HEADER_SIZE + extra_size + entry.id_str_size + entry.name_size
        if offset - start > QCOW2_MAX_SNAPSHOTS_SIZE:
            raise ParseError("qcow2 snapshot table is too big")
        if offset > BDRV_MAX_LENGTH:
            raise ParseError(f"qcow2 snapshot table: entry {i} lies beyond any possible file")


def _check_luks(r: BoundedReader, st: _State) -> None:
    """qemu opens the LUKS header even for ``info``; check what makes it refuse cheaply (the
    magic and version; key slots and cipher names are not checked)."""
    if st.crypto_offset is None or st.crypto_length is None:
        # qemu-img 7.2 crashes (SIGSEGV) on a LUKS image without its crypto extension.
        raise ParseError("qcow2 header: LUKS-encrypted image without its crypto header extension")
    if st.crypto_length < LUKS_HEADER_SIZE:
        raise ParseError(
            f"qcow2 crypto header extension: LUKS header length {st.crypto_length} too short"
        )
    off = st.crypto_offset
    if off + LUKS_HEADER_SIZE > BDRV_MAX_LENGTH:
        raise ParseError(f"qcow2 crypto header extension: LUKS header offset {off} invalid")
    head = r.read(off, 8).ljust(8, b"\0")
    if head[:6] != _LUKS_MAGIC:
        raise ParseError(f"qcow2 encryption header at offset {off} is not in LUKS format")
    luks_version = int.from_bytes(head[6:8], "big")
    if luks_version != 1:
        raise ParseError(f"qcow2 encryption header: LUKS version {luks_version} is not supported")
