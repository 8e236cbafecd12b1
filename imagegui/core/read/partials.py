"""Temporary files and folders imagegui's operations write before renaming them into place, and
what the scan says of one left behind.

A move across file systems, a flatten, a convert and a new image write ``.OUT.<8 hex>.partial``
beside their target (``ops.newfile.partial_name``; a move of a folder copies it into a folder of
that name) and rename it when complete. Killed outright (SIGKILL, a power cut), nothing removes
it: the scan reports it as a leftover (``leftover-file``), ``clean`` and ``clean-leftovers`` offer
it, and the space report counts it. One some process still writes is only a note.
"""

from __future__ import annotations

import os
import re

from imagegui.core.units import human_size

#: ``.OUT.<8 hex>.partial`` (a file, or a move's folder copy).
LEFTOVER_RE = re.compile(r"\.(.+)\.[0-9a-f]{8}\.partial\Z", re.S)
#: What leaves a temporary file, as its message says (a folder: only a move).
LEFTOVER_MAKERS = "move, flatten, convert or new image"


def leftover_note(path: str, out: str, is_dir: bool = False) -> tuple[str, bool]:
    """What a temporary file (or a move's folder copy) is: being written now (a process has it,
    or a file in it, open: only a note) or left behind by an operation that was interrupted
    (killed, power loss: also a warning). Returns (message, left behind)."""
    from imagegui.core.read.holders import holders_by_path

    files = tree_files(path) if is_dir else [path]
    writers = {h for found in holders_by_path(files).values() for h in found}
    kind, makers = ("folder", "move of a folder") if is_dir else ("file", LEFTOVER_MAKERS)
    if writers:
        who = ", ".join(sorted(h.describe() for h in writers))
        return f"temporary {kind} of a {makers} into {out} now running ({who}); not an image", False
    size = human_size(tree_bytes(path) if is_dir else _apparent(path))
    message = (
        f"leftover temporary {kind} ({size}) of an interrupted {makers} into {out}; not an "
        "image: nothing uses it, remove it"
    )
    return message, True


def is_leftover_dir(path: str) -> bool:
    """``path`` is a real folder (not a link) named like a move's folder copy."""
    import stat

    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and LEFTOVER_RE.match(os.path.basename(path)) is not None


def tree_files(path: str) -> list[str]:
    """The files under the folder ``path`` (symbolic links not followed; none for a file)."""
    return [os.path.join(d, f) for d, _dirs, names in os.walk(path) for f in names]


def tree_bytes(path: str) -> int:
    """Bytes ``path`` takes on disk: a file's, or a folder's with everything in it."""
    total = 0
    for directory, dirs, names in os.walk(path):
        for name in [*dirs, *names]:
            total += _allocated(os.path.join(directory, name))
    return total + _allocated(path)


def _apparent(path: str) -> int:
    try:
        return os.lstat(path).st_size
    except OSError:
        return 0


def _allocated(path: str) -> int:
    try:
        return os.lstat(path).st_blocks * 512
    except OSError:
        return 0
