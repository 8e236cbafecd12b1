"""A qcow2 image's internal snapshots, read from its snapshot table without qemu.

The header parser (``formats.qcow2``) only walks the table's entry headers to refuse what qemu
refuses; this reads the entries themselves - id, name, sizes, dates, VM clock - the fields
``qemu-img snapshot -l`` and ``qemu-img info`` print (``qcow2_read_snapshots`` in qemu). It runs
only when asked (the details panel, ``imagegui snapshot IMAGE list``, a plan that names the
snapshots it would not carry along), never during a scan.
"""

from __future__ import annotations

import os
import struct
import time
from dataclasses import dataclass

from imagegui.core.read.formats.base import ParseError, decode_name, named_struct
from imagegui.core.read.formats.limits import QCOW2_MAX_SNAPSHOT_EXTRA_DATA, QCOW2_MAX_SNAPSHOTS
from imagegui.core.read.formats.qcow2 import MAGIC, SnapshotHeader

_SNAPSHOT_HEADER = named_struct(">QIHHIIQII", SnapshotHeader._fields)  # 40 bytes, as qcow2's

#: The header fields needed: version, size (at 24), nb_snapshots and snapshots_offset (at 60).
_HEAD = struct.Struct(">4sI16xQ28xIQ")
_EXTRA = struct.Struct(">QQQ")  # vm_state_size_large, disk_size, icount


@dataclass(frozen=True)
class Snapshot:
    """One internal snapshot, as ``qemu-img info --output=json`` names its fields."""

    id: str
    name: str
    #: Bytes of saved VM state (RAM, devices): 0 for a disk-only snapshot (``qemu-img snapshot``).
    vm_state_size: int
    date_sec: int
    date_nsec: int
    #: The guest's clock when it was taken (0 for a snapshot of a stopped disk).
    vm_clock_nsec: int
    #: The virtual disk size when it was taken: reverting to it brings this size back.
    disk_size: int
    #: Instructions executed (record/replay); None when not recorded.
    icount: int | None = None

    @property
    def date_text(self) -> str:
        """Local time, as ``qemu-img snapshot -l`` prints it."""
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.date_sec))

    @property
    def vm_clock_text(self) -> str:
        """``HH:MM:SS.mmm``, as ``qemu-img snapshot -l`` prints it."""
        secs = self.vm_clock_nsec // 1_000_000_000
        ms = self.vm_clock_nsec // 1_000_000 % 1000
        return f"{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}.{ms:03d}"

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "vm_state_size": self.vm_state_size,
            "date_sec": self.date_sec,
            "date_nsec": self.date_nsec,
            "vm_clock_nsec": self.vm_clock_nsec,
            "disk_size": self.disk_size,
            "icount": self.icount,
        }


def read_snapshots(path: str) -> list[Snapshot]:
    """The snapshots of the qcow2 image at ``path``, in table order (qemu's order). Raises
    ``ParseError`` for a file that is not qcow2 or whose table qemu would not read, ``OSError``
    when it cannot be read."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size

        def read(offset: int, n: int) -> bytes:
            # qemu reads past the end of the file as zeros.
            return os.pread(fd, n, offset).ljust(n, b"\0") if n else b""

        magic, version, disk_size, count, offset = _HEAD.unpack(read(0, _HEAD.size))
        if magic != MAGIC or version not in (2, 3):
            raise ParseError(f"{path} is not a qcow2 image")
        if count > QCOW2_MAX_SNAPSHOTS:
            raise ParseError(f"qcow2 snapshot table too large ({count} entries)")
        found = []
        for i in range(count):
            offset = (offset + 7) & ~7
            if offset >= size:
                raise ParseError(f"qcow2 snapshot table: entry {i} lies beyond the end of file")
            h = SnapshotHeader._make(_SNAPSHOT_HEADER.unpack(read(offset, _SNAPSHOT_HEADER.size)))
            if h.extra_data_size > QCOW2_MAX_SNAPSHOT_EXTRA_DATA:
                raise ParseError(f"qcow2 snapshot table: too much extra metadata in entry {i}")
            offset += _SNAPSHOT_HEADER.size
            extra = read(offset, h.extra_data_size)
            offset += h.extra_data_size
            ident = decode_name(read(offset, h.id_str_size))
            offset += h.id_str_size
            name = decode_name(read(offset, h.name_size))
            offset += h.name_size
            padded = extra[: _EXTRA.size].ljust(_EXTRA.size, b"\0")
            vm_large, disk, icount = _EXTRA.unpack(padded)
            n = len(extra)
            found.append(
                Snapshot(
                    id=ident,
                    name=name,
                    vm_state_size=vm_large if n >= 8 else h.vm_state_size,
                    date_sec=h.date_sec,
                    date_nsec=h.date_nsec,
                    vm_clock_nsec=h.vm_clock_nsec,
                    disk_size=disk if n >= 16 else disk_size,
                    icount=icount if n >= 24 and icount != (1 << 64) - 1 else None,
                )
            )
        return found
    finally:
        os.close(fd)


def find_snapshot(snapshots: list[Snapshot], name: str, by_id: bool = True) -> Snapshot | None:
    """The snapshot qemu-img acts on for ``name``. ``snapshot -a`` (apply) takes the first
    whose id is ``name``, else the first whose name is (``find_snapshot_by_id_or_name``);
    ``snapshot -d`` (delete) matches names only (``bdrv_snapshot_find``): ``by_id=False``."""
    if by_id:
        for s in snapshots:
            if s.id == name:
                return s
    return next((s for s in snapshots if s.name == name), None)
