"""The rebase journal: every backing pointer imagegui rewrote, so each change can be undone.

A rebase replaces the only record of where an overlay's data comes from; after an unsafe rebase
onto the wrong file nothing in the image says what it pointed at before. One JSON object per line
in ``$XDG_STATE_HOME/imagegui/journal.jsonl`` (default ``~/.local/state/imagegui``), appended with a
single ``write`` and fsynced, so concurrent imagegui processes and crashes cannot interleave or lose
half an entry. ``IMAGEGUI_JOURNAL`` points it elsewhere.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass


def journal_path() -> str:
    if override := os.environ.get("IMAGEGUI_JOURNAL"):
        return override
    state = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return os.path.join(state, "imagegui", "journal.jsonl")


@dataclass(frozen=True)
class RebaseEntry:
    """One rewritten pointer: the stored names exactly as they were and became."""

    id: str
    time: float
    image: str
    old_backing: str | None
    old_format: str | None
    new_backing: str | None
    new_format: str | None
    #: "safe" (data copied, guest view kept) or "unsafe" (pointer only).
    mode: str
    #: The ``id`` of the entry this one undid, if it is an undo.
    undo_of: str | None = None


def _file_key(path: str) -> str:
    try:
        st = os.stat(path)
        return f"{st.st_dev}:{st.st_ino}"
    except OSError:
        return ""


def record(entry: RebaseEntry) -> None:
    path = journal_path()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data = asdict(entry)
    data["op"] = "rebase"
    data["file_key"] = _file_key(entry.image)
    line = (json.dumps(data, sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def new_id() -> str:
    return f"{time.time_ns():x}-{os.getpid():x}"


def entries(image: str | None = None) -> list[RebaseEntry]:
    """Journal entries, oldest first; for ``image`` those about that file (by path or inode)."""
    path = journal_path()
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.readlines()
    except FileNotFoundError:
        return []
    key = _file_key(image) if image else ""
    norm = os.path.normpath(os.path.abspath(image)) if image else ""
    out = []
    fields = set(RebaseEntry.__dataclass_fields__)
    for line in lines:
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn line from a crash: skip it, keep the rest
        if data.get("op") != "rebase":
            continue
        if image and data.get("image") != norm and (not key or data.get("file_key") != key):
            continue
        out.append(RebaseEntry(**{k: v for k, v in data.items() if k in fields}))
    return out


def last_undoable(image: str) -> RebaseEntry | None:
    """The most recent rebase of ``image`` not yet undone (undos stack, like an editor's)."""
    stack: list[RebaseEntry] = []
    for e in entries(image):
        if e.undo_of:
            stack = [s for s in stack if s.id != e.undo_of]
        else:
            stack.append(e)
    return stack[-1] if stack else None
