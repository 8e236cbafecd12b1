"""resize: change an image's virtual size (the disk size its guest sees) with ``qemu-img resize``.

Growing is the everyday case; the guest then still has to grow its partitions and file systems.
Shrinking cuts off the end of the disk, so it needs to be asked for (qemu-img's own ``--shrink``)
and is said to need the guest's partitions shrunk first. A base with overlays is refused: each
overlay keeps its own virtual size, so growing the base gives their guests nothing, and shrinking
it cuts off data they read (see ``_base_finding``).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from imagegui.core.jobs import CancelToken, ProgressFn
from imagegui.core.ops import guards, journal
from imagegui.core.ops.newimage import size_findings
from imagegui.core.ops.plan import (
    Finding,
    OpResult,
    Plan,
    add_findings,
    info,
    probe_or_refuse,
    refuse,
    warn,
)
from imagegui.core.qemu import qemuimg
from imagegui.core.read.backing import canonical
from imagegui.core.read.model import ImageInfo
from imagegui.core.units import human_size

if TYPE_CHECKING:
    from imagegui.core.virt.inventory import DomainSource

#: Formats qemu-img can resize (qed only grows); vmdk, vhdx, vpc and qcow are refused by qemu.
RESIZABLE = ("qcow2", "raw", "qed")


@dataclass(kw_only=True)
class ResizePlan(Plan[OpResult]):
    op: ClassVar[str] = "resize"
    searched_for: ClassVar[str] = "overlays"

    image: str
    #: The size asked for: bytes, or a change of the current size when ``relative``.
    size: int
    relative: bool = False
    shrink: bool = False
    roots: tuple[str, ...] = ()
    #: The virtual size before and after, as planned.
    old_size: int = 0
    new_size: int = 0

    def replan(self) -> ResizePlan:
        return plan_resize(
            self.image,
            self.size,
            relative=self.relative,
            shrink=self.shrink,
            force=self.force,
            roots=self.roots,
            allow=self.allow,
            qemu_img=self.qemu_img,
            domains=self.domains,
        )

    def _execute(self, progress: ProgressFn, cancel: CancelToken) -> OpResult:
        # qemu-img resize changes a few metadata clusters (a raw file is truncated): quick,
        # all or nothing, so it is not cancelled midway.
        qemuimg.run(self.commands[0], qemu_img=self.qemu_img)
        grew = self.new_size > self.old_size
        note = hint = ""
        if grew:
            note = journal.journal_change(
                journal.RESIZE_OP, self.image, old_size=self.old_size, new_size=self.new_size
            )
            hint = (
                "" if note else f"imagegui resize --undo {shlex.quote(self.image)} shrinks it back"
            )
        progress(1.0)
        after = (
            "grow its partitions and file systems inside the guest to use the new space"
            if grew
            else "the guest's disk now ends there"
        )
        return OpResult(
            message=f"resized {self.image} from {human_size(self.old_size)} to "
            f"{human_size(self.new_size)} ({self.new_size:,} bytes); {after}{note}",
            changed=[self.image],
            cli_hint=hint,
        )


def plan_resize(
    image: str,
    size: int,
    relative: bool = False,
    shrink: bool = False,
    force: bool = False,
    roots: tuple[str, ...] = (),
    allow: tuple[str, ...] = (),
    qemu_img: str = "",
    domains: DomainSource | None = None,
) -> ResizePlan:
    """``size``: the new virtual size in bytes, or with ``relative`` the change (``+N``, ``-N``).
    ``shrink`` allows a smaller size; ``force`` lifts the overridable refusals (growing a base
    with overlays, a disk a shut-off libvirt VM uses, a read-only image)."""
    image = canonical(image)
    index, findings = guards.read_domains(domains)
    img = probe_or_refuse(image, "image", findings)
    old = img.virtual_size if img else 0
    new = old + size if relative else size
    searched: list[str] = []
    fmt = img.format if img else "?"
    if img:
        findings += _format_findings(img, new, shrink)
        findings += size_findings(new)
        chain = guards.follow_chain(image)
        # qemu-img resize opens the image with its backing chain.
        add_findings(findings, guards.chain_problem(chain, "a resize"))
        findings += guards.chain_access(chain, guards.access_roots(image, extra=roots), allow)
        findings += guards.vm_guards(image, "image", index, "resizing it changes {vm} disk")
        add_findings(findings, guards.writable(image))
        searched = guards.nearby_roots(image, extra=roots)
        overlays = guards.find_overlays(image, searched)
        add_findings(findings, _base_finding(image, overlays, new, old))
        findings.append(
            info(
                "searched",
                f"looked for overlays of {image} under {', '.join(searched)}; overlays kept "
                "anywhere else are not seen",
                fix_cli="add --root DIR if overlays live elsewhere too",
            )
        )
    if img and new > old:
        findings.append(
            info(
                "undoable",
                "Undo shrinks the disk back, as long as nothing has been written past the old "
                "size by then",
                fix_cli=f"imagegui resize --undo {shlex.quote(image)}",
            )
        )
    elif img and new < old:
        findings.append(
            info("not-undoable", "shrinking cannot be undone: the end of the disk is discarded")
        )
    argv = qemuimg.resize_argv(image, fmt, new, shrink=new < old)
    if new >= old:
        what = f"grows to {human_size(new)} ({new:,} bytes); the new space reads as zeros"
    else:
        what = (
            f"shrinks to {human_size(new)} ({new:,} bytes): the last {human_size(old - new)} "
            "of the disk and whatever they hold are removed"
        )
    return ResizePlan(
        title=f"resize: {image} from {human_size(old)} to {human_size(new)}",
        commands=[argv],
        changes=[f"{image}: {what}"],
        findings=findings,
        force=force,
        allow=tuple(allow),
        qemu_img=qemu_img,
        image=image,
        size=size,
        relative=relative,
        shrink=shrink,
        roots=tuple(roots),
        old_size=old,
        new_size=new,
        searched=tuple(searched),
        domains=domains,
    )


def _format_findings(img: ImageInfo, new: int, shrink: bool) -> list[Finding]:
    """What the format (and qemu) allow: the formats qemu resizes, shrinking only when asked
    (and never a qed), qcow2 v2 with internal snapshots never, and what a shrink costs."""
    old, fmt = img.virtual_size, img.format
    if fmt not in RESIZABLE:
        return [
            refuse(
                "format-cannot-resize",
                f"{img.path} is a {fmt} image, which qemu cannot resize: convert it to qcow2 "
                "(or raw) and resize the copy",
                fix_cli=f"imagegui convert {img.path} NEW.qcow2",
            )
        ]
    if new == old:
        return [refuse("same-size", f"{img.path} already is {human_size(old)} ({old:,} bytes)")]
    snapshots = guards.snapshot_count(img)
    found: list[Finding] = []
    if snapshots and img.flags.get("version") == 2:
        found.append(
            refuse(
                "snapshots-v2",
                f"{img.path} is a qcow2 version 2 (compat 0.10) image with {snapshots} internal "
                "snapshot(s): qemu cannot resize it. Delete the snapshots, or convert it to a "
                "current qcow2, first",
            )
        )
    elif snapshots:
        found.append(
            info(
                "snapshots-keep-size",
                f"{img.path} has {snapshots} internal snapshot(s): each keeps the size and data "
                "it was taken with, and reverting to one brings its size back",
            )
        )
    if new > old:
        if fmt == "qcow2" and img.flags.get("version") == 2 and img.backing_path:
            backing = _size_of(img.backing_path)
            if backing is None or backing > old:
                found.append(
                    refuse(
                        "v2-overlay-grow",
                        f"{img.path} is a qcow2 version 2 (compat 0.10) overlay whose backing "
                        "file is larger than it: the new space would have to be marked as "
                        "zeros, which that version cannot do (qemu refuses). Convert it to a "
                        "current qcow2 first",
                    )
                )
        return found
    if fmt == "qed":
        return [*found, refuse("qed-shrink", f"qemu cannot shrink a qed image ({img.path})")]
    cut = f"the last {human_size(old - new)} of the disk"
    if not shrink:
        found.append(
            refuse(
                "shrink",
                f"{human_size(new)} is smaller than {img.path}'s {human_size(old)}: shrinking "
                f"removes {cut} and whatever the guest keeps there. Shrink the guest's "
                "partitions and file systems first (inside the guest), then ask for the "
                "shrink explicitly",
                fix_cli="add --shrink to the same command",
            )
        )
    else:
        found.append(
            warn(
                "shrink",
                f"shrinking removes {cut}: the guest's partitions and file systems must already "
                "have been shrunk to fit (inside the guest), or their end is lost",
            )
        )
    return found


def _size_of(path: str) -> int | None:
    from imagegui.core.read.probe import ProbeError, probe_image

    try:
        return probe_image(path).virtual_size
    except ProbeError:
        return None


def _base_finding(image: str, overlays: list[str], new: int, old: int) -> Finding | None:
    """A base's overlays keep their own virtual size and read every cluster they did not write
    from the base: shrinking cuts that data off (refused outright); growing is harmless to
    what they show but gives them nothing, and is safe only while the base then stays
    unwritten (overridable)."""
    if not overlays:
        return None
    names = ", ".join(overlays)
    if new < old:
        return refuse(
            "base-has-overlays",
            f"{image} is the backing file of {names}: shrinking it cuts off data those overlays "
            "read from it, so their guests would see part of their disks vanish",
            paths=tuple(overlays),
        )
    return refuse(
        "base-has-overlays",
        f"{image} is the backing file of {names}. Growing a base with overlays is only safe in "
        "some cases: each overlay keeps its own virtual size, so the guest of an overlay does "
        "not see the new space until that overlay is resized too (resizing the overlays alone "
        "is usually what is wanted); and the base must stay unwritten afterwards, since an "
        "overlay larger than the base's old size would show whatever is then written into "
        "the new space. Resize the overlays instead, or override this check if the base is "
        "used on its own",
        overridable=True,
        fix_cli="add --force to the same command",
        paths=tuple(overlays),
    )
