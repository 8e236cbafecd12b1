"""commit: write an overlay's data into its backing file; refused while other overlays share
that base (it would change what they see), unless forced."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from imagegui.core.jobs import CancelledError, CancelToken, ProgressFn
from imagegui.core.ops import guards
from imagegui.core.ops.plan import (
    OpResult,
    Plan,
    add_findings,
    info,
    probe_or_refuse,
    refuse,
)
from imagegui.core.qemu import qemuimg
from imagegui.core.read.backing import canonical
from imagegui.core.units import human_size

if TYPE_CHECKING:
    from imagegui.core.virt.inventory import DomainSource


@dataclass(kw_only=True)
class CommitPlan(Plan[OpResult]):
    op: ClassVar[str] = "commit"

    image: str
    #: The backing file that receives the data ("" when the image has none).
    base: str
    roots: tuple[str, ...] = ()

    def replan(self) -> CommitPlan:
        return plan_commit(
            self.image,
            force=self.force,
            roots=self.roots,
            allow=self.allow,
            qemu_img=self.qemu_img,
            domains=self.domains,
        )

    def _execute(self, progress: ProgressFn, cancel: CancelToken) -> OpResult:
        before = _stamp(self.base)
        seen = [0.0]

        def track(fraction: float) -> None:
            seen[0] = max(seen[0], fraction)
            progress(fraction)

        try:
            qemuimg.run(self.commands[0], progress=track, cancel=cancel, qemu_img=self.qemu_img)
        except CancelledError:
            raise CancelledError(self._cancelled_state(before, seen[0])) from None
        return OpResult(
            message=f"committed {self.image} into {self.base}; {self.image} is now empty and "
            "shows the same content through its backing file",
            changed=[self.base, self.image],
        )

    def _cancelled_state(self, base_before: tuple[int, int] | None, copied: float) -> str:
        """What a stopped commit left, read back from the files (qemu-img copies the data
        into the base first, then empties the overlay: a late cancel can land in either)."""
        base_written = _stamp(self.base) != base_before
        fmt = self.commands[0][self.commands[0].index("-f") + 1]
        try:
            own: int | None = qemuimg.own_data(self.image, fmt, qemu_img=self.qemu_img)
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
    image: str,
    force: bool = False,
    roots: tuple[str, ...] = (),
    allow: tuple[str, ...] = (),
    qemu_img: str = "",
    domains: DomainSource | None = None,
) -> CommitPlan:
    """``domains``: where to ask libvirt which VMs use the two images (None: not asked)."""
    image = canonical(image)
    index, findings = guards.read_domains(domains)
    img = probe_or_refuse(image, "image", findings)
    base = ""
    searched: list[str] = []
    if img and not img.backing_file:
        findings.append(refuse("no-backing", f"{image} has no backing file: nothing to commit"))
    elif img and img.backing_protocol:
        findings.append(
            refuse("protocol-backing", f"{image} backs onto {img.backing_file!r}, not a file")
        )
    elif img and img.backing_path:
        base = img.backing_path
        if not os.path.lexists(base):
            add_findings(findings, guards.chain_problem(guards.follow_chain(image), "commit"))
        else:
            # A VM on the base (through any overlay) sees its disk change; a VM on the image
            # reads the base too, so it is named once, there.
            findings += guards.vm_guards(
                base, "base", index, "committing into it changes {vm} disk"
            )
            findings += guards.vm_guards(
                image,
                "image",
                index,
                "committing it empties it into its base, which changes {vm} disk",
                skip=index.uses_of(base) if index else (),
            )
            add_findings(findings, guards.writable(image), guards.writable(base, "backing file"))
            add_findings(findings, guards.snapshots_not_carried(img, "commit"))
            chain = guards.follow_chain(image)
            findings += guards.chain_access(chain, guards.access_roots(image, extra=roots), allow)
            base_img = probe_or_refuse(base, "backing file", findings)
            if base_img:
                add_findings(findings, guards.backing_format_recorded(img, base_img))
            # The search for the base's other overlays: over these roots only, stated below.
            searched = guards.nearby_roots(base, image, extra=roots)
            others = [
                p for p in guards.find_overlays(base, searched) if not guards.same_file(p, image)
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
        title=f"commit: {image} into {base or '?'}",
        commands=[argv],
        changes=changes,
        findings=findings,
        force=force,
        allow=tuple(allow),
        qemu_img=qemu_img,
        image=image,
        base=base,
        roots=tuple(roots),
        searched=tuple(searched),
        domains=domains,
    )
