"""rebase: point an image at another backing file, safely (copying what differs) or only the
pointer (``unsafe``: the repair for a moved base); every rebase is journalled, and undone from
the journal only on the very file it left, when the guest keeps its data."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from imagegui.core.jobs import CancelledError, CancelToken, ProgressFn
from imagegui.core.ops import guards, journal
from imagegui.core.ops.plan import (
    Finding,
    GuardRefused,
    OpResult,
    Plan,
    add_findings,
    backing_name,
    backing_name_finding,
    info,
    probe_or_refuse,
    refuse,
    warn,
)
from imagegui.core.qemu import qemuimg
from imagegui.core.read.backing import canonical
from imagegui.core.units import human_size

if TYPE_CHECKING:
    from imagegui.core.virt.inventory import DomainSource


@dataclass(kw_only=True)
class RebaseResult(OpResult):
    #: The journal entry that records the old pointer (``rebase --undo`` reads it).
    journal_id: str


@dataclass(kw_only=True)
class RebasePlan(Plan[RebaseResult]):
    op: ClassVar[str] = "rebase"

    image: str
    new_backing: str | None = None
    unsafe: bool = False
    absolute: bool = False
    #: Exact name/format to store (undo restores the old name literally).
    literal: tuple[str, str | None] | None = None
    old: tuple[str | None, str | None] = (None, None)
    undo_of: str | None = None
    roots: tuple[str, ...] = ()

    def replan(self) -> RebasePlan:
        return plan_rebase(
            self.image,
            self.new_backing,
            unsafe=self.unsafe,
            absolute=self.absolute,
            literal=self.literal,
            undo_of=self.undo_of,
            roots=self.roots,
            allow=self.allow,
            force=self.force,
            qemu_img=self.qemu_img,
            domains=self.domains,
        )

    def _execute(self, progress: ProgressFn, cancel: CancelToken) -> RebaseResult:
        argv = self.commands[0]
        new_name = argv[argv.index("-b") + 1]
        new_fmt = argv[argv.index("-F") + 1] if "-F" in argv else None
        late = ""
        try:  # opened before the image is touched: a rebase that cannot be undone never runs
            journal_fd = journal.open_for_append()
        except journal.JournalError as exc:
            raise GuardRefused([refuse("journal", f"{exc}; nothing was changed")]) from None
        try:
            qemuimg.run(argv, progress=progress, cancel=cancel, qemu_img=self.qemu_img)
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
        entry_id = journal.record_rewrite(
            self.image,
            self.old,
            (new_name or None, new_fmt),
            mode="unsafe" if self.unsafe else "safe",
            undo_of=self.undo_of,
            fd=journal_fd,
        )
        target = repr(new_name) if new_name else "nothing (now independent)"
        return RebaseResult(
            message=f"{self.image} now backs onto {target}; was {self.old[0]!r}{late}",
            changed=[self.image],
            journal_id=entry_id,
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
    qemu_img: str = "",
    domains: DomainSource | None = None,
) -> RebasePlan:
    """``new_backing`` None or "" makes the image independent (safe mode only). ``force`` lifts
    the overridable refusals (an image its owner made read-only, a shut-off VM's disk).
    ``domains``: where to ask libvirt which VMs use the image (None: not asked)."""
    image = canonical(image)
    index, findings = guards.read_domains(domains)
    img = probe_or_refuse(image, "image", findings)
    new_abs = canonical(new_backing) if new_backing else None
    if literal is not None:  # undo: the stored name, resolved from the image's directory
        from imagegui.core.read.backing import resolve

        new_abs = resolve(image, literal[0]) if literal[0] else None
    name, fmt = "", None
    if img:
        add_findings(findings, guards.rebaseable(img), guards.writable(image))
        if unsafe and img.backing_path and not os.path.lexists(img.backing_path):
            # Repairing a missing base: the VM cannot start as it is, the repair is what it
            # needs, so it is named but not refused (a running one still is: the lock guard).
            lock = guards.not_in_use(image, "image", index=index)
            add_findings(findings, lock)
            findings += guards.not_used_by_domain(
                image,
                "image",
                index,
                "repairing its backing pointer changes {vm} disk, which cannot start while "
                "its backing file is missing",
                stopped="warn",
                skip_running=lock is not None,
            )
        else:
            findings += guards.vm_guards(
                image, "image", index, "rebasing it changes the backing chain of {vm} disk"
            )
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
        new_img = probe_or_refuse(new_abs, "new backing file", findings)
        if new_img:
            if literal:
                name = literal[0]
            else:
                stored = backing_name(image, new_abs, absolute)
                add_findings(findings, backing_name_finding(image, stored, new_abs))
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
            add_findings(
                findings,
                guards.not_in_use(new_abs, "new backing file", writers_only=True, index=index),
                guards.domain_note(new_abs, "new backing file", index, "; it is only read"),
            )
            if img and img.file_id in new_chain.file_ids():
                findings.append(
                    refuse("loop", f"{new_abs} is {image} or backs onto it: that would be a loop")
                )
            elif not unsafe:
                add_findings(findings, guards.chain_problem(new_chain, "a safe rebase"))
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
        add_findings(findings, guards.chain_problem(old_chain, "a safe rebase"))
        findings += guards.chain_access(old_chain, guards.access_roots(image, extra=roots), allow)
    if img and not unsafe:
        add_findings(findings, guards.snapshots_not_carried(img, "rebase"))
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
        title=f"rebase ({mode}): {image} onto {name or 'nothing'}",
        commands=[argv],
        changes=changes,
        findings=findings,
        force=force,
        allow=tuple(allow),
        qemu_img=qemu_img,
        image=image,
        new_backing=new_backing,
        unsafe=unsafe,
        absolute=absolute,
        literal=literal,
        old=(old_name, old_fmt),
        undo_of=undo_of,
        roots=tuple(roots),
        domains=domains,
    )


def plan_undo_rebase(
    image: str,
    roots: tuple[str, ...] = (),
    allow: tuple[str, ...] = (),
    qemu_img: str = "",
    force: bool = False,
    domains: DomainSource | None = None,
) -> RebasePlan:
    """Restores the backing name and format recorded by the last rebase of ``image`` - only on
    the very file that rebase left, unchanged since, and only when the guest keeps its data.
    ``force`` and ``domains`` as for :func:`plan_rebase` (a shut-off VM's disk)."""
    notes: list[str] = []
    entry = journal.last_undoable(image, notes)
    if entry is None:
        plan = RebasePlan(
            title=f"undo rebase of {image}",
            image=canonical(image),
            qemu_img=qemu_img,
            domains=domains,
        )
        plan.findings.append(
            refuse("no-journal", f"the journal ({journal.journal_path()}) has no rebase of {image}")
        )
    elif not entry.old_backing:
        # It was independent: a safe rebase onto nothing restores that without loss.
        plan = plan_rebase(
            image,
            None,
            undo_of=entry.id,
            roots=roots,
            allow=allow,
            qemu_img=qemu_img,
            force=force,
            domains=domains,
        )
    else:
        plan = plan_rebase(
            image,
            entry.old_backing,
            unsafe=entry.mode == "unsafe",
            literal=(entry.old_backing, entry.old_format),
            undo_of=entry.id,
            roots=roots,
            allow=allow,
            qemu_img=qemu_img,
            force=force,
            domains=domains,
        )
    if entry is not None:
        add_findings(plan.findings, _undo_unverified(plan.image, entry))
        if entry.mode == "unsafe" and entry.old_backing:
            add_findings(plan.findings, _undo_changes_guest_view(plan.image, entry, qemu_img))
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


def _undo_changes_guest_view(
    image: str, entry: journal.RebaseEntry, qemu_img: str = ""
) -> Finding | None:
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
            same = qemuimg.run(argv, ok_codes=(0, 1), qemu_img=qemu_img).returncode == 0
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
