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


@dataclass(frozen=True)
class LockState:
    in_use: bool
    #: A holder has write access: a running VM writing this image (a VM's backing files are
    #: locked too, but only against writers, so they are ``in_use`` without ``writer``).
    writer: bool


NOT_LOCKED = LockState(False, False)


def _conflicts(fd: int, start: int, length: int) -> bool:
    req = _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, start, length, 0)
    res = fcntl.fcntl(fd, _F_OFD_GETLK, req)
    return _FLOCK.unpack(res)[0] != fcntl.F_UNLCK


def lock_state_fd(fd: int) -> LockState:
    """Lock state of an already-open regular file (the scanner reuses its read descriptor)."""
    try:
        if not _conflicts(fd, _LOCK_FIRST, _LOCK_LEN):
            return NOT_LOCKED
        writer = _conflicts(fd, _WRITE_BYTE, 1)
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
