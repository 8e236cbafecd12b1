"""Undo of a move: the journal's ``MoveEntry`` undone as one unit.

Every pointer the move rewrote gets its old name and format back (``qemu-img rebase -u``, exactly
as journalled), then every file and folder is renamed back where it was (never replacing a file).
Only on the very files the move left, unchanged since (their fingerprints), and only while every
old place is still free: a file written since, or a name taken again, refuses the undo with the
reason named. A move across file systems was a copy; it is undone by moving back, not here.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from imagegui.core.jobs import CancelledError, CancelToken, ProgressFn
from imagegui.core.ops import guards, journal
from imagegui.core.ops.filemove import rename_no_replace
from imagegui.core.ops.plan import GuardRefused, OpResult, Plan, add_findings, refuse, warn
from imagegui.core.qemu import qemuimg
from imagegui.core.read.fileid import file_id

if TYPE_CHECKING:
    from imagegui.core.virt.inventory import DomainSource


@dataclass(kw_only=True)
class MoveUndoResult(OpResult):
    #: (from, to) of each file or folder moved back.
    moved: list[tuple[str, str]] = field(default_factory=list)


@dataclass(kw_only=True)
class MoveUndoPlan(Plan[MoveUndoResult]):
    op: ClassVar[str] = "move-undo"

    entry: journal.MoveEntry | None = None
    #: The path the undo was asked for (``move --undo PATH``), kept for ``replan``.
    path: str | None = None

    def replan(self) -> MoveUndoPlan:
        return plan_undo_move(self.path, qemu_img=self.qemu_img, domains=self.domains)

    def _execute(self, progress: ProgressFn, cancel: CancelToken) -> MoveUndoResult:
        entry = self.entry
        assert entry is not None  # a plan without one is refused
        undo_id = journal.new_id()
        restored: list[tuple[dict, str]] = []  # (rewrite, the undo's rebase entry id)
        renamed: list[dict] = []
        steps = len(entry.rewrites) + len(entry.renames) + 1
        done = 0
        try:
            for w in entry.rewrites:
                cancel.raise_if_cancelled("nothing was changed")
                fd = journal.open_for_append()
                try:
                    qemuimg.run(_back_argv(w), qemu_img=self.qemu_img)
                except BaseException:
                    os.close(fd)
                    raise
                restored.append((w, _journal_back(w, undo_id, fd)))
                done += 1
                progress(done / steps)
            for r in reversed(entry.renames):
                cancel.raise_if_cancelled("nothing was changed")
                rename_no_replace(r["dst"], r["src"])
                renamed.append(r)
                done += 1
                progress(done / steps)
        except (CancelledError, OSError, qemuimg.QemuImgError, GuardRefused) as exc:
            state = _redo(entry, restored, renamed, undo_id, self.qemu_img)
            if isinstance(exc, CancelledError):
                raise CancelledError(f"undo of the move cancelled: {state}") from None
            raise qemuimg.QemuImgError(f"undo of the move failed: {exc}; {state}") from exc
        journal.record_move(
            journal.MoveEntry(
                id=undo_id,
                time=time.time(),
                name=entry.name,
                renames=entry.renames,
                rewrites=entry.rewrites,
                cross_fs=entry.cross_fs,
                undo_of=entry.id,
            )
        )
        progress(1.0)
        moved = [(r["dst"], r["src"]) for r in entry.renames]
        n = len(entry.rewrites)
        what = ", ".join(f"{d} -> {s}" for d, s in moved)
        return MoveUndoResult(
            message=f"moved back {what}; {n} backing pointer{'s' * (n != 1)} restored",
            changed=[r["src"] for r in entry.renames] + [w["image"] for w in entry.rewrites],
            moved=moved,
        )


def _back_argv(w: dict) -> list[str]:
    """The rewrite undone, on the image where the move left it."""
    return qemuimg.rebase_argv(
        w["final"], w["image_format"], w["old_backing"], w["old_format"], True
    )


def _journal_back(w: dict, undo_id: str, fd: int | None = None) -> str:
    """Journals one pointer put back as the undo of the move's rebase entry (the image named
    where it will be once the files are back)."""
    return journal.record_rewrite(
        w["image"],
        (w["new_backing"], w["new_format"]),
        (w["old_backing"], w["old_format"]),
        undo_of=w["entry"] or None,
        move=undo_id,
        now_at=w["final"],
        fd=fd,
    )


def _redo(
    entry: journal.MoveEntry,
    restored: list[tuple[dict, str]],
    renamed: list[dict],
    undo_id: str,
    qemu_img: str,
) -> str:
    """Puts back what the undo did so far (the move as it was); says the state it leaves."""
    failed = []
    for r in reversed(renamed):
        try:
            rename_no_replace(r["src"], r["dst"])
        except (OSError, GuardRefused) as exc:
            failed.append(f"{r['src']} could not be moved to {r['dst']} again ({exc})")
    for w, _entry_id in reversed(restored):
        argv = qemuimg.rebase_argv(
            w["final"], w["image_format"], w["new_backing"], w["new_format"], True
        )
        try:
            qemuimg.run(argv, qemu_img=qemu_img)
        except qemuimg.QemuImgError as exc:
            failed.append(f"{w['final']} keeps {w['old_backing']!r} ({exc})")
            continue
        with contextlib.suppress(journal.JournalError):
            journal.record_rewrite(
                w["final"],
                (w["old_backing"], w["old_format"]),
                (w["new_backing"], w["new_format"]),
                move=undo_id,
            )
    if failed:
        return "putting the move back failed in part: " + "; ".join(failed)
    return "the files and pointers are as the move left them"


def plan_undo_move(
    path: str | None = None, qemu_img: str = "", domains: DomainSource | None = None
) -> MoveUndoPlan:
    """The undo of the last move not yet undone (with ``path``: the last one that moved that
    file or folder, named where it was or where it is)."""
    notes: list[str] = []
    entry = journal.last_move(path, notes)
    findings = [warn("journal-line", n) for n in notes]
    if entry is None:
        about = f" of {path}" if path else ""
        findings.append(
            refuse("no-journal", f"the journal ({journal.journal_path()}) has no move{about}")
        )
        return MoveUndoPlan(
            title=f"undo move{about}", findings=findings, qemu_img=qemu_img, path=path
        )
    index, found = guards.read_domains(domains)
    findings += found
    if entry.cross_fs:
        findings.append(
            refuse(
                "copied",
                f"{entry.name} was copied to another file system and the original removed, so "
                "undoing it is a move back: move it back instead",
            )
        )
    for r in entry.renames:
        findings += _moved_problems(r)
        add_findings(findings, guards.target_free(r["src"], "original place"))
    for w in entry.rewrites:
        recorded = journal.Fingerprint.from_json(w.get("fingerprint"))
        if recorded is None:
            findings.append(refuse("unverifiable", f"{w['final']} has no fingerprint recorded"))
            continue
        changed = recorded.differences(journal.Fingerprint.of(w["final"]))
        if changed:
            findings.append(
                refuse(
                    "changed",
                    f"{w['final']} is not as the move left it: {'; '.join(changed)}; putting "
                    "its old backing pointer back could give its guest other data",
                )
            )
        add_findings(findings, guards.writable(w["final"], "image"))
    for p in sorted({w["final"] for w in entry.rewrites} | _moved_files(entry)):
        lock = guards.not_in_use(p, "image", index=index)
        add_findings(findings, lock)
        findings += guards.not_used_by_domain(
            p,
            "image",
            index,
            "moving it back changes where {vm} disk or its backing chain lives",
            skip_running=lock is not None,
        )
    if entry.rewrites and (why := journal.writable_problem()) is not None:
        findings.append(refuse("journal", why))
    commands = [_back_argv(w) for w in entry.rewrites]
    commands += [["mv", "-n", "-T", "--", r["dst"], r["src"]] for r in reversed(entry.renames)]
    changes = [f"{r['dst']} is renamed back to {r['src']}" for r in entry.renames]
    for w in entry.rewrites:
        old = repr(w["old_backing"])
        fmt = f" (format {w['old_format']})" if w["old_format"] else ""
        changes.append(
            f"{w['final']}: backing pointer {w['new_backing']!r} -> {old}{fmt} again, as it was "
            "before the move; only the pointer is rewritten, the guest sees the same bytes"
        )
    return MoveUndoPlan(
        title=f"undo move of {entry.name}",
        commands=commands,
        changes=changes,
        findings=findings,
        qemu_img=qemu_img,
        domains=domains,
        entry=entry,
        path=path,
    )


def _moved_problems(r: dict) -> list:
    """Refusals for a moved file or folder that is no longer what the move left at ``dst``."""
    if r.get("is_dir"):
        ident = file_id(r["dst"])
        if ident is None:
            return [refuse("changed", f"{r['dst']} is gone")]
        was = r.get("fingerprint") or {}
        if ident != (was.get("dev"), was.get("ino")):
            return [refuse("changed", f"{r['dst']} is a different folder now")]
        return []
    recorded = journal.Fingerprint.from_json(r.get("fingerprint"))
    now = journal.Fingerprint.of(r["dst"])
    if recorded is None:
        return [refuse("unverifiable", f"{r['dst']} has no fingerprint recorded")]
    changed = recorded.differences(now)
    if changed:
        return [refuse("changed", f"{r['dst']} is not as the move left it: {'; '.join(changed)}")]
    return []


def _moved_files(entry: journal.MoveEntry) -> set[str]:
    return {r["dst"] for r in entry.renames if not r.get("is_dir")}
