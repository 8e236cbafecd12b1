"""A file's identity: the same file under any name (symlink, hard link, ``..``) has one id."""

from __future__ import annotations

import os

FileId = tuple[int, int]


#: Device numbers seen: every id of a device shares one ``int`` (a scan keeps one id per image;
#: a device number past 256 is otherwise a new 28-byte object in each).
_DEVICES: dict[int, int] = {}


def stat_id(st: os.stat_result) -> FileId:
    """(st_dev, st_ino) of a file already stat'ed (or fstat'ed: the open file itself)."""
    return make_id(st.st_dev, st.st_ino)


def make_id(dev: int, ino: int) -> FileId:
    """The id of inode ``ino`` of device ``dev`` (its device number shared)."""
    return (_DEVICES.setdefault(dev, dev), ino)


def file_id(path: str) -> FileId | None:
    """(st_dev, st_ino) of the file ``path`` leads to, or None when it leads nowhere."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return stat_id(st)
