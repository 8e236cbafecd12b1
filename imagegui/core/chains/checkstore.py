"""What ``qemu-img check`` found, kept as problems of an image until it changes or is checked again.

A scan reads headers only; corruptions and leaked clusters are visible only to a full check, which
takes seconds to minutes per image. So a check's findings are remembered, keyed by the file's
identity (device, inode) and stamped with its size and modification time in nanoseconds: any write
to the image changes the stamp and the findings stop applying (they described another state of the
file), and a new check replaces them. Only findings are stored - a clean check removes the entry -
so the store stays as small as the number of damaged images and the graph reads it in one pass.

The store is one JSON file, ``$XDG_STATE_HOME/imagegui/checks.json`` (``IMAGEGUI_CHECKS`` points
it elsewhere), shared by the command line and the window. Writers take an advisory lock, merge with
what is on disk and replace the file atomically (temp file + rename), so two processes recording at
once lose nothing and a crash leaves the old file. A damaged or unreadable store is a note, never a
crash: it is treated as empty and rewritten by the next check.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import functools
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import cast

from imagegui.core.chains.diagnose import Kind, Problem, fix_cli, problem
from imagegui.core.statefiles import state_file

ENV = "IMAGEGUI_CHECKS"
VERSION = 1


def store_path() -> str:
    return state_file("checks.json", ENV)


@dataclass(frozen=True)
class Fingerprint:
    """Which file, in which state: any write changes ``size`` or ``mtime_ns``."""

    dev: int
    ino: int
    size: int
    mtime_ns: int

    @classmethod
    def from_stat(cls, st: os.stat_result) -> Fingerprint:
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    @classmethod
    def of(cls, path: str) -> Fingerprint | None:
        try:
            return cls.from_stat(os.stat(path))
        except OSError:
            return None

    @property
    def file_id(self) -> tuple[int, int]:
        return (self.dev, self.ino)


@dataclass(frozen=True)
class CheckRecord:
    """One check's findings about one file in one state."""

    path: str
    fingerprint: Fingerprint
    checked_at: float
    format: str = ""
    corruptions: int = 0
    leaks: int = 0
    #: Errors while checking (qemu-img's ``check-errors``: an I/O error reading the metadata).
    check_errors: int = 0
    #: qemu-img could not check the image at all: its message.
    failure: str = ""

    @property
    def has_findings(self) -> bool:
        return bool(self.corruptions or self.leaks or self.check_errors or self.failure)

    def problems(self, path: str | None = None) -> list[Problem]:
        """The findings as problems of ``path`` (the graph's node; the file may have been
        reached through another name)."""
        path = path or self.path
        when = _minute(int(self.checked_at // 60))
        out = []
        errors = []
        if self.corruptions:
            errors.append(f"{_n(self.corruptions, 'corruption')} in its metadata")
        if self.check_errors:
            errors.append(f"{_n(self.check_errors, 'error')} reading its metadata")
        if errors:
            message = f"The check of {when} found {' and '.join(errors)}."
            out.append(problem(Kind.CHECK_ERRORS, path, message, fix_cli(Kind.CHECK_ERRORS, path)))
        if self.failure:
            message = f"The check of {when} could not open it: {self.failure}"
            out.append(problem(Kind.CHECK_ERRORS, path, message))
        if self.leaks:
            message = (
                f"The check of {when} found {_n(self.leaks, 'leaked cluster')}: space "
                "allocated in the file that nothing uses."
            )
            fix = fix_cli(Kind.LEAKED_CLUSTERS, path)
            out.append(problem(Kind.LEAKED_CLUSTERS, path, message, fix))
        return out

    def to_json(self) -> dict[str, object]:
        d = asdict(self)
        d.update(d.pop("fingerprint"))
        return d

    @classmethod
    def from_json(cls, d: dict[str, object]) -> CheckRecord:
        """One stored entry, checked field by field (a hand-edited or damaged store)."""
        get = d.get
        ints = (d["dev"], d["ino"], d["size"], d["mtime_ns"])
        counts = (get("corruptions", 0), get("leaks", 0), get("check_errors", 0))
        if not all(type(v) is int for v in (*ints, *counts)):
            raise ValueError("identity, stamp and counts must be integers")
        path, fmt, failure = d["path"], get("format", ""), get("failure", "")
        if not (type(path) is str and type(fmt) is str and type(failure) is str):
            raise ValueError("path, format and failure must be strings")
        checked_at = d["checked_at"]
        if type(checked_at) not in (int, float):
            raise ValueError("checked_at must be a number")
        dev, ino, size, mtime_ns = cast("tuple[int, int, int, int]", ints)
        corruptions, leaks, check_errors = cast("tuple[int, int, int]", counts)
        return cls(
            path,
            Fingerprint(dev, ino, size, mtime_ns),
            float(cast(float, checked_at)),
            fmt,
            corruptions,
            leaks,
            check_errors,
            failure,
        )


@functools.lru_cache(maxsize=64)
def _minute(minute: int) -> str:
    """The local time of a check, to the minute (a deep check's thousands share a few)."""
    return dt.datetime.fromtimestamp(minute * 60).strftime("%Y-%m-%d %H:%M")


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'s' * (count != 1)}"


class CheckStore:
    """The stored findings, by file identity. Lookups are O(1); nothing here touches the disk."""

    def __init__(self, records: Iterable[CheckRecord] = (), note: str | None = None):
        self._records = {r.fingerprint.file_id: r for r in records}
        #: Why the stored findings could not all be read (shown as a note), or None.
        self.note = note

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[CheckRecord]:
        return iter(self._records.values())

    def get(self, file_id: tuple[int, int]) -> CheckRecord | None:
        return self._records.get(file_id)

    def current(self, path: str) -> CheckRecord | None:
        """The findings about ``path`` if the file is still in the state that was checked."""
        fp = Fingerprint.of(path)
        rec = self._records.get(fp.file_id) if fp else None
        return rec if rec is not None and rec.fingerprint == fp else None

    def merge(self, records: Iterable[CheckRecord]) -> None:
        """Newer checks replace older ones; a clean check removes what was found before."""
        for r in records:
            key = r.fingerprint.file_id
            if r.has_findings:
                self._records[key] = r
            else:
                self._records.pop(key, None)

    def prune(self) -> None:
        """Drops findings about files that are gone or have changed since (one stat each)."""
        for key, rec in list(self._records.items()):
            if Fingerprint.of(rec.path) != rec.fingerprint:
                del self._records[key]

    def to_json(self) -> dict[str, object]:
        return {"version": VERSION, "records": [r.to_json() for r in self._records.values()]}


def load(path: str | None = None) -> CheckStore:
    """The stored findings; an absent store is empty, a damaged one is empty with a note."""
    path = path or store_path()
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return CheckStore()
    except OSError as exc:
        return CheckStore(note=_note(path, exc.strerror or str(exc)))
    return _parse(path, data)


def _parse(path: str, data: bytes) -> CheckStore:
    try:
        doc = json.loads(data)
    except ValueError as exc:  # UnicodeDecodeError included
        return CheckStore(note=_note(path, f"not valid JSON ({exc})"))
    if not isinstance(doc, dict) or not isinstance(doc.get("records"), list):
        return CheckStore(note=_note(path, "not a check-results file"))
    if doc.get("version") != VERSION:
        return CheckStore(note=_note(path, f"written by another version ({doc.get('version')})"))
    records, bad = [], 0
    for item in doc["records"]:
        try:
            records.append(CheckRecord.from_json(item))
        except (AttributeError, KeyError, TypeError, ValueError):
            bad += 1
    entries = "1 damaged entry" if bad == 1 else f"{bad} damaged entries"
    note = _note(path, f"{entries} ignored") if bad else None
    return CheckStore(records, note)


def _note(path: str, why: str) -> str:
    return f"The saved check results ({path}) could not be read: {why}. Check again to renew them."


def record(records: Iterable[CheckRecord], path: str | None = None) -> CheckStore:
    """Merges ``records`` into the store on disk and returns the store as written.

    Never raises for the store's own sake: when it cannot be written, the returned store (still
    holding the new findings, in memory) carries a note saying why.
    """
    path = path or store_path()
    records = list(records)
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with _locked(path):
            store = load(path)
            note = store.note
            store.merge(records)
            store.prune()
            _write(path, store)
    except OSError as exc:
        store = load(path)
        store.merge(records)
        store.note = (
            f"The check results could not be saved to {path}: {exc.strerror or exc}. They are "
            "shown now but forgotten afterwards."
        )
        return store
    store.note = note
    return store


@contextlib.contextmanager
def _locked(path: str):
    """An advisory lock beside the store: concurrent writers take turns (readers need none,
    since the file is only ever replaced whole)."""
    fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write(path: str, store: CheckStore) -> None:
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".checks.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(store.to_json(), f, indent=1)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
