"""Moving a file to the freedesktop Trash and back, without ever copying it.

The Trash is the XDG trash specification's, as desktops and file managers use it: the home
trash ``$XDG_DATA_HOME/Trash`` (``~/.local/share/Trash``) for files on its file system, and on
any other volume that volume's own ``$topdir/.Trash/$uid`` (an administrator's sticky
``.Trash``) or ``$topdir/.Trash-$uid``. Each trashed file sits in ``files/`` with a
``info/NAME.trashinfo`` beside it (``Path=``, ``DeletionDate=``), so the desktop's Trash lists it
and can restore it too. The spec itself is send2trash's (``send2trash.plat_other``: the volume
trash directories, the ``.trashinfo``, the name counter), not written again here.

What is done differently, on purpose, is *choosing* the trash: send2trash decides home versus
volume by comparing the file's device with the home directory's (not ``$XDG_DATA_HOME``'s, which
it reads once, at import) and, when the rename fails across file systems, falls back to
``shutil.move`` into the home trash - a copy of a 100 GiB image that fills the home file system
and takes an hour. Here the destination is decided before anything moves (``trash_spot``), from
``$XDG_DATA_HOME`` as it is now, on the file's own file system only; when no trash can be used
there the move is refused (``TrashUnavailable``), saying how much a copy would have been, and a
rename that still fails across devices is an error, never a copy. After the move the trashed file
and its ``.trashinfo`` are found by device and inode (a rename keeps both), and recorded
(``Trashed``) for the journal and for ``restore``.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import stat
import time
from dataclasses import dataclass

from send2trash import plat_other

from imagegui.core.read.fileid import stat_id
from imagegui.core.units import human_size

INFO_SUFFIX = ".trashinfo"


class TrashUnavailable(Exception):
    """The file cannot be moved to a Trash without copying it (or at all); the message says why
    in words for the window and the terminal alike."""


class RestoreRefused(Exception):
    """A trashed file cannot be put back: its name is taken again, it is gone from the Trash, or
    it changed there. The message says which."""


# --------------------------------------------------------------------------- where


def data_home() -> str:
    """``$XDG_DATA_HOME`` as it is set *now* (an absolute path; the spec says a relative one is
    invalid and ignored), else ``~/.local/share``."""
    value = os.environ.get("XDG_DATA_HOME", "")
    if value and os.path.isabs(value):
        return value
    return os.path.expanduser("~/.local/share")


def home_trash() -> str:
    return os.path.join(data_home(), "Trash")


@dataclass(frozen=True)
class TrashSpot:
    """The Trash a file goes to: a directory with ``files/`` and ``info/`` on the file's own file
    system, so the move is a rename."""

    #: ``~/.local/share/Trash``, ``/mnt/vol/.Trash-1000`` or ``/mnt/vol/.Trash/1000``.
    directory: str
    #: What ``Path=`` in the ``.trashinfo`` is written relative to (send2trash's ``topdir``):
    #: the data home for the home trash, the volume's mount point for a volume's trash.
    topdir: str
    #: ``home`` or ``volume``.
    kind: str

    @property
    def files(self) -> str:
        return os.path.join(self.directory, "files")

    @property
    def info(self) -> str:
        return os.path.join(self.directory, "info")

    def describe(self) -> str:
        """``the Trash (/root/.local/share/Trash)``, ``the Trash of the volume at /mnt/vol
        (/mnt/vol/.Trash-1000)``."""
        if self.kind == "home":
            return f"the Trash ({self.directory})"
        return f"the Trash of the volume at {self.topdir} ({self.directory})"


def _device_of_nearest(path: str) -> int | None:
    """The device of ``path``, or of its nearest existing parent (a trash not made yet lands on
    its parent's file system)."""
    while True:
        try:
            return os.stat(path).st_dev
        except FileNotFoundError:
            parent = os.path.dirname(path)
            if parent == path:
                return None
            path = parent
        except OSError:
            return None


def _usable_dir(path: str, dev: int) -> bool | None:
    """An existing trash directory usable as is (True), one that is not (False: a link, not a
    directory, on another device), or None when it does not exist yet."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_dev == dev


def _volume_trash(top: str, dev: int) -> str | None:
    """The volume trash send2trash's ``find_ext_volume_trash`` will use (or make) on the volume
    mounted at ``top``, predicted without making anything (a dry run changes nothing), or None
    when it could make none. The spec's order: ``$top/.Trash/$uid`` under an administrator's
    sticky ``.Trash`` (never a link), else ``$top/.Trash-$uid``."""
    uid = str(os.getuid())
    shared = os.path.join(top, ".Trash")
    try:
        st = os.lstat(shared)
    except OSError:
        st = None
    if st is not None and stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX:
        mine = os.path.join(shared, uid)
        ok = _usable_dir(mine, dev)
        if ok or (ok is None and os.access(shared, os.W_OK | os.X_OK)):
            return mine
    own = os.path.join(top, f".Trash-{uid}")
    ok = _usable_dir(own, dev)
    if ok or (ok is None and os.access(top, os.W_OK | os.X_OK)):
        return own
    return None


def _unescape(field: str) -> str:
    """A mountinfo path: space, tab, newline and backslash are written as octal escapes."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), field)


def mount_point(path: str, mountinfo: str = "/proc/self/mountinfo") -> str:
    """The mount point the (existing part of) ``path`` lies under: the longest mount point that
    is a prefix of its real path. A bind mount of the same file system is a mount of its own
    here (the kernel refuses a rename across it), which a device comparison cannot see; without
    ``/proc``, send2trash's device walk."""
    real = os.path.realpath(path)
    try:
        with open(mountinfo, encoding="utf-8", errors="surrogateescape") as f:
            points = [_unescape(line.split(" ")[4]) for line in f if line.count(" ") >= 4]
    except OSError:
        return plat_other.find_mount_point(real)
    best = "/"
    for p in points:
        if (real == p or real.startswith(p.rstrip("/") + "/")) and len(p) > len(best):
            best = p
    return best


def _nearest_existing(path: str) -> str:
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path


def trash_spot(path: str) -> TrashSpot:
    """The Trash ``path`` would go to, on its own file system; ``TrashUnavailable`` when there is
    none, saying what a copy would have cost. Makes nothing."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise TrashUnavailable(f"{path} cannot be read: {exc.strerror}") from None
    home = home_trash()
    folder = os.path.dirname(path) or "."
    top = mount_point(folder)
    if _device_of_nearest(home) == st.st_dev and mount_point(_nearest_existing(home)) == top:
        return TrashSpot(home, data_home(), "home")
    cost = human_size(st.st_blocks * 512)
    copy = (
        f"{path} cannot be moved to the Trash without copying it ({cost}) to the Trash in your "
        f"home folder ({home}), which is on another file system"
    )
    if _device_of_nearest(top) != st.st_dev:
        raise TrashUnavailable(f"{copy}: the mount point of its volume was not found")
    volume = _volume_trash(top, st.st_dev)
    if volume is None:
        raise TrashUnavailable(
            f"{copy}, and no Trash folder can be made on its volume at {top} (not writable, "
            f"or .Trash-{os.getuid()} there is not a folder)"
        )
    return TrashSpot(volume, top, "volume")


# --------------------------------------------------------------------------- there


@dataclass(frozen=True)
class Trashed:
    """A file in the Trash as this module moved it there: enough to find it again and to put it
    back only if it is still the very file (same device, inode, size and modification time)."""

    original: str
    #: The file in the Trash's ``files/``, and its ``info/NAME.trashinfo``.
    trashed: str
    trashinfo: str
    dev: int
    ino: int
    size: int
    mtime_ns: int
    #: When it was moved (seconds since the epoch).
    deleted_at: float

    @property
    def trash_dir(self) -> str:
        return os.path.dirname(os.path.dirname(self.trashed))


def trash(path: str, spot: TrashSpot | None = None) -> Trashed:
    """Moves the regular file ``path`` (or a folder: a move's leftover copy) into ``spot``
    (``trash_spot(path)`` when None) by renaming it there through send2trash, and returns where
    it went. ``TrashUnavailable`` when it could only be copied; ``OSError`` when the move fails
    (then nothing is left behind in the Trash)."""
    st = os.lstat(path)
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        raise TrashUnavailable(f"{path} is not a regular file")
    spot = spot or trash_spot(path)
    directory = spot.directory
    if spot.kind == "volume":
        # send2trash makes the volume's trash (and says which it made); it must be where the
        # plan said and on the file's file system, or the rename could not be one.
        try:
            made = os.fsdecode(plat_other.find_ext_volume_trash(os.fsencode(spot.topdir)))
        except OSError as exc:  # TrashPermissionError too: the folder could not be made
            raise TrashUnavailable(
                f"{path} cannot be moved to the Trash without copying it "
                f"({human_size(st.st_blocks * 512)}): no Trash folder can be made on its volume "
                f"at {spot.topdir} ({exc.strerror})"
            ) from None
        if _usable_dir(made, st.st_dev) is not True:
            raise TrashUnavailable(
                f"the Trash of the volume at {spot.topdir} ({made}) is not on the file system "
                f"of {path}; it would have to be copied"
            )
        directory = made
    before = _names(os.path.join(directory, "info"))
    started = time.time()
    try:
        # cross_dev=False: a rename or an OSError, never shutil.move's copy.
        plat_other.trash_move(
            os.fsencode(path), os.fsencode(directory), os.fsencode(spot.topdir), cross_dev=False
        )
    except OSError as exc:
        _remove_stray_info(directory, before)
        if exc.errno == errno.EXDEV:
            raise TrashUnavailable(
                f"{path} cannot be moved to {directory} without copying it "
                f"({human_size(st.st_blocks * 512)}): they are on different mounts"
            ) from None
        raise
    found = find_in_trash(directory, st.st_dev, st.st_ino)
    if found is None:  # renamed away at once by someone else: say so, do not guess
        raise OSError(errno.ENOENT, f"{path} was moved to {directory} but is not found there")
    return Trashed(
        original=path,
        trashed=found,
        trashinfo=info_path(found),
        dev=st.st_dev,
        ino=st.st_ino,
        size=st.st_size,
        mtime_ns=st.st_mtime_ns,
        deleted_at=started,
    )


def info_path(trashed: str) -> str:
    """The ``.trashinfo`` of the file ``trashed`` in a Trash's ``files/``."""
    directory = os.path.dirname(os.path.dirname(trashed))
    return os.path.join(directory, "info", os.path.basename(trashed) + INFO_SUFFIX)


def _names(directory: str) -> set[str]:
    try:
        return set(os.listdir(directory))
    except OSError:
        return set()


def _remove_stray_info(directory: str, before: set[str]) -> None:
    """send2trash writes the ``.trashinfo`` before the rename: after a failed rename, the new
    ``.trashinfo`` without a file would list a ghost in the desktop's Trash."""
    info = os.path.join(directory, "info")
    for name in _names(info) - before:
        if name.endswith(INFO_SUFFIX):
            files = os.path.join(directory, "files", name[: -len(INFO_SUFFIX)])
            if not os.path.lexists(files):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(info, name))


def find_in_trash(directory: str, dev: int, ino: int) -> str | None:
    """The file in ``directory``'s ``files/`` that is (dev, ino), whatever name the counter gave
    it (``base 2.qcow2``), or None."""
    files = os.path.join(directory, "files")
    try:
        entries = list(os.scandir(files))
    except OSError:
        return None
    for entry in entries:
        if entry.inode() != ino:
            continue
        try:
            if entry.stat(follow_symlinks=False).st_dev == dev:
                return entry.path
        except OSError:
            continue
    return None


def locate(item: Trashed) -> Trashed | None:
    """``item`` as it is in the Trash now: at its recorded name, or found again by inode in the
    same Trash (renamed there); None when it is gone (the Trash was emptied)."""
    try:
        if stat_id(os.lstat(item.trashed)) == (item.dev, item.ino):
            return item
    except OSError:
        pass
    found = find_in_trash(item.trash_dir, item.dev, item.ino)
    if found is None:
        return None
    return Trashed(
        item.original,
        found,
        info_path(found),
        item.dev,
        item.ino,
        item.size,
        item.mtime_ns,
        item.deleted_at,
    )


# --------------------------------------------------------------------------- back


def restore_problem(item: Trashed) -> str | None:
    """Why ``item`` cannot be put back now, in words; None when it can."""
    if os.path.lexists(item.original):
        return (
            f"{item.original} exists again: restoring would replace that file; move or rename "
            "it first"
        )
    folder = os.path.dirname(item.original)
    if not os.path.isdir(folder):
        return f"the folder {folder} no longer exists; make it again first"
    now = locate(item)
    if now is None:
        return f"{os.path.basename(item.original)} is no longer in the Trash (it was emptied?)"
    st = os.lstat(now.trashed)
    if (st.st_size, st.st_mtime_ns) != (item.size, item.mtime_ns):
        return (
            f"{now.trashed} was changed in the Trash since it was deleted (size or modification "
            "time differ); restore it from the file manager if you still want it"
        )
    return None


def restore(item: Trashed) -> str:
    """Puts ``item`` back at its original path by renaming it (byte-identical: the same inode),
    never over a file that took its name, and removes its ``.trashinfo``. Returns the path.
    ``RestoreRefused`` saying why not."""
    problem = restore_problem(item)
    if problem:
        raise RestoreRefused(problem)
    now = locate(item)
    assert now is not None  # restore_problem looked
    try:
        rename_noreplace(now.trashed, item.original)
    except FileExistsError:
        raise RestoreRefused(f"{item.original} exists again; move or rename it first") from None
    except OSError as exc:
        if exc.errno == errno.EXDEV:
            raise RestoreRefused(
                f"{item.original} is on another file system than the Trash now (the folder was "
                "mounted elsewhere); it would have to be copied"
            ) from None
        raise RestoreRefused(f"{now.trashed} cannot be moved back: {exc.strerror}") from None
    with contextlib.suppress(FileNotFoundError):
        os.unlink(now.trashinfo)
    return item.original


_RENAME_NOREPLACE = 1
_AT_FDCWD = -100


def rename_noreplace(src: str, dst: str) -> None:
    """Renames ``src`` to ``dst`` unless ``dst`` exists (``FileExistsError``), atomically where
    the kernel and file system can (``renameat2(RENAME_NOREPLACE)``), else checked right before
    an ordinary rename."""
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is not None:
        rc = renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE)
        if rc == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.ENOSYS, errno.EINVAL):
            raise OSError(err, os.strerror(err), dst)
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), dst)
    os.rename(src, dst)
