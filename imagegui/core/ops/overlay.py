"""overlay: a new qcow2 image on a base (a linked clone), the base's real format recorded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from imagegui.core.jobs import CancelToken, ProgressFn
from imagegui.core.ops import guards
from imagegui.core.ops.newfile import claim_new_file, release_new_file, still_ours
from imagegui.core.ops.plan import (
    OpResult,
    Plan,
    add_findings,
    backing_name,
    backing_name_finding,
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
class OverlayPlan(Plan[OpResult]):
    op: ClassVar[str] = "overlay"

    base: str
    new: str
    size: int | None = None
    absolute: bool = False
    roots: tuple[str, ...] = ()
    #: Permissions of the new file (never wider than what it exposes of the base's data).
    mode: int = 0o600

    def replan(self) -> OverlayPlan:
        return plan_overlay(
            self.base,
            self.new,
            self.size,
            self.absolute,
            roots=self.roots,
            allow=self.allow,
            qemu_img=self.qemu_img,
            domains=self.domains,
        )

    def _execute(self, progress: ProgressFn, cancel: CancelToken) -> OpResult:
        ident = claim_new_file(self.new, self.mode)
        try:
            qemuimg.run(self.commands[0], cancel=cancel, qemu_img=self.qemu_img)
            still_ours(self.new, ident)
        except BaseException:
            release_new_file(self.new, ident)
            raise
        progress(1.0)
        return OpResult(message=f"created {self.new} on {self.base}", changed=[self.new])


def plan_overlay(
    base: str,
    new: str,
    size: int | None = None,
    absolute: bool = False,
    roots: tuple[str, ...] = (),
    allow: tuple[str, ...] = (),
    qemu_img: str = "",
    domains: DomainSource | None = None,
) -> OverlayPlan:
    """``roots``: directories whose files the chain may read without asking (the scanned root);
    ``allow``: files outside them the user allowed by name; ``domains``: where to ask libvirt
    which VMs use the base (only named: an overlay only reads its base)."""
    base, new = canonical(base), canonical(new)
    mode = 0o600
    index, findings = guards.read_domains(domains)
    add_findings(findings, guards.target_free(new, "new image"))
    img = probe_or_refuse(base, "base", findings)
    name = backing_name(new, base, absolute)
    fmt = img.format if img else "?"
    if img:
        add_findings(findings, backing_name_finding(new, name, base))
        chain = guards.follow_chain(base)
        add_findings(findings, guards.chain_problem(chain, "an overlay"))
        findings += guards.chain_access(chain, guards.access_roots(base, new, extra=roots), allow)
        mode = guards.new_file_mode(chain)
        # A VM writing the base would change the overlay's content under it.
        add_findings(
            findings,
            guards.not_in_use(base, "base", writers_only=True, index=index),
            guards.domain_note(base, "base", index),
        )
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
    argv = qemuimg.create_overlay_argv(name or base, fmt, new, size)
    return OverlayPlan(
        title=f"overlay: new image {new} on {base}",
        commands=[argv],
        changes=changes,
        findings=findings,
        allow=tuple(allow),
        qemu_img=qemu_img,
        base=base,
        new=new,
        size=size,
        absolute=absolute,
        roots=tuple(roots),
        mode=mode,
        domains=domains,
    )
