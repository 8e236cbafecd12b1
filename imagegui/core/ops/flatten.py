"""flatten: copy an image's whole chain into one independent qcow2, through a temporary file
beside the output that is renamed (never replacing a file) when done; free space checked first."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from imagegui.core.jobs import CancelToken, ProgressFn
from imagegui.core.ops import guards
from imagegui.core.ops.newfile import partial_name, write_via_partial
from imagegui.core.ops.plan import (
    OpResult,
    Plan,
    add_findings,
    probe_or_refuse,
    refuse,
)
from imagegui.core.qemu import qemuimg
from imagegui.core.read.backing import canonical
from imagegui.core.units import human_size

if TYPE_CHECKING:
    from imagegui.core.virt.inventory import DomainSource


@dataclass(kw_only=True)
class FlattenPlan(Plan[OpResult]):
    op: ClassVar[str] = "flatten"

    image: str
    out: str
    #: The temporary file written first, renamed to ``out`` when complete.
    partial: str
    #: Bytes the output needs (``qemu-img measure``); 0 when not measured (refused).
    required: int = 0
    roots: tuple[str, ...] = ()
    mode: int = 0o600

    def replan(self) -> FlattenPlan:
        # The space needed was measured for the plan; the recheck reuses it (measure walks the
        # whole allocation map) and still checks the free space now.
        return plan_flatten(
            self.image,
            self.out,
            partial=self.partial,
            required=self.required,
            roots=self.roots,
            allow=self.allow,
            qemu_img=self.qemu_img,
            domains=self.domains,
        )

    def _execute(self, progress: ProgressFn, cancel: CancelToken) -> OpResult:
        write_via_partial(
            self.commands[-1], self.partial, self.out, self.mode, progress, cancel,
            self.qemu_img, op="flatten",
            state=f"no file was created and {self.image} and its chain are unchanged",
        )  # fmt: skip
        return OpResult(
            message=f"wrote {self.out}: an independent qcow2 with {self.image}'s full content",
            changed=[self.out],
        )


def plan_flatten(
    image: str,
    out: str,
    partial: str | None = None,
    required: int | None = None,
    roots: tuple[str, ...] = (),
    allow: tuple[str, ...] = (),
    qemu_img: str = "",
    domains: DomainSource | None = None,
) -> FlattenPlan:
    """``domains``: where to ask libvirt which VMs use the image; they are only named, since a
    flatten reads the chain and creates a new file (it never replaces one)."""
    image, out = canonical(image), canonical(out)
    mode = 0o600
    partial = partial or partial_name(out)
    index, findings = guards.read_domains(domains)
    add_findings(findings, guards.target_free(out, "output"))
    if os.path.lexists(partial):
        findings.append(refuse("target-exists", f"temporary file {partial} already exists"))
    img = probe_or_refuse(image, "image", findings)
    fmt = img.format if img else "?"
    known, required = required, 0
    commands = [qemuimg.measure_argv(image, fmt), qemuimg.convert_argv(image, fmt, partial)]
    if img:
        chain = guards.follow_chain(image)
        problem = guards.chain_problem(chain, "flatten")
        add_findings(findings, problem)
        access = guards.chain_access(chain, guards.access_roots(image, extra=roots), allow)
        findings += access
        problem = problem or next((f for f in access if f.refuses), None)
        mode = guards.new_file_mode(chain)
        for member in chain.images:
            # Reading needs the data to hold still: refuse while a VM writes any layer.
            add_findings(
                findings,
                guards.not_in_use(member.path, "chain member", writers_only=True, index=index),
                guards.snapshots_not_carried(member, "flatten"),
            )
        add_findings(
            findings,
            guards.domain_note(
                image, "image", index, "; the flatten only reads it and writes a new file"
            ),
        )
        if problem is None and not any(f.code == "in-use" for f in findings):
            try:
                required = known or qemuimg.measure(image, fmt, qemu_img=qemu_img).required
            except qemuimg.QemuImgError as exc:
                findings.append(refuse("measure", str(exc)))
            if required and os.path.isdir(os.path.dirname(out)):
                add_findings(findings, guards.free_space(os.path.dirname(out), required))
    changes = [
        f"writes {partial} (~{human_size(required)}, mode {mode:04o} at most), then renames it "
        f"to {out}: an independent "
        f"qcow2 with the full content of {image}"
        + (" and its backing chain" if img and img.backing_file else ""),
        f"{image} and its backing files are only read",
    ]
    return FlattenPlan(
        title=f"flatten: {image} into {out}",
        commands=commands,
        changes=changes,
        findings=findings,
        allow=tuple(allow),
        qemu_img=qemu_img,
        image=image,
        out=out,
        partial=partial,
        required=required,
        roots=tuple(roots),
        mode=mode,
        domains=domains,
    )
