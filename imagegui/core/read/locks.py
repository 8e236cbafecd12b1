"""Is an image in use by a running QEMU? Asked of the kernel, never by opening it for writing.

QEMU (file-posix.c, ``raw_apply_lock_bytes``) holds open-file-description byte-range locks on every
image it has open: a shared lock on byte ``100 + i`` for each permission it holds and on
``200 + i`` for each permission it will not share (``i = 1`` is write). ``F_OFD_GETLK`` asks
whether a lock *we* would take conflicts with any of those, so a read-only descriptor is enough.
"""

from __future__ import annotations

import fcntl
import os
import struct
from dataclasses import dataclass

# struct flock on Linux: short l_type, short l_whence, off_t l_start, off_t l_len, pid_t l_pid.
_FLOCK = struct.Struct("hhqqi4x")
_F_OFD_GETLK = getattr(fcntl, "F_OFD_GETLK", 36)
_LOCK_FIRST = 100  # QEMU's first lock byte (permission "consistent read")
_LOCK_LEN = 200  # bytes 100..299 cover every permission and every "not shared" byte
_WRITE_BYTE = 101  # write permission held
WRITE_LOCK_BYTE = _WRITE_BYTE


@dataclass(frozen=True)
class LockState:
    in_use: bool
    #: A holder has write access: a running VM writing this image (a VM's backing files are
    #: locked too, but only against writers, so they are ``in_use`` without ``writer``).
    writer: bool


NOT_LOCKED = LockState(False, False)


def _request(start: int, length: int) -> bytes:
    return _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, start, length, 0)


#: The two questions asked, packed once (every image of a scan asks the first).
_ANY_LOCK = _request(_LOCK_FIRST, _LOCK_LEN)
_WRITE_LOCK = _request(_WRITE_BYTE, 1)
#: ``l_type`` (the struct's first field) as the kernel leaves it when nothing conflicts.
_UNLOCKED = struct.pack("h", fcntl.F_UNLCK)


def _conflicts(fd: int, request: bytes) -> bool:
    return fcntl.fcntl(fd, _F_OFD_GETLK, request)[:2] != _UNLOCKED


def lock_state_fd(fd: int) -> LockState:
    """Lock state of an already-open regular file (the scanner reuses its read descriptor)."""
    try:
        if not _conflicts(fd, _ANY_LOCK):
            return NOT_LOCKED
        writer = _conflicts(fd, _WRITE_LOCK)
    except OSError:
        # Filesystems without lock support (some network mounts): nobody can hold qemu's locks.
        return NOT_LOCKED
    return LockState(True, writer)


def lock_state(path: str) -> LockState:
    """Lock state of the image at ``path``; a file that cannot be opened is reported unlocked."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError:
        return NOT_LOCKED
    try:
        return lock_state_fd(fd)
    finally:
        os.close(fd)


#: Every file lock on the system, one a line (``fs/locks.c``, ``lock_get_status``).
PROC_LOCKS = "/proc/locks"
#: One lock held on QEMU's bytes: (inode, first byte, last byte, ``READ``/``WRITE``).
HeldLock = tuple[int, int, int, str]


def qemu_locks(text: str) -> frozenset[HeldLock]:
    """The byte-range locks in ``text`` (``/proc/locks``) that overlap QEMU's lock bytes.

    A line reads ``1: OFDLCK ADVISORY  READ -1 fe:00:2152009 100 101`` (id, kind, mode, access,
    pid, major:minor:inode, first and last byte; ``EOF`` for a lock to the end); lines with
    ``->`` are waiters, not holders. QEMU takes OFD locks, or POSIX ones where OFD locks are
    missing. The device is left out: ``/proc/locks`` names the super block's device, which is
    not ``st_dev`` on btrfs subvolumes or overlayfs, so an inode is matched by its number only
    (a stranger with the same number costs one needless read)."""
    held: set[HeldLock] = set()
    last_byte = _LOCK_FIRST + _LOCK_LEN - 1
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 8 or fields[1] == "->" or fields[1] not in ("OFDLCK", "POSIX"):
            continue
        try:
            ino = int(fields[5].rsplit(":", 1)[1])
            start = int(fields[6])
            end = last_byte if fields[7] == "EOF" else int(fields[7])
        except (IndexError, ValueError):
            continue
        if start <= last_byte and end >= _LOCK_FIRST:
            held.add((ino, start, end, fields[3]))
    return frozenset(held)


def read_qemu_locks(path: str = PROC_LOCKS) -> frozenset[HeldLock] | None:
    """``qemu_locks`` of the system's lock table; None when it cannot be read."""
    try:
        with open(path) as f:
            return qemu_locks(f.read())
    except OSError:
        return None
