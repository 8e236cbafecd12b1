"""What every format parser shares: a bounded reader, the parsed header record and its error.

Parsers never touch the file system themselves: they read through :class:`BoundedReader`, which
refuses to read past a fixed budget, so a hostile header (huge offsets, absurd lengths) can cost at
most ``MAX_READ`` bytes and can never make a scan hang.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from typing import BinaryIO, TypeVar

from imagegui.core.read.formats.limits import MAX_VIRTUAL_SIZE

#: The most any single file may make us read, all parsers together.
MAX_READ = 1024 * 1024


class ParseError(Exception):
    """The bytes are not a valid header of the format the magic (or the name) claims."""


@dataclass(slots=True)
class Header:
    """What a header says, in qemu's vocabulary (format names as ``qemu-img info`` prints them).

    Not frozen: a frozen dataclass's ``__init__`` costs twice as much, and one is made per file.
    """

    format: str
    virtual_size: int
    backing_file: str | None = None
    backing_format: str | None = None
    #: Format-specific facts (qcow2 version, cluster size, dirty, ...); JSON-serialisable values.
    flags: dict[str, object] = field(default_factory=dict)
    #: Files this image's data lives in besides itself, as stored (VMDK extents, qcow2 data file).
    extents: tuple[str, ...] = ()
    #: Other format names qemu would also accept for this file as a backing format (a fixed VHD is
    #: ``raw`` to qemu's prober but opens fine as ``vpc``).
    also_opens_as: tuple[str, ...] = ()


def check_virtual_size(header: Header) -> Header:
    """Refuses what qemu cannot open whatever the format: a size past 8 EiB (a size field of
    2^64-1 passes qcow2's own checks, its L1 arithmetic wraps, but not qemu's generic one)."""
    if header.virtual_size > MAX_VIRTUAL_SIZE:
        raise ParseError(
            f"{header.format} header: virtual size {header.virtual_size:,} bytes is past qemu's "
            "limit of 8 EiB (qemu: File too large)"
        )
    return header


class BoundedReader:
    """Positional reads from an open file, capped at ``budget`` bytes in total.

    Reads past the end of the file return fewer bytes (as ``os.pread`` does); parsers that need an
    exact length use :meth:`read_exact`.
    """

    def __init__(self, fobj: BinaryIO | int, size: int, budget: int = MAX_READ):
        self._fd = fobj if isinstance(fobj, int) else fobj.fileno()
        self.size = size
        self.budget = budget
        self.used = 0
        self._cache: tuple[int, bytes] | None = None

    def prime(self, offset: int, data: bytes) -> None:
        """Remember bytes already read (the scanner's first block) so parsers reuse them."""
        self._cache = (offset, data)

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ParseError(f"negative offset or length ({offset}, {length})")
        if offset >= self.size or length == 0:
            return b""
        length = min(length, self.size - offset)
        if self._cache is not None:
            c_off, c_data = self._cache
            if c_off <= offset and offset + length <= c_off + len(c_data):
                return c_data[offset - c_off : offset - c_off + length]
        if self.used + length > self.budget:
            raise ParseError(
                f"header would need more than {self.budget // 1024} KiB to read; refusing"
            )
        self.used += length
        return self._pread(offset, length)

    def _pread(self, offset: int, length: int) -> bytes:
        return os.pread(self._fd, length, offset)

    def read_exact(self, offset: int, length: int, what: str = "header") -> bytes:
        data = self.read(offset, length)
        if len(data) != length:
            raise ParseError(f"file is truncated: {what} at offset {offset} runs past the end")
        return data


class BytesReader(BoundedReader):
    """The same interface over bytes in memory: for tests and the fuzzers."""

    def __init__(self, data: bytes, budget: int = MAX_READ):
        self._data = data
        self.size = len(data)
        self.budget = budget
        self.used = 0
        self._cache = None

    def _pread(self, offset: int, length: int) -> bytes:
        return self._data[offset : offset + length]


def named_struct(fmt: str, fields: tuple[str, ...]) -> struct.Struct:
    """The ``struct.Struct`` for a header layout whose fields a ``NamedTuple`` names.

    Parsers unpack with the struct and name the values with the tuple's ``_make`` (the cheapest
    way to name them: one scan reads thousands of headers). Checked once, at import, that the
    two agree on the number of fields, so a field added to one and not the other fails loudly
    instead of shifting every name after it.
    """
    layout = struct.Struct(fmt)
    count = len(layout.unpack(bytes(layout.size)))
    if count != len(fields):
        raise TypeError(f"struct {fmt!r} has {count} fields, the names are {len(fields)}")
    return layout


def decode_name(raw: bytes) -> str:
    """Decode a file name stored in a header.

    qemu treats names as C strings: it reads the stored bytes and a NUL ends the name, so we cut
    there too. Undecodable bytes are kept with ``surrogateescape`` so the path we resolve is exactly
    the one qemu would open.
    """
    raw = raw.split(b"\0", 1)[0]
    return raw.decode("utf-8", "surrogateescape")


#: Flag dicts shared by every image whose header says the same: most images of a directory have
#: identical flags, and a dict per image was most of a 100,000-image scan's memory and time.
#: Shared dicts are read-only (copy before changing one).
_SHARED: dict[tuple, dict[str, object]] = {}
_SHARED_IDS: set[int] = set()
_SHARED_MAX = 4096  # values unique per image must not grow the table without bound


def shared_flags(key: tuple, build) -> dict[str, object]:
    """The shared flags dict for ``key``, made by ``build(*key)`` the first time."""
    flags = _SHARED.get(key)
    if flags is None:
        flags = build(*key)
        if len(_SHARED) < _SHARED_MAX:
            _SHARED[key] = flags
            _SHARED_IDS.add(id(flags))
    return flags


#: The flags of every image whose header has none to give (raw images, most VHDs' siblings):
#: one shared, read-only dict instead of an empty dict per image.
EMPTY_FLAGS: dict[str, object] = shared_flags((), dict)

#: Values many images repeat (virtual sizes, backing format names): one object each instead of
#: one per image; bounded like ``_SHARED``, since a hostile tree may make every value unique.
K = TypeVar("K", int, str)

_SIZES: dict[int, int] = {}
_NAMES: dict[str, str] = {}


def _kept(table: dict[K, K], value: K) -> K:
    """The one object ``table`` keeps for ``value`` (kept from now on while there is room)."""
    kept = table.get(value)
    if kept is not None:
        return kept
    if len(table) < _SHARED_MAX:
        table[value] = value
    return value


def shared_size(value: int) -> int:
    """The one ``int`` kept for ``value`` (an image's virtual size: most repeat)."""
    return _kept(_SIZES, value)


def shared_name(value: str) -> str:
    """The one ``str`` kept for ``value`` (a backing format name: a handful repeat)."""
    return _kept(_NAMES, value)


def shared_flag_ids() -> set[int]:
    """ids of the shared dicts (stable: they are never freed), for output that encodes each once."""
    return _SHARED_IDS
