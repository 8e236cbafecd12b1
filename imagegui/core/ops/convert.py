"""convert: copy an image into another format (VMware vmdk, Hyper-V vhdx, Virtual PC / Azure vpc,
raw, qcow2) - importing a disk from another hypervisor or exporting one to it.

Like a flatten, it writes a temporary file beside the output and renames it when complete, so a
cancel or a failure leaves no partial file; the space is measured first (``qemu-img measure``).
An overlay is either flattened (its whole chain copied: an independent image) or, with
``keep_backing``, copied alone on top of the same backing file (``qemu-img convert -B``), the
backing file's format recorded in the output.
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from imagegui.core.jobs import CancelToken, ProgressFn
from imagegui.core.ops import guards, journal
from imagegui.core.ops.newfile import partial_name, write_via_partial
from imagegui.core.ops.plan import (
    Finding,
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
from imagegui.core.read.model import ImageInfo
from imagegui.core.units import human_size

if TYPE_CHECKING:
    from imagegui.core.virt.inventory import DomainSource

#: Output formats, with what each is for (the plan and the window say it).
OUT_FORMATS = {
    "qcow2": "QEMU/KVM",
    "raw": "a plain disk image",
    "vmdk": "VMware",
    "vhdx": "Hyper-V",
    "vpc": "Virtual PC, Azure (VHD)",
}
#: Formats qemu can write compressed (vmdk only as a streamOptimized vmdk).
COMPRESSIBLE = ("qcow2", "vmdk")
#: Formats qemu measures; the others are estimated from a qcow2 measure.
MEASURABLE = ("qcow2", "raw")


@dataclass(kw_only=True)
class ConvertPlan(Plan[OpResult]):
    op: ClassVar[str] = "convert"

    src: str
    dest: str
    out_format: str = "qcow2"
    compress: bool = False
    keep_backing: bool = False
    #: The temporary file written first, renamed to ``dest`` when complete.
    partial: str
    #: Bytes the output needs (measured, or estimated); 0 when not measured (refused).
    required: int = 0
    roots: tuple[str, ...] = ()
    mode: int = 0o600

    def replan(self) -> ConvertPlan:
        # The space was measured for the plan (a walk of the whole allocation map); the recheck
        # reuses it and still checks the free space now.
        return plan_convert(
            self.src,
            self.dest,
            self.out_format,
            compress=self.compress,
            keep_backing=self.keep_backing,
            partial=self.partial,
            required=self.required or None,
            roots=self.roots,
            allow=self.allow,
            qemu_img=self.qemu_img,
            domains=self.domains,
        )

    def _execute(self, progress: ProgressFn, cancel: CancelToken) -> OpResult:
        write_via_partial(
            self.commands[-1], self.partial, self.dest, self.mode, progress, cancel,
            self.qemu_img, op="convert", state=f"no file was created and {self.src} is unchanged",
        )  # fmt: skip
        kept = " on the same backing file" if self.keep_backing else ""
        note = journal.journal_change(journal.CONVERT_OP, self.dest, source=self.src)
        return OpResult(
            message=f"wrote {self.dest}: a {self.out_format} image with {self.src}'s content"
            f"{kept}{note}",
            changed=[self.dest],
            cli_hint="" if note else f"imagegui convert --undo {shlex.quote(self.dest)} removes it",
        )


def plan_convert(
    src: str,
    dest: str,
    out_format: str = "qcow2",
    compress: bool = False,
    keep_backing: bool = False,
    partial: str | None = None,
    required: int | None = None,
    roots: tuple[str, ...] = (),
    allow: tuple[str, ...] = (),
    qemu_img: str = "",
    domains: DomainSource | None = None,
) -> ConvertPlan:
    """``keep_backing``: the output keeps ``src``'s backing file (qcow2 output only) and holds
    only what ``src`` itself stores; otherwise the whole chain is copied in. ``domains``: where
    to ask libvirt which VMs use the source (only named: a convert reads it)."""
    src, dest = canonical(src), canonical(dest)
    partial = partial or partial_name(dest)
    mode = 0o600
    index, findings = guards.read_domains(domains)
    add_findings(findings, guards.target_free(dest, "output"))
    if os.path.lexists(partial):
        findings.append(refuse("target-exists", f"temporary file {partial} already exists"))
    findings += _option_findings(out_format, compress, keep_backing)
    img = probe_or_refuse(src, "source", findings)
    fmt = img.format if img else "?"
    backing: tuple[str, str] | None = None
    measure_cmd = qemuimg.measure_argv(src, fmt, _measured_as(out_format))
    known, required = required, 0
    if img:
        chain = guards.follow_chain(src)
        problem = guards.chain_problem(chain, "a convert")
        add_findings(findings, problem)
        access = guards.chain_access(chain, guards.access_roots(src, dest, extra=roots), allow)
        findings += access
        problem = problem or next((f for f in access if f.refuses), None)
        mode = guards.new_file_mode(chain)
        if keep_backing:
            backing, more = _kept_backing(img, chain, dest)
            findings += more
            measure_cmd = _measure_top_argv(src, fmt, _measured_as(out_format))
        members = chain.images[:1] if keep_backing else chain.images
        for member in chain.images:
            add_findings(
                findings,
                guards.not_in_use(member.path, "chain member", writers_only=True, index=index),
            )
        for member in members:
            add_findings(findings, guards.snapshots_not_carried(member, "convert"))
        add_findings(
            findings,
            guards.domain_note(src, "source", index, "; the convert only reads it"),
        )
        blocked = problem is not None or any(
            f.code in ("in-use", "format", "compress", "keep-backing") for f in findings
        )
        if not blocked:
            try:
                required = (
                    known or qemuimg.measure(src, fmt, argv=measure_cmd, qemu_img=qemu_img).required
                )
            except qemuimg.QemuImgError as exc:
                findings.append(refuse("measure", str(exc)))
            if out_format not in MEASURABLE:
                findings.append(
                    info(
                        "estimate",
                        f"qemu cannot measure a {out_format} image: the space needed is "
                        "estimated as for qcow2",
                    )
                )
            if required and os.path.isdir(os.path.dirname(dest)):
                add_findings(findings, guards.free_space(os.path.dirname(dest), required))
    findings.append(
        info(
            "undoable",
            f"Undo moves {dest} to the Trash, as long as no image backs onto it and it is not "
            "in use; the source is never touched",
            fix_cli=f"imagegui convert --undo {shlex.quote(dest)}",
        )
    )
    options = _out_options(out_format, compress)
    argv = qemuimg.convert_argv(
        src, fmt, partial, out_format, compress=compress, options=options, backing=backing
    )
    what = OUT_FORMATS.get(out_format, out_format)
    if backing:
        content = (
            f"only the data {src} itself holds, on top of the same backing file, stored as "
            f"{backing[0]!r} (format {backing[1]})"
        )
    else:
        content = f"the full content of {src}" + (
            " and its backing chain (an independent image)" if img and img.backing_file else ""
        )
    changes = [
        f"writes {partial} (~{human_size(required)}, mode {mode:04o} at most), then renames it "
        f"to {dest}: a {out_format} image ({what}){' compressed' * compress} with {content}",
        f"{src}"
        + (" and its backing files are" if img and img.backing_file else " is")
        + " only read",
    ]
    return ConvertPlan(
        title=f"convert: {src} into {out_format} {dest}",
        commands=[measure_cmd, argv],
        changes=changes,
        findings=findings,
        allow=tuple(allow),
        qemu_img=qemu_img,
        src=src,
        dest=dest,
        out_format=out_format,
        compress=compress,
        keep_backing=keep_backing,
        partial=partial,
        required=required,
        roots=tuple(roots),
        mode=mode,
        domains=domains,
    )


def _option_findings(out_format: str, compress: bool, keep_backing: bool) -> list[Finding]:
    found = []
    if out_format not in OUT_FORMATS:
        found.append(
            refuse(
                "format",
                f"cannot convert into {out_format!r}: choose one of {', '.join(OUT_FORMATS)}",
            )
        )
    elif compress and out_format not in COMPRESSIBLE:
        found.append(
            refuse(
                "compress",
                f"a {out_format} image cannot hold compressed data (only qcow2 and vmdk can)",
            )
        )
    if keep_backing and out_format != "qcow2":
        found.append(
            refuse(
                "keep-backing",
                f"only a qcow2 output can keep a backing file (not {out_format}): convert the "
                "whole chain instead",
            )
        )
    return found


def _out_options(out_format: str, compress: bool) -> list[str]:
    """``-o`` options: a compressed vmdk is a streamOptimized one (the only kind qemu writes
    compressed); a VHD keeps its exact size instead of one rounded to a disk geometry."""
    if out_format == "vmdk" and compress:
        return ["subformat=streamOptimized"]
    if out_format == "vpc":
        return ["force_size=on"]
    return []


def _measured_as(out_format: str) -> str:
    return out_format if out_format in MEASURABLE else "qcow2"


def _measure_top_argv(src: str, fmt: str, out_format: str) -> list[str]:
    """Measures ``src`` without its backing chain (what a ``-B`` convert copies)."""
    spec = {"driver": fmt, "file": {"driver": "file", "filename": src}, "backing": None}
    return [
        "qemu-img", "measure", "--output=json", "-O", out_format,
        "json:" + json.dumps(spec, separators=(",", ":")),
    ]  # fmt: skip


def _kept_backing(
    img: ImageInfo, chain: guards.Chain, dest: str
) -> tuple[tuple[str, str] | None, list[Finding]]:
    """The backing name (relative to ``dest``'s folder if ``img`` stores it relative, else
    absolute) and the backing file's real format for ``-B``/``-F``; refusals when there is none."""
    if not img.backing_file:
        return None, [
            refuse(
                "no-backing",
                f"{img.path} has no backing file to keep: convert it without keeping one",
            )
        ]
    if img.backing_protocol or not img.backing_path or len(chain.images) < 2:
        return None, []  # chain_problem / chain_access say why
    base = chain.images[1]
    absolute = os.path.isabs(img.backing_file)
    name = backing_name(dest, img.backing_path, absolute)
    found: list[Finding] = []
    add_findings(found, backing_name_finding(dest, name, img.backing_path))
    if img.backing_format is None:
        found.append(
            info(
                "backing-format",
                f"{img.path} does not record its backing file's format; the output records "
                f"it ({base.format})",
            )
        )
    elif img.backing_format != base.format:
        add_findings(found, guards.backing_format_recorded(img, base))
    return (name or img.backing_path, base.format), found
