"""relink: store backing names relative (the tree can move or be shared, over NFS at another
path) or absolute (an overlay can move alone), without changing what any chain reads.

Each pointer is rewritten with ``qemu-img rebase -u`` to a name that leads to the very file it
leads to now (checked with the kernel's own resolution, as for ``overlay``), its recorded backing
format kept. An image that cannot be rewritten (in use, a libvirt VM's disk, read-only, a format
without a pointer, a backing file that is missing) is kept as it is and named; the others are
rewritten. Every rewrite is journalled like a rebase (``rebase --undo``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from imagegui.core.jobs import CancelToken, ProgressFn
from imagegui.core.ops import guards, journal
from imagegui.core.ops.plan import (
    Finding,
    OpResult,
    Plan,
    backing_name,
    info,
    refuse,
)
from imagegui.core.qemu import qemuimg
from imagegui.core.read.backing import canonical
from imagegui.core.read.model import ImageInfo

if TYPE_CHECKING:
    from imagegui.core.virt.inventory import DomainIndex, DomainSource

#: Refusals that keep one image as it is, not the whole plan (the others are still rewritten).
IMAGE_REFUSALS = (
    "in-use",
    "used-by-vm",
    "read-only",
    "not-writable",
    "format-cannot-rebase",
    "missing-backing",
    "backing-name",
    "unreadable",
)


@dataclass(frozen=True)
class Relink:
    """One pointer to rewrite: ``old`` -> ``new`` (the format stays ``fmt``)."""

    image: str
    image_format: str
    old: str
    old_format: str | None
    new: str
    fmt: str


@dataclass(kw_only=True)
class RelinkResult(OpResult):
    rewritten: list[str] = field(default_factory=list)
    #: The refusals that kept an image (the plan's and those found right before the rewrite).
    kept: list[Finding] = field(default_factory=list)
    #: Rewrites that failed: "path: reason".
    errors: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class RelinkPlan(Plan[RelinkResult]):
    op: ClassVar[str] = "relink"

    paths: tuple[str, ...]
    absolute: bool
    relinks: list[Relink] = field(default_factory=list)

    def blocking(self) -> list[Finding]:
        # A kept image keeps only itself; with nothing left to rewrite, the plan is refused.
        every = super().blocking()
        return [f for f in every if f.code not in IMAGE_REFUSALS] if self.relinks else every

    @property
    def kept(self) -> list[Finding]:
        return [f for f in super().blocking() if f.code in IMAGE_REFUSALS]

    def replan(self) -> RelinkPlan:
        return plan_relink(
            self.paths,
            absolute=self.absolute,
            force=self.force,
            qemu_img=self.qemu_img,
            domains=self.domains,
        )

    def _execute(self, progress: ProgressFn, cancel: CancelToken) -> RelinkResult:
        kept = list(self.kept)
        done: list[str] = []
        errors: list[str] = []
        index, _ = guards.read_domains(self.domains)
        for i, r in enumerate(self.relinks):
            if cancel.cancelled:
                kept.append(refuse("cancelled", f"{r.image}: not rewritten (cancelled)"))
                continue
            lock = guards.not_in_use(r.image, "image", index=index)  # again, right before
            if lock is not None:
                kept.append(lock)
                continue
            try:
                fd = journal.open_for_append()
            except journal.JournalError as exc:
                errors.append(f"{r.image}: {exc}")
                continue
            argv = qemuimg.rebase_argv(r.image, r.image_format, r.new, r.fmt, True)
            try:
                qemuimg.run(argv, qemu_img=self.qemu_img)
            except qemuimg.QemuImgError as exc:
                os.close(fd)
                errors.append(f"{r.image}: {exc}")
                continue
            try:
                journal.record_rewrite(r.image, (r.old, r.old_format), (r.new, r.fmt), fd=fd)
            except journal.JournalError as exc:
                errors.append(f"{r.image}: rewritten, but {exc}")
            done.append(r.image)
            progress((i + 1) / len(self.relinks))
        form = "absolute" if self.absolute else "relative"
        message = f"{len(done)} backing pointer(s) made {form}"
        if kept:
            message += f"; kept {len(kept)} as they were"
        if errors:
            message += f"; {len(errors)} failed"
        return RelinkResult(
            message=message,
            changed=done,
            rewritten=done,
            kept=kept,
            errors=errors,
            cli_hint="each is journalled: imagegui rebase --undo IMAGE" if done else "",
        )


def plan_relink(
    paths: Sequence[str],
    absolute: bool,
    force: bool = False,
    qemu_img: str = "",
    domains: DomainSource | None = None,
) -> RelinkPlan:
    """Plans storing every backing name of the images under ``paths`` (folders, scanned whole,
    or images) in the ``absolute`` or relative form. ``force`` lifts the refusals that allow
    it (an image its owner made read-only, a shut-off libvirt VM's disk)."""
    from imagegui.core.read.probe import ProbeError, probe_image
    from imagegui.core.read.scan import scan_directory

    index, findings = guards.read_domains(domains)
    images: dict[str, ImageInfo] = {}
    for p in dict.fromkeys(canonical(p) for p in paths):
        if os.path.isdir(p):
            try:
                images.update(scan_directory(p).images)
            except OSError as exc:
                findings.append(refuse("no-source", f"{p} cannot be read: {exc.strerror}"))
        elif not os.path.lexists(p):
            findings.append(refuse("no-source", f"{p} does not exist"))
        else:
            try:
                img = probe_image(p)
            except ProbeError as exc:
                findings.append(refuse("unreadable", f"{p} is not a readable image: {exc}"))
                continue
            images[img.path] = img
    relinks: list[Relink] = []
    already = 0
    for path in sorted(images):
        img = images[path]
        name = img.backing_file
        if not name or img.backing_protocol or not img.backing_path:
            continue
        if name.startswith("/") == absolute:
            already += 1
            continue
        relink, found = _relink(img, absolute, index, force)
        findings += found
        if relink is not None:
            relinks.append(relink)
    if relinks and (why := journal.writable_problem()) is not None:
        findings.append(refuse("journal", why))
    form = "absolute" if absolute else "relative"
    if already:
        findings.append(info("already", f"{already} backing pointer(s) are already {form}"))
    if not relinks and not any(f.refuses for f in findings):
        findings.append(info("nothing", f"no backing pointer needs to be made {form}"))
    commands = [qemuimg.rebase_argv(r.image, r.image_format, r.new, r.fmt, True) for r in relinks]
    changes = [
        f"{r.image}: backing pointer {r.old!r} -> {r.new!r} (the same file; {r.fmt} "
        + ("kept)" if r.old_format else "recorded)")
        for r in relinks
    ]
    if relinks:
        changes.append(
            f"each old pointer is recorded in {journal.journal_path()}, so it can be undone"
        )
    return RelinkPlan(
        title=f"make backing pointers {form}: {', '.join(paths)}",
        commands=commands,
        changes=changes,
        findings=findings,
        force=force,
        qemu_img=qemu_img,
        domains=domains,
        paths=tuple(paths),
        absolute=absolute,
        relinks=relinks,
    )


def _relink(
    img: ImageInfo, absolute: bool, index: DomainIndex | None, force: bool
) -> tuple[Relink | None, list[Finding]]:
    """The rewrite of ``img``'s pointer into the other form (None when a refusal keeps it as
    it is), and what the guards found."""
    path, base = img.path, img.backing_path or ""
    if not os.path.exists(base):
        return None, [
            refuse(
                "missing-backing",
                f"{path}: its backing file {base} is missing, so no other name for it can be "
                "checked; repair it first",
                paths=(path,),
            )
        ]
    found: list[Finding] = []
    for f in (guards.rebaseable(img), guards.writable(path, "image")):
        if f is not None:
            found.append(f)
    found += guards.vm_guards(
        path, "image", index, "rewriting its backing pointer changes {vm} disk"
    )
    new = backing_name(path, base, absolute)
    if new is None or new.startswith("/") != absolute:
        found.append(
            refuse(
                "backing-name",
                f"no {'absolute' if absolute else 'relative'} name stored in {path} would lead "
                f"qemu to {base} (the folders are linked in a way imagegui cannot express)",
                paths=(path,),
            )
        )
    if new is None or any(f.refuses and not (force and f.overridable) for f in found):
        return None, found
    fmt = img.backing_format or _format_of(base)
    return Relink(path, img.format, img.backing_file or "", img.backing_format, new, fmt), found


def _format_of(path: str) -> str:
    from imagegui.core.read.probe import ProbeError, probe_image

    try:
        return probe_image(path).format
    except ProbeError:
        return "raw"
