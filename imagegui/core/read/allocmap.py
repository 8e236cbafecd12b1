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

from imagegui.core.read.extents import LayerMap, MapUnavailable, Range, normalise, subtract
from imagegui.core.read.model import ImageInfo


def native_map(info: ImageInfo) -> LayerMap | None:
    """The map of ``info``'s own file, or None when it is not read natively (the caller falls
    back to ``qemu-img map``). Raises :class:`MapUnavailable` when the file cannot be read."""
    if info.format == "raw":
        return raw_map(info.path, info.virtual_size)
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
