"""snapshot: create, apply (revert to) and delete a qcow2 image's internal snapshots.

The list is read natively (``core.read.snapshots``); the changes go through ``qemu-img snapshot``,
which opens the image with its backing chain, so the chain must be whole. Applying is the
destructive one: the image's current state is replaced by the snapshot's, and whatever was
written since is gone unless it was snapshotted first - the plan says so. Applying on a base
with overlays changes what they show, so it is refused unless forced (as a commit into a shared
base is); creating and deleting leave the current state alone.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from imagegui.core.jobs import CancelToken, ProgressFn
from imagegui.core.ops import guards, journal
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
from imagegui.core.read.formats.base import ParseError
from imagegui.core.read.snapshots import Snapshot, find_snapshot, read_snapshots
from imagegui.core.units import human_size

if TYPE_CHECKING:
    from imagegui.core.virt.inventory import DomainSource

ACTIONS = ("create", "apply", "delete")

_CONSEQUENCE = {
    "create": "a snapshot taken here is written into {vm} disk without libvirt knowing of it",
    "apply": "reverting it changes {vm} disk",
    "delete": "deleting a snapshot writes {vm} disk without libvirt knowing of it",
}


@dataclass(kw_only=True)
class SnapshotPlan(Plan[OpResult]):
    op: ClassVar[str] = "snapshot"
    searched_for: ClassVar[str] = "overlays"

    image: str
    action: str
    name: str
    roots: tuple[str, ...] = ()

    def replan(self) -> SnapshotPlan:
        return plan_snapshot(
            self.image,
            self.action,
            self.name,
            force=self.force,
            roots=self.roots,
            allow=self.allow,
            qemu_img=self.qemu_img,
            domains=self.domains,
        )

    def _execute(self, progress: ProgressFn, cancel: CancelToken) -> OpResult:
        hint = ""
        # One metadata update (apply also rewrites the active L1 table): quick, all or nothing.
        qemuimg.run(self.commands[0], qemu_img=self.qemu_img)
        progress(1.0)
        if self.action == "create":
            made = find_snapshot(_snapshots(self.image) or [], self.name, by_id=False)
            ident = f" (id {made.id})" if made else ""
            note = "; it cannot be undone from imagegui (the new snapshot was not found)"
            if made is not None:
                taken = {"id": made.id, "name": made.name, "date_sec": made.date_sec,
                         "date_nsec": made.date_nsec}  # fmt: skip
                note = journal.journal_change(journal.SNAPSHOT_OP, self.image, snapshot=taken)
            message = f"created snapshot {self.name!r}{ident} of {self.image}{note}"
            if not note:
                hint = f"imagegui snapshot {shlex.quote(self.image)} --undo deletes it"
        elif self.action == "apply":
            message = (
                f"reverted {self.image} to snapshot {self.name!r}: it shows what it showed when "
                "the snapshot was taken; the snapshot is kept"
            )
        else:
            message = f"deleted snapshot {self.name!r} of {self.image}"
        return OpResult(message=message, changed=[self.image], cli_hint=hint)


def _snapshots(path: str) -> list[Snapshot] | None:
    try:
        return read_snapshots(path)
    except (OSError, ParseError):
        return None


def plan_snapshot(
    image: str,
    action: str,
    name: str,
    force: bool = False,
    roots: tuple[str, ...] = (),
    allow: tuple[str, ...] = (),
    qemu_img: str = "",
    domains: DomainSource | None = None,
) -> SnapshotPlan:
    """``action``: ``create``, ``apply`` or ``delete``; ``name``: the snapshot's name (or, for
    apply and delete, its id, as qemu-img matches it). ``force`` lifts the overridable
    refusals (reverting a base with overlays, a shut-off libvirt VM's disk, a read-only image)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown snapshot action {action!r}")
    image = canonical(image)
    index, findings = guards.read_domains(domains)
    img = probe_or_refuse(image, "image", findings)
    changes: list[str] = []
    searched: list[str] = []
    if img and img.format != "qcow2":
        findings.append(
            refuse(
                "format-no-snapshots",
                f"{image} is a {img.format} image: only qcow2 images hold internal snapshots "
                "(convert it to qcow2 first)",
                fix_cli=f"imagegui convert {image} NEW.qcow2",
            )
        )
    elif img:
        snaps = _snapshots(image)
        if snaps is None:
            findings.append(refuse("unreadable", f"the snapshot table of {image} cannot be read"))
            snaps = []
        chain = guards.follow_chain(image)
        # qemu-img snapshot opens the image with its backing chain.
        add_findings(findings, guards.chain_problem(chain, "a snapshot change"))
        findings += guards.chain_access(chain, guards.access_roots(image, extra=roots), allow)
        findings += guards.vm_guards(image, "image", index, _CONSEQUENCE[action])
        add_findings(findings, guards.writable(image))
        # qemu-img's own matching: apply tries ids first, delete only names.
        target = find_snapshot(snaps, name, by_id=action == "apply")
        if not name:
            findings.append(refuse("snapshot-name", "a snapshot needs a name"))
        elif action == "create":
            changes.append(
                f"{image}: records its current state as snapshot {name!r}; what the guest "
                "sees does not change, and the data the snapshot keeps stays in the file"
            )
            clash = find_snapshot(snaps, name)  # a name, or another snapshot's id
            if clash is not None:
                findings.append(
                    refuse(
                        "snapshot-exists",
                        f"{image} already has a snapshot answering to {name!r} ({clash.name!r}, "
                        f"id {clash.id}): the two could not be told apart; choose another name",
                    )
                )
        elif target is None:
            have = ", ".join(repr(s.name) for s in snaps) or "none"
            findings.append(
                refuse(
                    "no-such-snapshot",
                    f"{image} has no snapshot named {name!r} (its snapshots: {have})",
                )
            )
        elif action == "apply":
            changes.append(
                f"{image}: its current state is replaced by snapshot {target.name!r} (id "
                f"{target.id}, taken {target.date_text}); the snapshot itself is kept"
            )
            findings += _apply_findings(image, target, img.virtual_size)
            searched = guards.nearby_roots(image, extra=roots)
            add_findings(findings, _base_finding(image, guards.find_overlays(image, searched)))
        else:
            changes.append(
                f"{image}: snapshot {target.name!r} (id {target.id}, taken "
                f"{target.date_text}) is deleted and the space only it held is freed; what "
                "the guest sees does not change"
            )
    if img and changes:
        findings.append(_undo_note(image, action))
    argv = qemuimg.snapshot_argv(action, image, name)
    return SnapshotPlan(
        title=f"snapshot {action}: {name!r} of {image}",
        commands=[argv],
        changes=changes,
        findings=findings,
        force=force,
        allow=tuple(allow),
        qemu_img=qemu_img,
        image=image,
        action=action,
        name=name,
        roots=tuple(roots),
        searched=tuple(searched),
        domains=domains,
    )


def _undo_note(image: str, action: str) -> Finding:
    """Whether Undo can take the change back (said in every preview)."""
    if action == "create":
        return info(
            "undoable",
            "Undo deletes the snapshot again, as long as it is still there as taken and the "
            "image is not in use",
            fix_cli=f"imagegui snapshot {shlex.quote(image)} --undo",
        )
    if action == "apply":
        return info(
            "not-undoable",
            "reverting cannot be undone: the current state it replaces is not kept anywhere",
        )
    return info(
        "not-undoable", "deleting a snapshot cannot be undone: the data only it held is freed"
    )


def _apply_findings(image: str, snap: Snapshot, current_size: int) -> list[Finding]:
    found = [
        warn(
            "apply-discards",
            f"reverting discards the current state of {image}: everything written to it since "
            f"{snap.date_text} (when {snap.name!r} was taken) is lost, unless you take a "
            "snapshot of the current state first",
        )
    ]
    if snap.disk_size != current_size:
        found.append(
            info(
                "snapshot-size",
                f"the disk becomes {human_size(snap.disk_size)} again (its size when "
                f"{snap.name!r} was taken; it is {human_size(current_size)} now)",
            )
        )
    if snap.vm_state_size:
        found.append(
            info(
                "vm-state",
                f"{snap.name!r} also holds a running VM's memory "
                f"({human_size(snap.vm_state_size)}); only the disk is reverted here - the VM "
                "state is restored by starting the VM from this snapshot (loadvm)",
            )
        )
    return found


def _base_finding(image: str, overlays: list[str]) -> Finding | None:
    if not overlays:
        return None
    return refuse(
        "base-has-overlays",
        f"{image} is the backing file of {', '.join(overlays)}: reverting it changes what "
        "they show (every cluster they did not write themselves) and silently corrupts them. "
        "Flatten them first, or force if they can be thrown away",
        overridable=True,
        fix_cli="add --force to the same command",
        paths=tuple(overlays),
    )
