"""new: a blank disk image (qcow2 or raw), written under a temporary name beside the target and
renamed when complete, so a cancelled or failed creation (a fully preallocated disk takes a
while) leaves no half-made image behind; the space a preallocated image needs is checked first."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from typing import ClassVar

from imagegui.core.jobs import CancelToken, ProgressFn
from imagegui.core.ops import guards, journal
from imagegui.core.ops.newfile import partial_name, write_via_partial
from imagegui.core.ops.plan import OpResult, Plan, add_findings, info, refuse
from imagegui.core.qemu import qemuimg
from imagegui.core.read.backing import canonical
from imagegui.core.units import human_size

FORMATS = ("qcow2", "raw")
PREALLOCATIONS = ("off", "metadata", "falloc", "full")
#: What each preallocation mode means, in words for the plan (and the window).
PREALLOCATION_WORDS = {
    "off": "sparse: takes space only as the guest writes",
    "metadata": "its metadata laid out now, data space taken as the guest writes",
    "falloc": "all its space reserved now (fast, not written)",
    "full": "all its space written with zeros now (slow; nothing is left to allocate later)",
}


@dataclass(kw_only=True)
class NewImagePlan(Plan[OpResult]):
    op: ClassVar[str] = "new"

    path: str
    size: int
    format: str = "qcow2"
    preallocation: str = "off"
    #: The temporary file written first, renamed to ``path`` when complete.
    partial: str
    #: Bytes the new file takes on disk now (``qemu-img measure``); 0 when not measured.
    required: int = 0

    def replan(self) -> NewImagePlan:
        return plan_new(
            self.path,
            self.size,
            self.format,
            self.preallocation,
            partial=self.partial,
            required=self.required or None,
            qemu_img=self.qemu_img,
        )

    def _execute(self, progress: ProgressFn, cancel: CancelToken) -> OpResult:
        write_via_partial(
            self.commands[-1], self.partial, self.path, 0o600, progress, cancel, self.qemu_img,
            op=f"creation of {self.path}", state="no file was left",
        )  # fmt: skip
        note = journal.journal_change(journal.NEW_OP, self.path)
        progress(1.0)
        return OpResult(
            message=f"created {self.path}: a blank {self.format} image of "
            f"{human_size(self.size)} ({self.preallocation} preallocation){note}",
            changed=[self.path],
            cli_hint="" if note else f"imagegui new --undo {shlex.quote(self.path)} removes it",
        )


def plan_new(
    path: str,
    size: int,
    fmt: str = "qcow2",
    preallocation: str = "off",
    partial: str | None = None,
    required: int | None = None,
    qemu_img: str = "",
) -> NewImagePlan:
    """``size`` in bytes (a whole number of 512-byte sectors, as a guest sees a disk)."""
    path = canonical(path)
    partial = partial or partial_name(path)
    findings: list = []
    add_findings(findings, guards.target_free(path, "new image"))
    if os.path.lexists(partial):
        findings.append(refuse("target-exists", f"temporary file {partial} already exists"))
    if fmt not in FORMATS:
        findings.append(
            refuse("format", f"imagegui creates {' or '.join(FORMATS)} images, not {fmt}")
        )
    if preallocation not in PREALLOCATIONS:
        findings.append(refuse("preallocation", f"unknown preallocation {preallocation!r}"))
    elif fmt == "raw" and preallocation == "metadata":
        findings.append(
            refuse(
                "preallocation",
                "a raw image has no metadata to preallocate: choose off, falloc or full",
            )
        )
    findings += size_findings(size)
    measured = required or 0
    ok = not any(f.refuses for f in findings)
    if ok and required is None:
        try:
            argv = qemuimg.measure_size_argv(size, fmt, preallocation)
            measured = qemuimg.measure("", fmt, argv=argv, qemu_img=qemu_img).required
        except qemuimg.QemuImgError as exc:
            findings.append(refuse("measure", str(exc)))
    if ok and measured and os.path.isdir(os.path.dirname(path)):
        add_findings(findings, guards.free_space(os.path.dirname(path), measured))
    findings.append(
        info(
            "undoable",
            "Undo moves the new image to the Trash, as long as no image backs onto it and it "
            "is not in use",
            fix_cli=f"imagegui new --undo {shlex.quote(path)}",
        )
    )
    words = PREALLOCATION_WORDS.get(preallocation, preallocation)
    changes = [
        f"writes {partial} (mode 0600 at most; ~{human_size(measured)} on disk now), then "
        f"renames it to {path}: a blank {fmt} disk of {human_size(size)} ({size:,} bytes), "
        f"{words}",
    ]
    return NewImagePlan(
        title=f"new: {fmt} image {path} of {human_size(size)}",
        commands=[qemuimg.create_argv(partial, fmt, size, preallocation)],
        changes=changes,
        findings=findings,
        qemu_img=qemu_img,
        path=path,
        size=size,
        format=fmt,
        preallocation=preallocation,
        partial=partial,
        required=measured,
    )


def size_findings(size: int) -> list:
    """A disk size qemu and a guest accept: above zero, a whole number of 512-byte sectors."""
    if size <= 0:
        return [refuse("size", "the size must be larger than 0")]
    if size % 512:
        up = (size + 511) // 512 * 512
        return [
            refuse(
                "size",
                f"{size:,} bytes is not a whole number of 512-byte sectors (a guest sees its "
                f"disk in sectors): use {up:,} bytes",
            )
        ]
    return []
