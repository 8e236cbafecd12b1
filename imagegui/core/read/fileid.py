"""A file's identity: the same file under any name (symlink, hard link, ``..``) has one id."""

from __future__ import annotations

import os

FileId = tuple[int, int]


def stat_id(st: os.stat_result) -> FileId:
    """(st_dev, st_ino) of a file already stat'ed (or fstat'ed: the open file itself)."""
    return (st.st_dev, st.st_ino)


def file_id(path: str) -> FileId | None:
    """(st_dev, st_ino) of the file ``path`` leads to, or None when it leads nowhere."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return stat_id(st)
