"""overlay, rebase, commit and flatten: each a *plan* first, then a run (check: ``checkimage``).

A plan holds the exact qemu-img argv, what will change in words, and every guard's finding; the
CLI's ``--dry-run`` prints it and the GUI shows it before the user confirms. ``Plan.run`` plans
again and refuses when anything moved in between (a VM started, a target appeared, a format
changed) - the check and the write are milliseconds apart instead of a dialog's lifetime apart.

Runs take the job shape of ``imagegui.core.jobs`` (progress callback, cancel token), so the same
code serves the terminal progress bar and the GUI's worker pool. A cancelled run raises
``CancelledError`` whose message says what state the images are in.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import shlex
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from imagegui.core.jobs import CancelledError, CancelToken, Job, ProgressFn, no_progress
from imagegui.core.ops import guards, journal
from imagegui.core.ops.guards import Finding, GuardRefused, info, refuse, warn
from imagegui.core.qemu import qemuimg
from imagegui.core.read import backing
from imagegui.core.read.fileid import FileId, file_id, stat_id
from imagegui.core.read.model import ImageInfo
from imagegui.core.units import human_size, printable

log = logging.getLogger(__name__)


@dataclass
class OpResult:
    """What a finished operation did, in words and paths (the GUI rescans these)."""

    op: str
    message: str
    changed: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    #: A follow-up for the command line only (how to undo it there); the window has actions.
    cli_hint: str = ""


@dataclass
class Plan:
    """The exact commands an operation will run, what they change, and the guards' findings."""

    op: str
    title: str
    commands: list[list[str]] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    #: Lifts refusals marked ``overridable`` (a shared base's siblings), never the others.
    force: bool = False
    #: Files (and protocol sources) the user allowed this plan to read by name although they lie
    #: outside its directories, are devices or private (``guards.chain_access``).
    allow: tuple[str, ...] = ()

    def blocking(self) -> list[Finding]:
        return [
            f for f in self.findings if f.level == "refuse" and not (self.force and f.overridable)
        ]

    @property
    def refused(self) -> bool:
        return bool(self.blocking())

    def verdict(self) -> str:
        """One line for the log: refused and why, or how many warnings it runs with."""
        blocking = self.blocking()
        if blocking:
            return "refused: " + "; ".join(printable(f.message) for f in blocking)
        warns = sum(1 for f in self.findings if f.level != "info")
        return f"may run ({len(self.commands)} commands, {warns} warnings)"

    def command_lines(self) -> list[str]:
        return [shlex.join(argv) for argv in self.commands]

    def describe(self) -> str:
        """The text ``--dry-run`` prints (the window shows ``plan_dialog.plan_html`` instead):
        one line per item, each with its control characters escaped (a name with a line feed
        must not forge a line such as the verdict)."""
        lines = [printable(self.title), "commands:"]
        lines += [f"  $ {printable(c)}" for c in self.command_lines()] or ["  (none)"]
        lines.append("will change:")
        lines += [f"  - {printable(c)}" for c in self.changes] or ["  nothing"]
        if self.findings:
            lines.append("checks:")
            for f in self.findings:
                tag = f.level
                if f.level == "refuse" and self.force and f.overridable:
                    tag = "forced"
                lines.append(f"  [{tag}] {printable(f.cli_text)}")
        lines.append("verdict: " + ("REFUSED" if self.refused else "ok to run"))
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "op": self.op,
            "title": self.title,
            "commands": self.commands,
            "command_lines": self.command_lines(),
            "changes": self.changes,
            "findings": [f.to_json() for f in self.findings],
            "refused": self.refused,
        }

    # -- running

    def replan(self) -> Plan:
        raise NotImplementedError

    def _execute(self, progress: ProgressFn, cancel: CancelToken) -> OpResult:
        raise NotImplementedError

    def run(
        self, progress: ProgressFn | None = None, cancel: CancelToken | None = None
    ) -> OpResult:
        """Checks the guards again, then runs. Raises ``GuardRefused``, ``CancelledError`` or a
        ``QemuImgError``."""
        progress = progress or no_progress
        cancel = cancel or CancelToken()
        fresh = self.replan()
        title = printable(self.title)
        if fresh.blocking():
            log.warning(
                "plan %s refused: %s",
                title,
                "; ".join(printable(f.message) for f in fresh.blocking()),
            )
            raise GuardRefused(fresh.blocking())
        if fresh.commands != self.commands:
            log.warning("plan %s refused: the images changed since it was made", title)
            raise GuardRefused(
                [refuse("changed", "the images changed since this plan was made; review it again")]
            )
        log.info(
            "plan %s: runs (%d commands%s; %d findings)",
            title, len(self.commands), ", forced" if self.force else "", len(fresh.findings),
        )  # fmt: skip
        try:
            cancel.raise_if_cancelled("nothing was changed")
            result = self._execute(progress, cancel)
        except CancelledError as exc:
            log.warning("plan %s cancelled: %s", title, printable(str(exc)))
            raise
        except Exception as exc:
            log.warning("plan %s failed: %s", title, printable(str(exc)))
            raise
        log.info("plan %s done: %s", title, printable(getattr(result, "message", "")))
        return result

    def job(self) -> Job[OpResult]:
        return Job(self.title, self.run)


def _abs(path: str) -> str:
    """A path from the user as the kernel resolves it (``..`` after symlinks, never as text)."""
    return backing.canonical(path)


def _probe(path: str, role: str, findings: list[Finding]) -> ImageInfo | None:
    from imagegui.core.read.probe import ProbeError, probe_image

    try:
        return probe_image(path)
    except ProbeError as exc:
        findings.append(refuse("unreadable", f"{role} {path}: {exc}"))
        return None


def _add(findings: list[Finding], *maybe: Finding | None) -> None:
    findings.extend(f for f in maybe if f is not None)


def backing_name(target: str, base: str, absolute: bool) -> str | None:
    """The name to store in ``target``: relative to its directory (survives moving the whole
    directory), or absolute on request (survives moving the overlay alone). The name is one the
    kernel resolves from ``target``'s directory to ``base`` itself (symlinked directories and
    ``..`` included); None when no name does (the directory is missing)."""
    directory = os.path.dirname(target)
    if absolute:
        return base if backing.reaches(directory, base, base) else None
    return backing.relative_name(directory, base)


def _name_finding(target: str, name: str | None, base: str) -> Finding | None:
    """Refuses a stored name that would make qemu open another file than the plan names."""
    directory = os.path.dirname(target)
    if not os.path.isdir(directory):
        return None  # target_free says so
    if name is not None and backing.reaches(directory, name, base):
        return None
    return refuse(
        "backing-name",
        f"no backing name stored in {target} would lead qemu to {base} (the directories are "
        "linked in a way imagegui cannot express); store the absolute path instead",
    )


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def claim_new_file(path: str, mode: int) -> FileId:
    """Creates ``path`` empty, exclusively (``O_EXCL``): a file that appeared since the guards
    looked is never opened, let alone overwritten. qemu-img then writes into this file, which
    keeps ``mode`` (narrowed by the umask) instead of qemu's 0644. Returns its identity."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, mode)
    except FileExistsError:
        raise GuardRefused(
            [refuse("target-exists", f"{path} appeared after the checks; it was not touched")]
        ) from None
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    return stat_id(st)


def release_new_file(path: str, ident: FileId) -> None:
    """Removes the file :func:`claim_new_file` made - only if ``path`` still is that file."""
    if file_id(path) == ident:
        _remove_quietly(path)


def still_ours(path: str, ident: FileId) -> None:
    """After qemu-img wrote ``path``: the file there must be the one we created."""
    if file_id(path) != ident:
        raise GuardRefused(
            [refuse("target-replaced", f"{path} was replaced by another file while being written")]
        )


# --------------------------------------------------------------------------- overlay


@dataclass
class OverlayPlan(Plan):
    base: str = ""
    new: str = ""
    size: int | None = None
    absolute: bool = False
    roots: tuple[str, ...] = ()
    mode: int = 0o600

    def replan(self) -> Plan:
        return plan_overlay(
            self.base, self.new, self.size, self.absolute, roots=self.roots, allow=self.allow
        )

    def _execute(self, progress: ProgressFn, cancel: CancelToken) -> OpResult:
        ident = claim_new_file(self.new, self.mode)
        try:
            qemuimg.run(self.commands[0], cancel=cancel)
            still_ours(self.new, ident)
        except BaseException:
            release_new_file(self.new, ident)
            raise
        progress(1.0)
        return OpResult("overlay", f"created {self.new} on {self.base}", [self.new])


def plan_overlay(
    base: str,
    new: str,
    size: int | None = None,
    absolute: bool = False,
    roots: tuple[str, ...] = (),
    allow: tuple[str, ...] = (),
) -> OverlayPlan:
    """``roots``: directories whose files the chain may read without asking (the scanned root);
    ``allow``: files outside them the user allowed by name."""
    base, new = _abs(base), _abs(new)
    mode = 0o600
    findings: list[Finding] = []
    _add(findings, guards.target_free(new, "new image"))
    img = _probe(base, "base", findings)
    name = backing_name(new, base, absolute)
    fmt = img.format if img else "?"
    if img:
        _add(findings, _name_finding(new, name, base))
        chain = guards.follow_chain(base)
        _add(findings, guards.chain_problem(chain, "an overlay"))
        findings += guards.chain_access(chain, guards.access_roots(base, new, extra=roots), allow)
        mode = guards.new_file_mode(chain)
        # A VM writing the base would change the overlay's content under it.
        _add(findings, guards.not_in_use(base, "base", writers_only=True))
        if size is not None and size < img.virtual_size:
            findings.append(
                refuse(
                    "smaller-than-base",
                    f"size {human_size(size)} is smaller than the base's "
                    f"{human_size(img.virtual_size)}: the guest would lose the end of its disk",
                )
            )
        if name and not absolute and name.startswith(".."):
            findings.append(
                info("relative-backing", f"backing stored as {name!r}: move both files together")
            )
    vsize = size if size is not None else (img.virtual_size if img else 0)
    changes = [
        f"creates {new} (mode {mode:04o} at most): a qcow2 overlay of {human_size(vsize)} that "
        f"stores backing {name!r} (format {fmt}); it starts empty and shows the base's content",
        f"{base} is not modified, but from now on it must stay unchanged (it has an overlay)",
    ]
    name = name or base
    argv = qemuimg.create_overlay_argv(name, fmt, new, size)
    return OverlayPlan(
        "overlay", f"overlay: new image {new} on {base}", [argv], changes, findings,
        allow=tuple(allow), base=base, new=new, size=size, absolute=absolute,
        roots=tuple(roots), mode=mode,
    )  # fmt: skip


# --------------------------------------------------------------------------- rebase


@dataclass
class RebasePlan(Plan):
    image: str = ""
    new_backing: str | None = None
    unsafe: bool = False
    absolute: bool = False
    #: Exact name/format to store (undo restores the old name literally).
    literal: tuple[str, str | None] | None = None
    old: tuple[str | None, str | None] = (None, None)
    undo_of: str | None = None
    roots: tuple[str, ...] = ()

    def replan(self) -> Plan:
        return plan_rebase(
            self.image, self.new_backing, unsafe=self.unsafe, absolute=self.absolute,
            literal=self.literal, undo_of=self.undo_of, roots=self.roots, allow=self.allow,
            force=self.force,
        )  # fmt: skip

    def _execute(self, progress: ProgressFn, cancel: CancelToken) -> OpResult:
        argv = self.commands[0]
        new_name = argv[argv.index("-b") + 1]
        new_fmt = argv[argv.index("-F") + 1] if "-F" in argv else None
        late = ""
        try:  # opened before the image is touched: a rebase that cannot be undone never runs
            journal_fd = journal.open_for_append()
        except journal.JournalError as exc:
            raise GuardRefused([refuse("journal", f"{exc}; nothing was changed")]) from None
        try:
            qemuimg.run(argv, progress=progress, cancel=cancel)
        except CancelledError:
            # qemu-img rewrites the pointer last: read it back, a late cancel may find it done.
            if self._stored_backing() != (new_name or None, new_fmt if new_name else None):
                os.close(journal_fd)
                raise CancelledError(
                    f"rebase cancelled: {self.image} still backs onto {self.old[0]!r} and shows "
                    "the same content as before (data already copied into it is identical to "
                    "what the backing file supplied)"
                ) from None
            late = " (the cancel came too late: the rebase had finished)"
        except BaseException:
            os.close(journal_fd)
            raise
        state = journal.Fingerprint.of(self.image)
        entry = journal.RebaseEntry(
            id=journal.new_id(), time=time.time(), image=self.image,
            old_backing=self.old[0], old_format=self.old[1],
            new_backing=new_name or None, new_format=new_fmt,
            mode="unsafe" if self.unsafe else "safe", undo_of=self.undo_of,
            fingerprint=asdict(state) if state else None,
        )  # fmt: skip
        journal.record(entry, journal_fd)
        target = repr(new_name) if new_name else "nothing (now independent)"
        return OpResult(
            "rebase",
            f"{self.image} now backs onto {target}; was {self.old[0]!r}{late}",
            [self.image],
            {"journal": entry.id},
            cli_hint=f"undo: imagegui rebase --undo {self.image}",
        )

    def _stored_backing(self) -> tuple[str | None, str | None] | None:
        from imagegui.core.read.probe import ProbeError, probe_image

        try:
            img = probe_image(self.image)
        except (ProbeError, OSError):
            return None
        return (img.backing_file or None, img.backing_format or None)


def plan_rebase(
    image: str,
    new_backing: str | None,
    unsafe: bool = False,
    absolute: bool = False,
    literal: tuple[str, str | None] | None = None,
    undo_of: str | None = None,
    roots: tuple[str, ...] = (),
    allow: tuple[str, ...] = (),
    force: bool = False,
) -> RebasePlan:
    """``new_backing`` None or "" makes the image independent (safe mode only). ``force`` lifts
    the overridable refusals (an image its owner made read-only)."""
    image = _abs(image)
    findings: list[Finding] = []
    img = _probe(image, "image", findings)
    new_abs = _abs(new_backing) if new_backing else None
    if literal is not None:  # undo: the stored name, resolved from the image's directory
        from imagegui.core.read.backing import resolve

        new_abs = resolve(image, literal[0]) if literal[0] else None
    name, fmt = "", None
    if img:
        _add(findings, guards.rebaseable(img), guards.writable(image))
        _add(findings, guards.not_in_use(image, "image"))
    if new_abs and literal and unsafe and not os.path.lexists(new_abs):
        # Undoing a repair: the pointer goes back to a file that is (still) missing. qemu-img
        # rebase -u never opens it, and putting back exactly what was there loses nothing.
        name, fmt = literal
        findings.append(
            warn(
                "restore-missing",
                f"{new_abs} does not exist: after the undo the image is missing its backing file "
                "again, exactly as before the rebase",
            )
        )
    elif new_abs:
        new_img = _probe(new_abs, "new backing file", findings)
        if new_img:
            if literal:
                name = literal[0]
            else:
                stored = backing_name(image, new_abs, absolute)
                _add(findings, _name_finding(image, stored, new_abs))
                name = stored or new_abs
            fmt = (literal[1] if literal and literal[1] else None) or new_img.format
            if fmt != new_img.format:
                findings.append(
                    warn("format", f"restoring recorded format {fmt}; the file is {new_img.format}")
                )
            new_chain = guards.follow_chain(new_abs)
            findings += guards.chain_access(
                new_chain, guards.access_roots(image, new_abs, extra=roots), allow
            )
            _add(findings, guards.not_in_use(new_abs, "new backing file", writers_only=True))
            if img and img.file_id in new_chain.file_ids():
                findings.append(
                    refuse("loop", f"{new_abs} is {image} or backs onto it: that would be a loop")
                )
            elif not unsafe:
                _add(findings, guards.chain_problem(new_chain, "a safe rebase"))
            if img and new_img.virtual_size < img.virtual_size and unsafe:
                findings.append(
                    warn(
                        "size",
                        f"{new_abs} ({human_size(new_img.virtual_size)}) is smaller than "
                        f"{image} ({human_size(img.virtual_size)}): not the same disk?",
                    )
                )
    elif unsafe:
        findings.append(
            refuse(
                "unsafe-detach",
                "an unsafe rebase onto nothing drops every byte the backing file supplied; "
                "use a safe rebase to make the image independent",
            )
        )
    old_name = img.backing_file if img else None
    old_fmt = img.backing_format if img else None
    old_path = img.backing_path if img else None
    if img and not unsafe and img.backing_file:
        old_chain = guards.follow_chain(image)
        _add(findings, guards.chain_problem(old_chain, "a safe rebase"))
        findings += guards.chain_access(old_chain, guards.access_roots(image, extra=roots), allow)
    if img and unsafe and old_path and new_abs and os.path.exists(old_path):
        if guards.same_file(old_path, new_abs):
            findings.append(info("same-file", "same file: only the stored name/format change"))
        else:
            findings.append(
                warn(
                    "old-exists",
                    f"the current backing file {old_path} still exists; an unsafe rebase makes "
                    f"the guest see {new_abs}'s data instead, which is only right if that is an "
                    "identical copy (use a safe rebase otherwise)",
                )
            )
    argv = qemuimg.rebase_argv(image, img.format if img else "?", name, fmt, unsafe)
    if unsafe:
        changes = [
            f"{image}: only the backing pointer is rewritten, {old_name!r} ({old_fmt}) -> "
            f"{name!r} ({fmt}); no data is copied"
        ]
    elif name:
        changes = [
            f"{image}: backing {old_name!r} ({old_fmt}) -> {name!r} ({fmt}); data that differs "
            "between the two is copied into it, so the guest sees exactly the same bytes "
            "(the image may grow)"
        ]
    else:
        changes = [
            f"{image}: everything its backing chain supplies is copied in and the backing "
            f"pointer {old_name!r} removed; it becomes independent and grows accordingly"
        ]
    changes.append(f"the old pointer is recorded in {journal.journal_path()}, so it can be undone")
    if (why := journal.writable_problem()) is not None:
        findings.append(refuse("journal", why))
    mode = "unsafe" if unsafe else "safe"
    return RebasePlan(
        "rebase", f"rebase ({mode}): {image} onto {name or 'nothing'}", [argv], changes, findings,
        force=force, allow=tuple(allow), image=image, new_backing=new_backing, unsafe=unsafe,
        absolute=absolute, literal=literal, old=(old_name, old_fmt), undo_of=undo_of,
        roots=tuple(roots),
    )  # fmt: skip


def plan_undo_rebase(
    image: str, roots: tuple[str, ...] = (), allow: tuple[str, ...] = ()
) -> RebasePlan:
    """Restores the backing name and format recorded by the last rebase of ``image`` - only on
    the very file that rebase left, unchanged since, and only when the guest keeps its data."""
    notes: list[str] = []
    entry = journal.last_undoable(image, notes)
    if entry is None:
        plan = RebasePlan("rebase", f"undo rebase of {image}", image=_abs(image))
        plan.findings.append(
            refuse("no-journal", f"the journal ({journal.journal_path()}) has no rebase of {image}")
        )
    elif not entry.old_backing:
        # It was independent: a safe rebase onto nothing restores that without loss.
        plan = plan_rebase(image, None, unsafe=False, undo_of=entry.id, roots=roots, allow=allow)
    else:
        plan = plan_rebase(
            image, entry.old_backing, unsafe=entry.mode == "unsafe",
            literal=(entry.old_backing, entry.old_format), undo_of=entry.id, roots=roots,
            allow=allow,
        )  # fmt: skip
    if entry is not None:
        _add(plan.findings, _undo_unverified(plan.image, entry))
        if entry.mode == "unsafe" and entry.old_backing:
            _add(plan.findings, _undo_changes_guest_view(plan.image, entry))
        if any(f.code == "format" for f in plan.findings):
            # Unlike a missing file (qemu refuses to open it), a wrong format opens fine and the
            # guest silently reads other bytes.
            plan.findings.append(
                refuse(
                    "guest-data",
                    f"undoing would record the backing format {entry.old_format} again, which is "
                    "not the file's real format: the guest would silently read the wrong data",
                )
            )
    plan.findings.extend(warn("journal-line", n) for n in notes)
    return plan


def _undo_unverified(image: str, entry: journal.RebaseEntry) -> Finding | None:
    """Refuses unless ``image`` is exactly what the journal's last entry about it left."""
    last = journal.latest(image) or entry
    target = repr(entry.old_backing) if entry.old_backing else "nothing"
    redo = f"rebase it onto {target} explicitly instead (a safe rebase keeps the guest's data)"
    recorded = last.state
    if recorded is None:
        # Entries from before fingerprints: the path or inode may now be a different image
        # (inode reuse re-pointed an unrelated image), and nothing can tell. Refuse, not guess.
        return refuse(
            "unverifiable",
            f"the journal entry for {image} predates image fingerprints, so it cannot be "
            f"verified that this is the image rebased then, unchanged since; {redo}",
        )
    changed = recorded.differences(journal.Fingerprint.of(image))
    if not changed:
        return None
    return refuse(
        "changed-since",
        f"{image} is not as the journalled rebase left it: {'; '.join(changed)}. Undoing now "
        f"could re-point the wrong image or change what its guest reads; {redo}",
    )


#: (old backing state, current backing state) -> do they show the same content (qemu-img compare)
_same_content_cache: dict[tuple[object, object], bool] = {}


def _undo_changes_guest_view(image: str, entry: journal.RebaseEntry) -> Finding | None:
    """An unsafe undo swaps the backing file under the overlay's own data: refused unless the
    old backing shows the guest exactly what the current one does (or is gone: that is warned as
    ``restore-missing``)."""
    from imagegui.core.read.backing import resolve
    from imagegui.core.read.probe import ProbeError, probe_image

    old_path = resolve(image, entry.old_backing or "")
    try:
        img = probe_image(image)
    except ProbeError:
        return None  # already refused as unreadable
    cur_path = img.backing_path
    if not old_path or not cur_path or not os.path.exists(old_path):
        return None
    if not os.path.exists(cur_path) or guards.same_file(old_path, cur_path):
        return None
    try:
        old_img, cur_img = probe_image(old_path), probe_image(cur_path)
    except ProbeError:
        return None  # plan_rebase refuses an unreadable old backing
    key = (journal.Fingerprint.of(old_path), journal.Fingerprint.of(cur_path))
    same = _same_content_cache.get(key)
    if same is None:
        argv = qemuimg.compare_argv(old_path, old_img.format, cur_path, cur_img.format)
        try:
            same = qemuimg.run(argv, ok_codes=(0, 1)).returncode == 0
        except qemuimg.QemuImgError as exc:
            return refuse("compare", f"cannot compare {old_path} with {cur_path}: {exc}")
        _same_content_cache[key] = same
    if same:
        return info("same-content", f"{old_path} shows the same content as {cur_path}")
    return refuse(
        "guest-data",
        f"undoing would change what the guest of {image} reads: its old backing file "
        f"{old_path} does not hold the same data as {cur_path}, which it depends on now",
    )


# --------------------------------------------------------------------------- commit


@dataclass
class CommitPlan(Plan):
    image: str = ""
    base: str = ""
    roots: tuple[str, ...] = ()

    def replan(self) -> Plan:
        return plan_commit(self.image, force=self.force, roots=self.roots, allow=self.allow)

    def _execute(self, progress: ProgressFn, cancel: CancelToken) -> OpResult:
        before = _stamp(self.base)
        seen = [0.0]

        def track(fraction: float) -> None:
            seen[0] = max(seen[0], fraction)
            progress(fraction)

        try:
            qemuimg.run(self.commands[0], progress=track, cancel=cancel)
        except CancelledError:
            raise CancelledError(self._cancelled_state(before, seen[0])) from None
        return OpResult(
            "commit",
            f"committed {self.image} into {self.base}; {self.image} is now empty and shows the "
            "same content through its backing file",
            [self.base, self.image],
        )

    def _cancelled_state(self, base_before: tuple[int, int] | None, copied: float) -> str:
        """What a stopped commit left, read back from the files (qemu-img copies the data
        into the base first, then empties the overlay: a late cancel can land in either)."""
        base_written = _stamp(self.base) != base_before
        fmt = self.commands[0][self.commands[0].index("-f") + 1]
        try:
            own: int | None = qemuimg.own_data(self.image, fmt)
        except qemuimg.QemuImgError:
            own = None
        if not base_written:
            return (
                f"commit cancelled before anything was written: {self.image} and {self.base} "
                "are unchanged"
            )
        if own == 0:
            return (
                f"commit cancelled too late: it had finished. {self.base} holds all of "
                f"{self.image}'s data and {self.image} was emptied; it shows the same content "
                "through its backing file"
            )
        if copied >= 1.0:
            return (
                f"commit cancelled after the copy: {self.base} holds all of {self.image}'s data "
                f"and shows what it showed; {self.image} may be partly emptied but still shows "
                "the same content (run the commit again to finish emptying it)"
            )
        state = "still holds all its data and shows its full content"
        if own is None:
            state = "could not be read back after the cancel; check it before use"
        return (
            f"commit cancelled during the copy: {self.image} {state}; {self.base} "
            "already holds part of its data, so on its own it no longer shows its original "
            "content (run the commit again to finish)"
        )


def _stamp(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns)


def plan_commit(
    image: str, force: bool = False, roots: tuple[str, ...] = (), allow: tuple[str, ...] = ()
) -> CommitPlan:
    image = _abs(image)
    findings: list[Finding] = []
    img = _probe(image, "image", findings)
    base = ""
    if img and not img.backing_file:
        findings.append(refuse("no-backing", f"{image} has no backing file: nothing to commit"))
    elif img and img.backing_protocol:
        findings.append(
            refuse("protocol-backing", f"{image} backs onto {img.backing_file!r}, not a file")
        )
    elif img and img.backing_path:
        base = img.backing_path
        if not os.path.lexists(base):
            _add(findings, guards.chain_problem(guards.follow_chain(image), "commit"))
        else:
            _add(findings, guards.not_in_use(image, "image"))
            _add(findings, guards.not_in_use(base, "backing file"))
            _add(findings, guards.writable(image), guards.writable(base, "backing file"))
            chain = guards.follow_chain(image)
            findings += guards.chain_access(chain, guards.access_roots(image, extra=roots), allow)
            base_img = _probe(base, "backing file", findings)
            if base_img:
                _add(findings, guards.backing_format_recorded(img, base_img))
            searched = guards.search_roots(base, image, extra=roots)
            others = [
                p for p in guards.overlays_of(base, searched) if not guards.same_file(p, image)
            ]
            findings.append(
                info(
                    "searched",
                    f"looked for other overlays of {base} under {', '.join(searched)}; clones "
                    "kept anywhere else are not seen",
                    fix_cli="add --root DIR if clones live elsewhere too",
                )
            )
            if others:
                findings.append(
                    refuse(
                        "shared-base",
                        f"{base} is also the backing file of {', '.join(others)}: committing "
                        "changes what they see and silently corrupts them. Flatten or rebase "
                        "them first, or force if they can be thrown away",
                        overridable=True,
                        paths=tuple(others),
                    )
                )
    fmt = img.format if img else "?"
    argv = qemuimg.commit_argv(image, fmt)
    changes = [
        f"{base or '(backing file)'}: receives the data stored in {image} "
        f"(~{human_size(img.actual_size) if img else '?'} on disk) and from then on shows "
        "what the overlay showed",
        f"{image}: emptied; it still backs onto the base, so it shows the same content",
    ]
    return CommitPlan(
        "commit", f"commit: {image} into {base or '?'}", [argv], changes, findings,
        force=force, allow=tuple(allow), image=image, base=base, roots=tuple(roots),
    )  # fmt: skip


# --------------------------------------------------------------------------- flatten


@dataclass
class FlattenPlan(Plan):
    image: str = ""
    out: str = ""
    partial: str = ""
    required: int = 0
    roots: tuple[str, ...] = ()
    mode: int = 0o600

    def replan(self) -> Plan:
        # The space needed was measured for the plan; the recheck reuses it (measure walks the
        # whole allocation map) and still checks the free space now.
        return plan_flatten(
            self.image, self.out, partial=self.partial, required=self.required,
            roots=self.roots, allow=self.allow,
        )  # fmt: skip

    def _execute(self, progress: ProgressFn, cancel: CancelToken) -> OpResult:
        state = f"no file was created and {self.image} and its chain are unchanged"
        ident = claim_new_file(self.partial, self.mode)
        try:
            qemuimg.run(self.commands[-1], progress=progress, cancel=cancel)
            still_ours(self.partial, ident)
            link_no_replace(self.partial, self.out)
        except CancelledError:
            raise CancelledError(f"flatten cancelled: {state}") from None
        except GuardRefused:
            raise
        except qemuimg.QemuImgError as exc:
            raise type(exc)(f"{exc} ({state})", **_error_kw(exc)) from exc
        finally:
            release_new_file(self.partial, ident)
        return OpResult(
            "flatten",
            f"wrote {self.out}: an independent qcow2 with {self.image}'s full content",
            [self.out],
        )


def _error_kw(exc: qemuimg.QemuImgError) -> dict[str, Any]:
    kw: dict[str, Any] = {"argv": exc.argv, "returncode": exc.returncode, "stderr": exc.stderr}
    if isinstance(exc, qemuimg.ImageInUseError):
        kw["path"] = exc.path
    if isinstance(exc, qemuimg.MissingBackingError):
        kw["backing"] = exc.backing
    return kw


def link_no_replace(src: str, dst: str) -> None:
    """Gives ``src`` the name ``dst`` unless ``dst`` exists - atomically where the file system
    has hard links, so a file that appeared during a long convert is still never replaced."""
    try:
        os.link(src, dst)
    except FileExistsError:
        raise GuardRefused(
            [refuse("target-exists", f"{dst} appeared while writing; it was not replaced")]
        ) from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        if os.path.lexists(dst):  # no hard links here (vfat, some FUSE): check, then rename
            raise GuardRefused(
                [refuse("target-exists", f"{dst} appeared while writing; it was not replaced")]
            ) from None
        os.rename(src, dst)
        return
    os.unlink(src)


def plan_flatten(
    image: str,
    out: str,
    partial: str | None = None,
    required: int | None = None,
    roots: tuple[str, ...] = (),
    allow: tuple[str, ...] = (),
) -> FlattenPlan:
    image, out = _abs(image), _abs(out)
    mode = 0o600
    partial = partial or os.path.join(
        os.path.dirname(out), f".{os.path.basename(out)}.{secrets.token_hex(4)}.partial"
    )
    findings: list[Finding] = []
    _add(findings, guards.target_free(out, "output"))
    if os.path.lexists(partial):
        findings.append(refuse("target-exists", f"temporary file {partial} already exists"))
    img = _probe(image, "image", findings)
    fmt = img.format if img else "?"
    known, required = required, 0
    commands = [qemuimg.measure_argv(image, fmt), qemuimg.convert_argv(image, fmt, partial)]
    if img:
        chain = guards.follow_chain(image)
        problem = guards.chain_problem(chain, "flatten")
        _add(findings, problem)
        access = guards.chain_access(chain, guards.access_roots(image, extra=roots), allow)
        findings += access
        problem = problem or next((f for f in access if f.level == "refuse"), None)
        mode = guards.new_file_mode(chain)
        for member in chain.images:
            # Reading needs the data to hold still: refuse while a VM writes any layer.
            _add(findings, guards.not_in_use(member.path, "chain member", writers_only=True))
        if problem is None and not any(f.code == "in-use" for f in findings):
            try:
                required = known or qemuimg.measure(image, fmt).required
            except qemuimg.QemuImgError as exc:
                findings.append(refuse("measure", str(exc)))
            if required and os.path.isdir(os.path.dirname(out)):
                _add(findings, guards.free_space(os.path.dirname(out), required))
    changes = [
        f"writes {partial} (~{human_size(required)}, mode {mode:04o} at most), then renames it "
        f"to {out}: an independent "
        f"qcow2 with the full content of {image}"
        + (" and its backing chain" if img and img.backing_file else ""),
        f"{image} and its backing files are only read",
    ]
    return FlattenPlan(
        "flatten", f"flatten: {image} into {out}", commands, changes, findings,
        allow=tuple(allow), image=image, out=out, partial=partial, required=required,
        roots=tuple(roots), mode=mode,
    )  # fmt: skip
