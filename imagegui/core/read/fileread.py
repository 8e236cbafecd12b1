"""Reading one listed file: the I/O and header checks of a scan, for any thread or process.

Kept apart from the walk (``scan``) so that what reads a file on another core
(``reader_process``) needs nothing of the walk's."""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass

from imagegui.core.read.fileid import stat_id
from imagegui.core.read.model import ImageInfo, ScanError
from imagegui.core.read.partials import LEFTOVER_RE, leftover_note
from imagegui.core.read.probe import (
    OPEN_FLAGS,
    ProbeError,
    file_kind,
    has_image_extension,
    probe_fd,
)


@dataclass(slots=True)
class FileRead:
    """What reading one file found, before the walk's bookkeeping (which names win, hard links,
    raw bases): made by :func:`read_file` on whichever thread read it."""

    #: The image, or None for a file without magic (see ``unclaimed``) or one that failed.
    info: ImageInfo | None = None
    #: A file without magic that is not named like an image: its file id, since an image may
    #: still name it as its raw backing file (``_adopt_backing_files``).
    unclaimed: tuple[int, int] | None = None
    error: ScanError | None = None
    #: The open file's ``fstat`` when the result is about that file as it was (an image, a raw
    #: candidate, a bad header), so a rescan can keep it while the file is unchanged
    #: (``core.read.rescan``); None for a failure of the moment (vanished, changed while read).
    st: os.stat_result | None = None


def read_file(path: str, is_symlink: bool, raw_ok: bool | None = None) -> FileRead:
    """Open, check and probe one listed file; never raises for the file's own faults. Touches
    nothing but the file, so it may run on any thread."""
    if path.endswith(".partial") and (m := LEFTOVER_RE.match(os.path.basename(path))):
        message, left = leftover_note(path, m[1])
        return FileRead(error=ScanError(path, message, False, left))
    try:
        fd = os.open(path, OPEN_FLAGS)
    except OSError as exc:
        return FileRead(error=os_error(path, exc))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # replaced by something else since the listing
            message = f"changed into {file_kind(st.st_mode)} during the scan"
            return FileRead(error=ScanError(path, message, False))
        try:
            info = probe_fd(fd, path, st, raw_ok, is_symlink)
        except ProbeError as exc:
            return FileRead(error=ScanError(path, str(exc), True), st=st)
        after = os.fstat(fd)
        if (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
            message = "changed while it was being read; rescan to see it"
            return FileRead(error=ScanError(path, message, True))
    except OSError as exc:
        return FileRead(error=os_error(path, exc))
    finally:
        os.close(fd)
    if info is None:
        return FileRead(unclaimed=stat_id(st), st=st)
    return FileRead(info, st=st)


def os_error(path: str, exc: OSError) -> ScanError:
    """A failed system call on a listed file, in a user's words."""
    if exc.errno == errno.ENOENT:
        return ScanError(path, "vanished during the scan", False)
    if exc.errno in (errno.EACCES, errno.EPERM):
        return ScanError(path, "permission denied: cannot read it as this user", True)
    return ScanError(path, f"cannot read: {exc.strerror}", has_image_extension(path))
