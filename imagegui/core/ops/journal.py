"""The rebase journal: every backing pointer imagegui rewrote, so each change can be undone.

A rebase replaces the only record of where an overlay's data comes from; after an unsafe rebase
onto the wrong file nothing in the image says what it pointed at before. One JSON object per line
in ``$XDG_STATE_HOME/imagegui/journal.jsonl`` (default ``~/.local/state/imagegui``), appended with a
single ``write`` and fsynced, so concurrent imagegui processes and crashes cannot interleave or lose
half an entry. ``IMAGEGUI_JOURNAL`` points it elsewhere.

Each entry carries a *fingerprint* of the image as the rebase left it (file identity, size,
mtime, a hash of its first 64 KiB: the header and backing name). An undo applies only to the very
file in that very state: an inode reused by an unrelated image, or an overlay committed or written
since, no longer matches, and the undo is refused with the difference named. A line that cannot be
read (torn by a crash, edited by hand) is skipped with a note instead of stopping the undo.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import MISSING, asdict, dataclass, replace
from typing import TYPE_CHECKING, Union

from imagegui.core.read.backing import canonical
from imagegui.core.read.fileid import file_id
from imagegui.core.statefiles import state_file

if TYPE_CHECKING:
    from imagegui.core.ops.trash import Trashed

#: Bytes of the image hashed into its fingerprint: every format's header and backing name.
HEAD_BYTES = 65536


def journal_path() -> str:
    return state_file("journal.jsonl", "IMAGEGUI_JOURNAL")


@dataclass(frozen=True)
class Fingerprint:
    """An image file as one rebase left it: which file (dev, ino) and its exact state."""

    dev: int
    ino: int
    size: int
    mtime_ns: int
    head_sha256: str

    @classmethod
    def of(cls, path: str) -> Fingerprint | None:
        """The file's fingerprint now, or None when it cannot be read."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            st = os.fstat(fd)
            head = os.pread(fd, HEAD_BYTES, 0)
        except OSError:
            return None
        finally:
            os.close(fd)
        digest = hashlib.sha256(head).hexdigest()
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, digest)

    @classmethod
    def from_json(cls, data: object) -> Fingerprint | None:
        if not isinstance(data, dict):
            return None
        try:
            return cls(**{k: data[k] for k in cls.__dataclass_fields__})
        except (KeyError, TypeError):
            return None

    def differences(self, now: Fingerprint | None) -> list[str]:
        """What changed between this fingerprint and ``now``, in words (empty: unchanged)."""
        if now is None:
            return ["the file is gone or cannot be read"]
        if (now.dev, now.ino) != (self.dev, self.ino):
            return ["it is a different file now (deleted and replaced, or its inode reused)"]
        out = []
        if now.size != self.size:
            out.append(f"its size changed ({self.size:,} -> {now.size:,} bytes)")
        if now.mtime_ns != self.mtime_ns:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now.mtime_ns / 1e9))
            out.append(f"it was written since (modified {when})")
        if now.head_sha256 != self.head_sha256:
            out.append("its header changed")
        return out


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
    #: The image as this rebase left it (``Fingerprint`` fields); None in entries written before
    #: fingerprints existed.
    fingerprint: dict | None = None
    #: The ``id`` of the move this rewrite is part of (its ``MoveEntry``): once that move is
    #: recorded it is undone with the move, never on its own.
    move: str = ""

    @property
    def state(self) -> Fingerprint | None:
        return Fingerprint.from_json(self.fingerprint)


class JournalError(Exception):
    """The journal cannot be written: a rebase must not run, since it could not be undone."""


def _file_key(path: str) -> str:
    ident = file_id(path)
    return f"{ident[0]}:{ident[1]}" if ident else ""


def open_for_append() -> int:
    """The journal opened for appending (created if need be). Called *before* an image is
    written, so an unwritable journal refuses the rebase instead of failing after it."""
    path = journal_path()
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise JournalError(
            f"the rebase journal {path} cannot be written ({exc.strerror}), so the rebase could "
            "not be undone; fix that or point IMAGEGUI_JOURNAL at a writable file"
        ) from None


def writable_problem() -> str | None:
    """Why the journal cannot be written now, or None when it can."""
    try:
        os.close(open_for_append())
    except JournalError as exc:
        return str(exc)
    return None


def predicted_problem() -> str | None:
    """Why the journal could not be written, judged without creating anything (for a plan
    that is only shown): the file's permission, or the nearest existing folder's."""
    path = journal_path()
    if os.path.exists(path):
        ok = os.access(path, os.W_OK)
    else:
        folder = os.path.dirname(path)
        while folder and not os.path.exists(folder):
            folder = os.path.dirname(folder)
        ok = os.path.isdir(folder) and os.access(folder, os.W_OK | os.X_OK)
    if ok:
        return None
    return (
        f"the journal {path} cannot be written (permission denied); point IMAGEGUI_JOURNAL at "
        "a writable file"
    )


def record(entry: RebaseEntry, fd: int | None = None) -> None:
    """Appends ``entry`` (to ``fd`` from :func:`open_for_append`, which it closes, if given)."""
    data = asdict(entry)
    data["op"] = "rebase"
    data["file_key"] = _file_key(entry.image)
    by_hand = f"the image pointed at {entry.old_backing!r} (format {entry.old_format})"
    _append(data, "rebase", by_hand, fd)


#: A backing pointer as stored: (name, format); None where there is none or none was recorded.
Pointer = tuple[str | None, str | None]


def record_rewrite(
    image: str,
    old: Pointer,
    new: Pointer,
    *,
    mode: str = "unsafe",
    undo_of: str | None = None,
    move: str = "",
    now_at: str | None = None,
    fd: int | None = None,
) -> str:
    """Journals one rewritten backing pointer of ``image``, ``old`` -> ``new``, with the image
    as the rewrite left it (its fingerprint, which an undo checks); returns the entry's id.
    ``now_at`` is where the image is now when it is journalled under another name (a move's
    undo names it where it will be once the files are back). Every rewrite goes through here,
    so rebase, relink, move and their undos write the same fields."""
    state = Fingerprint.of(now_at or image)
    entry = RebaseEntry(
        id=new_id(),
        time=time.time(),
        image=image,
        old_backing=old[0],
        old_format=old[1],
        new_backing=new[0],
        new_format=new[1],
        mode=mode,
        undo_of=undo_of,
        fingerprint=asdict(state) if state else None,
        move=move,
    )
    record(entry, fd)
    return entry.id


def _append(data: dict, what: str, by_hand: str, fd: int | None = None) -> None:
    """One line, one ``write``, fsynced before the operation goes on; ``by_hand`` says how to
    undo it without the journal, should the line not get there."""
    line = (json.dumps(data, sort_keys=True) + "\n").encode()
    if fd is None:
        fd = open_for_append()
    try:
        os.write(fd, line)
        os.fsync(fd)
    except OSError as exc:
        raise JournalError(
            f"could not record the {what} in {journal_path()} ({exc.strerror}); to undo it by "
            f"hand: {by_hand}"
        ) from None
    finally:
        os.close(fd)


_OPTIONAL_TEXT = ("old_backing", "old_format", "new_backing", "new_format", "undo_of")


def new_id() -> str:
    return f"{time.time_ns():x}-{os.getpid():x}"


def _journal_lines(notes: list[str] | None) -> list[tuple[int, dict]]:
    """The journal's lines that are JSON objects, with their line numbers, from one read; a
    line that is not gets one sentence in ``notes`` (if given), as does a journal that cannot
    be read."""
    path = journal_path()
    try:
        with open(path, "rb") as f:
            lines = f.read().split(b"\n")
    except FileNotFoundError:
        return []
    except OSError as exc:
        if notes is not None:
            notes.append(f"the journal {path} cannot be read: {exc.strerror}")
        return []
    out = []
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            data = json.loads(raw.decode("utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            if notes is not None:
                why = "not valid JSON" if isinstance(exc, json.JSONDecodeError) else str(exc)
                notes.append(f"journal line {number} skipped ({why}): {path}")
            continue
        out.append((number, data))
    return out


def _rebase_entry(data: dict) -> RebaseEntry:
    """A rebase line's entry; ValueError saying what is wrong with it."""
    fields = RebaseEntry.__dataclass_fields__
    required = [n for n, f in fields.items() if f.default is MISSING]
    missing = [n for n in required if n not in data]
    if missing:
        raise ValueError(f"no {', '.join(missing)}")
    for name in ("id", "image", "mode", *_OPTIONAL_TEXT):
        value = data.get(name)
        if not isinstance(value, str) and (value is not None or name not in _OPTIONAL_TEXT):
            raise ValueError(f"{name} is not text")
    if not isinstance(data.get("move", ""), str):
        raise ValueError("move is not text")
    return RebaseEntry(**{k: v for k, v in data.items() if k in fields})


def entries(image: str | None = None, notes: list[str] | None = None) -> list[RebaseEntry]:
    """Journal entries, oldest first; for ``image`` those about that file (by path or inode).
    Lines that cannot be read are skipped; ``notes`` (if given) gets one sentence for each."""
    key = _file_key(image) if image else ""
    norm = canonical(image) if image else ""  # "..": the kernel's way, as plans store it
    out = []
    for number, data in _journal_lines(notes):
        if data.get("op") != "rebase":
            continue
        try:
            entry = _rebase_entry(data)
        except ValueError as exc:
            _skipped(notes, number, exc)
            continue
        if not image or entry.image == norm or (key and data.get("file_key") == key):
            out.append(entry)
    return out


def _skipped(notes: list[str] | None, number: int, exc: Exception) -> None:
    if notes is not None:
        notes.append(f"journal line {number} skipped ({exc}): {journal_path()}")


def last_undoable(image: str, notes: list[str] | None = None) -> RebaseEntry | None:
    """The most recent rebase of ``image`` not yet undone (undos stack, like an editor's). A
    move's rewrites are undone with the move once it is recorded (``move --undo``), never on
    their own; before that (a move killed part-way) each is undone on its own."""
    moves = {data.get("id") for _n, data in _journal_lines(None) if data.get("op") == MOVE_OP}
    stack: list[RebaseEntry] = []
    for e in entries(image, notes):
        if e.move and e.move in moves:
            continue
        if e.undo_of:
            stack = [s for s in stack if s.id != e.undo_of]
        else:
            stack.append(e)
    return stack[-1] if stack else None


def latest(image: str) -> RebaseEntry | None:
    """The last entry (rebase or undo) written about ``image``: the state it should be in now."""
    found = entries(image)
    return found[-1] if found else None


# --------------------------------------------------------------------------- linked-clone VMs


@dataclass(frozen=True)
class CloneVmEntry:
    """A linked-clone VM imagegui made: the overlay it created and the domain it defined (found
    again by UUID: a name can be reused). Its undo (undefine, remove the overlay) is journalled
    as an entry with ``undo_of`` set."""

    id: str
    time: float
    uri: str
    name: str
    uuid: str
    overlay: str
    base: str
    template: str | None = None
    #: The overlay as it was created (``Fingerprint`` fields): an undo only removes it unchanged.
    fingerprint: dict | None = None
    undo_of: str | None = None
    #: On another host: the overlay volume as libvirt described it when created (its size on
    #: disk and modification time), since no file of that host can be fingerprinted from here.
    volume_state: dict | None = None

    @property
    def state(self) -> Fingerprint | None:
        return Fingerprint.from_json(self.fingerprint)

    @property
    def image(self) -> str:
        """The file it made (the window selects it, as it selects a rebased image)."""
        return self.overlay


CLONE_OP = "clone-vm"
#: Any entry the journal holds (a rebase, a linked-clone VM, a deletion to the Trash, a move, a
#: new file, a snapshot taken or a disk grown).
Entry = Union[RebaseEntry, CloneVmEntry, "DeleteEntry", "MoveEntry", "ChangeEntry"]


def record_clone(entry: CloneVmEntry) -> None:
    """Appends ``entry`` (one ``write``, fsynced, like a rebase's)."""
    data = asdict(entry)
    data["op"] = CLONE_OP
    _append(
        data, "clone", f"virsh -c {entry.uri} undefine {entry.name}, then remove {entry.overlay}"
    )


def _clone_entry(data: dict) -> CloneVmEntry:
    fields = CloneVmEntry.__dataclass_fields__
    required = [n for n, f in fields.items() if f.default is MISSING]
    missing = [n for n in required if n not in data]
    if missing:
        raise ValueError(f"no {', '.join(missing)}")
    for name in ("id", "uri", "name", "uuid", "overlay", "base", "template", "undo_of"):
        value = data.get(name)
        if not isinstance(value, str) and (value is not None or name in required):
            raise ValueError(f"{name} is not text")
    return CloneVmEntry(**{k: v for k, v in data.items() if k in fields})


def _all_entries(notes: list[str] | None = None) -> list[Entry]:
    """Every readable entry of any kind, oldest first (one read of the journal)."""
    out: list[Entry] = []
    for number, data in _journal_lines(notes):
        op = data.get("op")
        try:
            if op == "rebase":
                out.append(_rebase_entry(data))
            elif op == CLONE_OP:
                out.append(_clone_entry(data))
            elif op == DELETE_OP:
                out.append(_delete_entry(data))
            elif op == MOVE_OP:
                out.append(_move_entry(data))
            elif op in CHANGE_OPS:
                out.append(_change_entry(data))
        except (ValueError, TypeError) as exc:
            _skipped(notes, number, exc)
    return out


def clone_entries(notes: list[str] | None = None) -> list[CloneVmEntry]:
    return [e for e in _all_entries(notes) if isinstance(e, CloneVmEntry)]


def last_clone(
    name: str, uri: str | None = None, notes: list[str] | None = None
) -> CloneVmEntry | None:
    """The most recent linked-clone VM called ``name`` (on ``uri``, if given) not yet undone."""
    found = clone_entries(notes)
    undone = {e.undo_of for e in found if e.undo_of}
    for e in reversed(found):
        if e.undo_of or e.id in undone or e.name != name:
            continue
        if uri is None or e.uri == uri:
            return e
    return None


# --------------------------------------------------------------------------- deletions to the Trash


@dataclass(frozen=True)
class DeleteEntry:
    """A file imagegui moved to the Trash (``ops.trash``): where it was, where it is in the Trash
    and its ``.trashinfo``, and the file's identity and state then, so that a restore puts back
    only that very file, unchanged. A restore is journalled as a copy with ``undo_of`` set.
    Permanent deletions are not journalled: there is nothing to restore."""

    id: str
    time: float
    original: str
    trashed: str
    trashinfo: str
    dev: int
    ino: int
    size: int
    mtime_ns: int
    #: The files one delete moved share it (the id of its first entry): the window restores
    #: them together.
    batch: str = ""
    undo_of: str | None = None
    #: The image this file holds data of (a VMDK extent, a qcow2 data file), moved with it:
    #: restoring that image restores this file too.
    part_of: str = ""

    @property
    def image(self) -> str:
        """The file deleted (the window selects it once restored)."""
        return self.original

    def trashed_file(self) -> Trashed:
        """The entry as ``ops.trash`` takes it (``locate``, ``restore``)."""
        from imagegui.core.ops.trash import Trashed

        return Trashed(
            original=self.original,
            trashed=self.trashed,
            trashinfo=self.trashinfo,
            dev=self.dev,
            ino=self.ino,
            size=self.size,
            mtime_ns=self.mtime_ns,
            deleted_at=self.time,
        )


DELETE_OP = "delete"
_DELETE_TEXT = ("id", "original", "trashed", "trashinfo", "batch", "part_of")
_DELETE_INTS = ("dev", "ino", "size", "mtime_ns")


def delete_entry_for(item: Trashed, batch: str = "", part_of: str = "") -> DeleteEntry:
    """The journal entry for a file just moved to the Trash (``batch``: the id of the first
    entry of the same delete; empty for the first, which then names itself; ``part_of``: the
    image whose data file it is)."""
    entry_id = new_id()
    return DeleteEntry(
        id=entry_id,
        time=item.deleted_at,
        original=item.original,
        trashed=item.trashed,
        trashinfo=item.trashinfo,
        dev=item.dev,
        ino=item.ino,
        size=item.size,
        mtime_ns=item.mtime_ns,
        batch=batch or entry_id,
        part_of=part_of,
    )


def record_delete(entry: DeleteEntry) -> None:
    """Appends ``entry`` (a deletion, or with ``undo_of`` its restore), one fsynced line."""
    data = asdict(entry)
    data["op"] = DELETE_OP
    what = "restore" if entry.undo_of else "deletion"
    by_hand = f"the file is {entry.trashed}; its original place was {entry.original}"
    _append(data, what, by_hand)


def restore_entry_for(entry: DeleteEntry) -> DeleteEntry:
    """The entry that records ``entry``'s file put back."""
    return replace(entry, id=new_id(), time=time.time(), undo_of=entry.id)


def _delete_entry(data: dict) -> DeleteEntry:
    fields = DeleteEntry.__dataclass_fields__
    required = [n for n, f in fields.items() if f.default is MISSING]
    missing = [n for n in required if n not in data]
    if missing:
        raise ValueError(f"no {', '.join(missing)}")
    for name in _DELETE_TEXT:
        if not isinstance(data.get(name, ""), str):
            raise ValueError(f"{name} is not text")
    for name in _DELETE_INTS:
        if not isinstance(data[name], int) or isinstance(data[name], bool):
            raise ValueError(f"{name} is not a number")
    if not isinstance(data.get("undo_of"), (str, type(None))):
        raise ValueError("undo_of is not text")
    return DeleteEntry(**{k: v for k, v in data.items() if k in fields})


def delete_entries(notes: list[str] | None = None) -> list[DeleteEntry]:
    """Every deletion and restore, oldest first."""
    return [e for e in _all_entries(notes) if isinstance(e, DeleteEntry)]


def in_trash(notes: list[str] | None = None) -> list[DeleteEntry]:
    """The deletions not restored (yet), oldest first: what the journal says is in the Trash
    (the Trash may have been emptied since: ``ops.trash.locate`` says)."""
    found = delete_entries(notes)
    restored = {e.undo_of for e in found if e.undo_of}
    return [e for e in found if not e.undo_of and e.id not in restored]


def last_deletion(path: str, notes: list[str] | None = None) -> DeleteEntry | None:
    """The most recent deletion of the file that was at ``path``, not yet restored."""
    norm = canonical(path)
    for e in reversed(in_trash(notes)):
        if e.original == norm:
            return e
    return None


def parts_of(entry: DeleteEntry, notes: list[str] | None = None) -> list[DeleteEntry]:
    """The data files deleted with ``entry``'s image (its extents), not yet restored."""
    return [e for e in in_trash(notes) if e.batch == entry.batch and e.part_of == entry.original]


def batch_of(entry: DeleteEntry, notes: list[str] | None = None) -> list[DeleteEntry]:
    """The deletions made together with ``entry`` (itself included) not yet restored."""
    return [e for e in in_trash(notes) if e.batch == entry.batch]


# --------------------------------------------------------------------------- moves


@dataclass(frozen=True)
class MoveEntry:
    """One move or rename (``ops.move``) as one undoable unit: the files and folders renamed and
    the backing pointers rewritten for it (each also journalled as a rebase with ``move`` set,
    so a move killed part-way can still be undone pointer by pointer). Recorded once the move
    is complete; its undo is a ``MoveEntry`` with ``undo_of`` set."""

    id: str
    time: float
    #: What Undo calls it: the first file or folder moved (its name before the move).
    name: str
    #: Each rename: {"src", "dst", "is_dir", "fingerprint"} (the file as the move left it at
    #: ``dst``; for a folder only its identity counts).
    renames: list[dict]
    #: Each pointer rewrite: {"image" (before the move), "final" (after it), "image_format",
    #: "old_backing", "old_format", "new_backing", "new_format", "entry" (its rebase entry's
    #: id), "fingerprint" (the image as the move left it)}.
    rewrites: list[dict]
    #: Copied to another file system: the undo is a move back, not a rename.
    cross_fs: bool = False
    undo_of: str | None = None

    @property
    def image(self) -> str:
        """Where the first moved file is now (the window selects it)."""
        if not self.renames:
            return ""
        first = self.renames[0]
        return str(first["src"] if self.undo_of else first["dst"])


MOVE_OP = "move"


def record_move(entry: MoveEntry) -> None:
    """Appends ``entry`` (a move, or with ``undo_of`` its undo), one fsynced line."""
    data = asdict(entry)
    data["op"] = MOVE_OP
    moves = "; ".join(f"{r['dst']} was {r['src']}" for r in entry.renames)
    what = "undo of the move" if entry.undo_of else "move"
    _append(data, what, moves or "nothing was moved")


def _move_entry(data: dict) -> MoveEntry:
    fields = MoveEntry.__dataclass_fields__
    required = [n for n, f in fields.items() if f.default is MISSING]
    missing = [n for n in required if n not in data]
    if missing:
        raise ValueError(f"no {', '.join(missing)}")
    for name in ("id", "name"):
        if not isinstance(data[name], str):
            raise ValueError(f"{name} is not text")
    if not isinstance(data.get("undo_of"), (str, type(None))):
        raise ValueError("undo_of is not text")
    for name, keys in (("renames", ("src", "dst")), ("rewrites", ("image", "final", "entry"))):
        items = data[name]
        if not isinstance(items, list) or not all(
            isinstance(i, dict) and all(isinstance(i.get(k), str) for k in keys) for i in items
        ):
            raise ValueError(f"{name} is not a list of moves")
    return MoveEntry(**{k: v for k, v in data.items() if k in fields})


def move_entries(notes: list[str] | None = None) -> list[MoveEntry]:
    return [e for e in _all_entries(notes) if isinstance(e, MoveEntry)]


def last_move(path: str | None = None, notes: list[str] | None = None) -> MoveEntry | None:
    """The most recent move not yet undone; with ``path``, the most recent one that moved that
    file or folder (named where it was or where it went, or inside a moved folder)."""
    found = move_entries(notes)
    undone = {e.undo_of for e in found if e.undo_of}
    norm = canonical(path) if path else ""
    for e in reversed(found):
        if e.undo_of or e.id in undone:
            continue
        if not path:
            return e
        for r in e.renames:
            if any(norm == p or norm.startswith(p.rstrip("/") + "/") for p in (r["src"], r["dst"])):
                return e
    return None


# -------------------------------------------------------------------- new files, snapshots, resizes

NEW_OP, CONVERT_OP, SNAPSHOT_OP, RESIZE_OP = "new", "convert", "snapshot-create", "resize"
#: The changes a ``ChangeEntry`` records, each with what Undo calls it ("Undo new image X").
CHANGE_OPS = {
    NEW_OP: "new image",
    CONVERT_OP: "convert to",
    SNAPSHOT_OP: "snapshot",
    RESIZE_OP: "resize of",
}


@dataclass(frozen=True)
class ChangeEntry:
    """A file imagegui created (``new``, ``convert``), an internal snapshot it took or a disk it
    grew: what its undo needs to act on that very result and nothing else. A new file's undo
    moves it to the Trash (only the same file: its identity is recorded); a snapshot's deletes
    that snapshot (only while one with the same id and date is there); a grow's shrinks the
    disk back (only while nothing was written past the old size). The undo is a
    ``ChangeEntry`` with ``undo_of`` set."""

    id: str
    time: float
    #: ``NEW_OP``, ``CONVERT_OP``, ``SNAPSHOT_OP`` or ``RESIZE_OP`` (the line's ``op``).
    kind: str
    #: The file created, or the image the snapshot was taken of / that was grown.
    image: str
    #: The file as the change left it (``Fingerprint`` fields).
    fingerprint: dict | None = None
    #: A convert's source (only read).
    source: str = ""
    #: The snapshot taken: {"id", "name", "date_sec", "date_nsec"}.
    snapshot: dict | None = None
    #: A resize's virtual sizes before and after.
    old_size: int = 0
    new_size: int = 0
    undo_of: str | None = None
    #: The undo of a new file: where in the Trash it went.
    trashed: str = ""

    @property
    def state(self) -> Fingerprint | None:
        return Fingerprint.from_json(self.fingerprint)

    @property
    def name(self) -> str:
        """What Undo names: the file, or "NAME of IMAGE" for a snapshot."""
        base = os.path.basename(self.image)
        if self.kind == SNAPSHOT_OP and self.snapshot:
            return f"{self.snapshot.get('name', '?')} of {base}"
        return base

    @property
    def words(self) -> str:
        """ "new image web.qcow2", "snapshot before-upgrade of web.qcow2", ..."""
        return f"{CHANGE_OPS.get(self.kind, self.kind)} {self.name}"


def change_entry_for(kind: str, image: str, **fields: object) -> ChangeEntry:
    """The entry for a change just made to ``image`` (fingerprinted as it is now)."""
    state = Fingerprint.of(image)
    return ChangeEntry(
        id=new_id(),
        time=time.time(),
        kind=kind,
        image=image,
        fingerprint=asdict(state) if state else None,
        **fields,  # type: ignore[arg-type]
    )


def record_change(entry: ChangeEntry) -> None:
    """Appends ``entry`` (a change, or with ``undo_of`` its undo), one fsynced line."""
    data = asdict(entry)
    data["op"] = data.pop("kind")
    what = f"undo of the {entry.kind}" if entry.undo_of else entry.kind
    by_hand = f"undone: {entry.words}" if entry.undo_of else f"made: {entry.words}"
    _append(data, what, by_hand)


def journal_change(kind: str, image: str, **fields: object) -> str:
    """Records a change just made (the change is done: a journal that cannot be written only
    loses its undo); returns "" or a sentence for the result's message saying so."""
    try:
        record_change(change_entry_for(kind, image, **fields))
    except JournalError as exc:
        return f"; it cannot be undone from imagegui ({exc})"
    return ""


def undo_record(entry: ChangeEntry, **fields: object) -> ChangeEntry:
    """The entry that records ``entry`` undone."""
    return replace(entry, id=new_id(), time=time.time(), undo_of=entry.id, **fields)  # type: ignore[arg-type]


def _change_entry(data: dict) -> ChangeEntry:
    fields = ChangeEntry.__dataclass_fields__
    for name in ("id", "image"):
        if not isinstance(data.get(name), str):
            raise ValueError(f"{name} is not text" if name in data else f"no {name}")
    if not isinstance(data.get("time"), (int, float)):
        raise ValueError("no time")
    for name in ("source", "trashed"):
        if not isinstance(data.get(name, ""), str):
            raise ValueError(f"{name} is not text")
    for name in ("old_size", "new_size"):
        value = data.get(name, 0)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"{name} is not a number")
    if not isinstance(data.get("undo_of"), (str, type(None))):
        raise ValueError("undo_of is not text")
    snap = data.get("snapshot")
    if snap is not None and not (isinstance(snap, dict) and isinstance(snap.get("name"), str)):
        raise ValueError("snapshot is not a snapshot")
    values = {k: v for k, v in data.items() if k in fields}
    return ChangeEntry(kind=data["op"], **values)


def change_entries(notes: list[str] | None = None) -> list[ChangeEntry]:
    return [e for e in _all_entries(notes) if isinstance(e, ChangeEntry)]


def last_change(
    kinds: tuple[str, ...], path: str | None = None, notes: list[str] | None = None
) -> ChangeEntry | None:
    """The most recent change of one of ``kinds`` not yet undone; with ``path``, the most recent
    one made to (or creating) that file."""
    found = change_entries(notes)
    undone = {e.undo_of for e in found if e.undo_of}
    norm = canonical(path) if path else ""
    for e in reversed(found):
        if e.undo_of or e.id in undone or e.kind not in kinds:
            continue
        if not path or e.image == norm:
            return e
    return None


# --------------------------------------------------------------------------- the undo on offer


@dataclass(frozen=True)
class UndoTarget:
    """What an Undo would act on: the journal's last entry when it is a change not yet undone
    (a rebase or a linked-clone VM). Only the very last change is offered (whatever image it was
    on), as an editor's Undo does; ``reason`` says why nothing is (the journal is empty, or its
    last entry is an undo)."""

    entry: Entry | None
    reason: str = ""
    #: For a deletion: every file that delete moved to the Trash and that is not restored yet,
    #: ``entry`` among them (Restore puts them all back).
    batch: tuple[DeleteEntry, ...] = ()

    @property
    def name(self) -> str:
        """The image rebased, the VM cloned, the file deleted or moved, as Undo names it."""
        if isinstance(self.entry, (CloneVmEntry, MoveEntry, ChangeEntry)):
            return self.entry.name
        return os.path.basename(self.entry.image) if self.entry else ""

    @property
    def kind(self) -> str:
        """``rebase``, ``clone-vm``, ``delete``, ``move``, or a ``ChangeEntry``'s kind
        (``new``, ``convert``, ``snapshot-create``, ``resize``); empty when nothing can be
        undone."""
        if self.entry is None:
            return ""
        if isinstance(self.entry, ChangeEntry):
            return self.entry.kind
        if isinstance(self.entry, CloneVmEntry):
            return CLONE_OP
        if isinstance(self.entry, MoveEntry):
            return MOVE_OP
        return DELETE_OP if isinstance(self.entry, DeleteEntry) else "rebase"


def undo_target() -> UndoTarget:
    """Reads the journal (a small file: call it on a worker, e.g. with the scan) for the Undo."""
    notes: list[str] = []
    found = _all_entries(notes=notes)
    if not found:
        if notes:
            return UndoTarget(None, f"nothing can be undone: {notes[0]}")
        return UndoTarget(None, "nothing to undo: no rebase has been recorded yet")
    last = found[-1]
    if last.undo_of:
        undone = next((e for e in found if e.id == last.undo_of), last)
        if isinstance(undone, CloneVmEntry):
            return UndoTarget(
                None,
                f"nothing to undo: the last linked-clone VM ({undone.name}) was already undone",
            )
        if isinstance(undone, MoveEntry):
            return UndoTarget(
                None, f"nothing to undo: the last move ({undone.name}) was already undone"
            )
        if isinstance(undone, ChangeEntry):
            return UndoTarget(
                None, f"nothing to undo: the last change ({undone.words}) was already undone"
            )
        name = os.path.basename(undone.image)
        if isinstance(undone, DeleteEntry):
            return UndoTarget(
                None, f"nothing to undo: the last deleted file ({name}) was already restored"
            )
        return UndoTarget(None, f"nothing to undo: the last rebase ({name}) was already undone")
    if isinstance(last, DeleteEntry):
        restored = {e.undo_of for e in found if isinstance(e, DeleteEntry) and e.undo_of}
        batch = tuple(
            e
            for e in found
            if isinstance(e, DeleteEntry)
            and e.batch == last.batch
            and not e.undo_of
            and e.id not in restored
        )
        # Named by an image, not by the extent file that went with it.
        named = [e for e in batch if not e.part_of] or [last]
        return UndoTarget(named[-1], batch=batch)
    return UndoTarget(last)
