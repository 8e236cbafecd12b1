"""Moving files for ``move``: a rename that never replaces a file (folders too), and a copy
across file systems that keeps holes and is read back from the disk and compared byte for byte
before anyone relies on it."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import os
import stat
from collections.abc import Callable

from imagegui.core.jobs import CancelledError, CancelToken
from imagegui.core.ops.newfile import link_no_replace
from imagegui.core.ops.plan import GuardRefused, refuse

#: Bytes read and written at a time by the copy (also how often it looks at the cancel token).
CHUNK = 1 << 20


class CopyError(OSError):
    """The copy does not read back as the source (or the source changed size meanwhile)."""


def rename_no_replace(src: str, dst: str) -> None:
    """Renames ``src`` to ``dst`` unless ``dst`` exists (``renameat2(RENAME_NOREPLACE)``: one
    atomic step, for folders too), refusing rather than replacing a file that appeared."""
    exists = GuardRefused([refuse("target-exists", f"{dst} appeared; nothing was replaced")])
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        renameat2 = None
    if renameat2 is not None:
        renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
        renameat2.argtypes += [ctypes.c_uint]
        at_fdcwd, noreplace = -100, 1
        if renameat2(at_fdcwd, os.fsencode(src), at_fdcwd, os.fsencode(dst), noreplace) == 0:
            return
        err = ctypes.get_errno()
        if err == errno.EEXIST:
            raise exists
        if err not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise OSError(err, os.strerror(err), src, None, dst)
    if not os.path.isdir(src) or os.path.islink(src):
        link_no_replace(src, dst)
        return
    if os.path.lexists(dst):  # a file system without RENAME_NOREPLACE: check, then rename
        raise exists
    os.rename(src, dst)


def _data_ranges(fd: int, size: int) -> list[tuple[int, int]]:
    """The file's data as (offset, length), holes left out (``SEEK_DATA``); the whole file
    where the file system cannot say."""
    ranges = []
    offset = 0
    try:
        while offset < size:
            try:
                start = os.lseek(fd, offset, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # no data after offset
                    break
                raise
            end = os.lseek(fd, start, os.SEEK_HOLE)
            ranges.append((start, end - start))
            offset = end
    except OSError:
        return [(0, size)] if size else []
    return ranges


def data_bytes(path: str) -> int:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return sum(n for _, n in _data_ranges(fd, os.fstat(fd).st_size))
    finally:
        os.close(fd)


def copy_verified(
    src: str, dst: str, step: Callable[[int], None], cancel: CancelToken | None = None
) -> None:
    """Copies ``src`` into the (empty, ours) file ``dst``, holes kept, then reads the copy back
    from the disk (its pages dropped from the cache after ``fsync``) and compares it with what
    was read from ``src``: a mismatch raises ``CopyError``. ``step(n)`` is told of every ``n``
    bytes copied or compared; a cancel raises ``CancelledError`` between chunks."""
    zero = bytes(CHUNK)
    wanted = hashlib.sha256()
    sfd = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
    try:
        dfd = os.open(dst, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            size = os.fstat(sfd).st_size
            ranges = _data_ranges(sfd, size)
            for start, length in ranges:
                for off in range(start, start + length, CHUNK):
                    if cancel is not None and cancel.cancelled:
                        raise CancelledError("cancelled")
                    n = min(CHUNK, start + length - off)
                    chunk = os.pread(sfd, n, off)
                    if len(chunk) != n:
                        raise CopyError(f"{src} changed size while it was being copied")
                    wanted.update(chunk)
                    if chunk != zero[:n]:  # an all-zero chunk stays a hole
                        os.pwrite(dfd, chunk, off)
                    step(n)
            os.ftruncate(dfd, size)
            os.fsync(dfd)
            with contextlib.suppress(OSError, AttributeError):
                os.posix_fadvise(dfd, 0, 0, os.POSIX_FADV_DONTNEED)
            got = hashlib.sha256()
            for start, length in ranges:
                for off in range(start, start + length, CHUNK):
                    if cancel is not None and cancel.cancelled:
                        raise CancelledError("cancelled")
                    n = min(CHUNK, start + length - off)
                    got.update(os.pread(dfd, n, off))
                    step(n)
            if os.fstat(dfd).st_size != size or got.digest() != wanted.digest():
                raise CopyError(f"the copy of {src} at {dst} does not read back the same bytes")
        finally:
            os.close(dfd)
    finally:
        os.close(sfd)


def tree_stamps(root: str) -> dict[str, tuple[int, int, int, int]]:
    """Every entry under the folder ``root`` (symbolic links not followed) -> (mode, size,
    mtime in ns, inode): what a copy of the tree was made from, to tell whether it changed."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            size = 0 if stat.S_ISDIR(st.st_mode) else st.st_size
            mtime = 0 if stat.S_ISDIR(st.st_mode) else st.st_mtime_ns
            out[os.path.relpath(path, root)] = (st.st_mode, size, mtime, st.st_ino)
    return out


def tree_problem(root: str) -> str | None:
    """Why the folder ``root`` cannot be copied file by file (a device, a FIFO, a socket, an
    unreadable entry), or None."""
    for dirpath, dirnames, filenames in os.walk(root, onerror=_raise):
        for name in (*dirnames, *filenames):
            path = os.path.join(dirpath, name)
            mode = os.lstat(path).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
                return f"{path} is not a file, a folder or a link"
            if stat.S_ISREG(mode) and not os.access(path, os.R_OK):
                return f"{path} cannot be read (permission denied)"
    return None


def _raise(exc: OSError) -> None:
    raise exc


def copy_tree(
    src: str, dst: str, step: Callable[[int], None], cancel: CancelToken | None = None
) -> None:
    """Copies the folder ``src`` to the new folder ``dst`` (created here, exclusively): folders
    with their modes, symbolic links as links, every file with :func:`copy_verified` and its
    mode, owner (as root) and times. A cancel raises ``CancelledError``; the caller removes
    ``dst`` on any failure."""
    os.mkdir(dst, 0o700)
    modes = [(dst, stat.S_IMODE(os.stat(src).st_mode))]
    for dirpath, dirnames, filenames in os.walk(src, onerror=_raise):
        into = os.path.join(dst, os.path.relpath(dirpath, src))
        for name in (*dirnames, *filenames):
            if cancel is not None and cancel.cancelled:
                raise CancelledError("cancelled")
            path, target = os.path.join(dirpath, name), os.path.join(into, name)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(path), target)
            elif stat.S_ISDIR(st.st_mode):
                os.mkdir(target, 0o700)
                modes.append((target, stat.S_IMODE(st.st_mode)))
            elif stat.S_ISREG(st.st_mode):
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
                os.close(os.open(target, flags, 0o600))
                copy_verified(path, target, step, cancel)
                _same_owner_mode_times(target, st)
            else:
                raise CopyError(f"{path} is not a file, a folder or a link")
    for path, mode in reversed(modes):  # deepest first: a read-only folder is filled by now
        os.chmod(path, mode)


def _same_owner_mode_times(path: str, st: os.stat_result) -> None:
    with contextlib.suppress(OSError):
        if os.geteuid() == 0:
            os.chown(path, st.st_uid, st.st_gid)
    os.chmod(path, stat.S_IMODE(st.st_mode))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
