"""Undoing a linked-clone VM: the VM undefined and its overlay removed - only while it has never
run (shut off, the overlay exactly as created), no other VM uses the overlay and no image backs
onto it. On another host through libvirt, as the clone was made (``clonevm_remote``)."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from imagegui.core.jobs import CancelToken, ProgressFn
from imagegui.core.ops import clonevm_remote as rv
from imagegui.core.ops import guards, journal
from imagegui.core.ops.clonevm import CloneVmError, disk_uses, domain_state
from imagegui.core.ops.plan import Finding, OpResult, Plan, add_findings, refuse, warn
from imagegui.core.read.backing import canonical
from imagegui.core.virt.connect import LibvirtUnreachable, binding, is_remote, open_connection
from imagegui.core.virt.domxml import BadXML, parse_domain
from imagegui.core.virt.inventory import read_host
from imagegui.core.virt.model import Domain, Volume
from imagegui.core.virt.remote import RemoteWriteError


@dataclass(kw_only=True)
class UndoCloneVmPlan(Plan[OpResult]):
    op: ClassVar[str] = "undo-clone-vm"
    searched_for: ClassVar[str] = "images backing onto the overlay"

    name: str
    uri: str | None = None
    entry: journal.CloneVmEntry | None = None

    def replan(self) -> UndoCloneVmPlan:
        return plan_undo_clone_vm(self.name, self.uri)

    def _execute(self, progress: ProgressFn, cancel: CancelToken) -> OpResult:
        entry = self.entry
        assert entry is not None  # a plan without one is refused
        libvirt = binding()
        try:
            conn = open_connection(entry.uri, readonly=False)
        except LibvirtUnreachable as exc:
            raise CloneVmError(f"{exc}; nothing was changed") from None
        undefined = False
        try:
            try:
                dom = conn.lookupByUUIDString(entry.uuid)
            except libvirt.libvirtError:
                dom = None
            if dom is not None:
                if dom.isActive():
                    raise CloneVmError(f"{entry.name} was started meanwhile; nothing was changed")
                try:
                    dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
                except libvirt.libvirtError as exc:
                    why = " ".join(str(exc).split())
                    raise CloneVmError(
                        f"libvirt refused to undefine {entry.name}: {why}; nothing was changed"
                    ) from None
                undefined = True
            if is_remote(entry.uri):
                return self._remove_volume(conn, entry, undefined, progress)
        finally:
            conn.close()
        progress(0.5)
        if not _unchanged(entry):
            gone = f"{entry.name} was undefined, but " if undefined else ""
            raise CloneVmError(f"{gone}{entry.overlay} changed meanwhile and was kept")
        try:
            os.unlink(entry.overlay)
        except FileNotFoundError:
            pass
        except OSError as exc:
            gone = f"{entry.name} was undefined, but " if undefined else ""
            raise CloneVmError(f"{gone}{entry.overlay} cannot be removed: {exc.strerror}") from None
        with contextlib.suppress(journal.JournalError):  # done; a lost line only hides it
            journal.record_clone(_undo_record(entry))
        progress(1.0)
        what = f"undefined the VM {entry.name} on {entry.uri} and " if undefined else ""
        return OpResult(message=f"{what}removed {entry.overlay}", changed=[entry.overlay])

    @staticmethod
    def _remove_volume(
        conn: Any, entry: journal.CloneVmEntry, undefined: bool, progress: ProgressFn
    ) -> OpResult:
        gone = f"{entry.name} was undefined, but " if undefined else ""
        if rv.state_differences(entry.volume_state, rv.volume_state(conn, entry.overlay)):
            raise CloneVmError(f"{gone}{entry.overlay} changed meanwhile and was kept")
        try:
            rv.delete_volume(conn, entry.overlay)
        except RemoteWriteError as exc:
            raise CloneVmError(f"{gone}{exc}") from None
        with contextlib.suppress(journal.JournalError):
            journal.record_clone(_undo_record(entry))
        progress(1.0)
        what = f"undefined the VM {entry.name} on {entry.uri} and " if undefined else ""
        return OpResult(message=f"{what}removed {entry.overlay}", changed=[])


def _undo_record(entry: journal.CloneVmEntry) -> journal.CloneVmEntry:
    data = asdict(entry)
    data.update(id=journal.new_id(), time=time.time(), undo_of=entry.id)
    return journal.CloneVmEntry(**data)


def _unchanged(entry: journal.CloneVmEntry) -> bool:
    recorded = entry.state
    return recorded is not None and not recorded.differences(journal.Fingerprint.of(entry.overlay))


def plan_undo_clone_vm(name: str, uri: str | None = None) -> UndoCloneVmPlan:
    """Undoes the last linked-clone VM called ``name`` (on ``uri`` when given): undefines it and
    removes its overlay - only while it has never run (shut off, the overlay as created), no
    other VM uses the overlay and no image backs onto it."""
    notes: list[str] = []
    entry = journal.last_clone(name, uri, notes)
    plan = UndoCloneVmPlan(title=f"undo clone-vm {name}", name=name, uri=uri, entry=entry)
    findings = plan.findings
    findings.extend(warn("journal-line", n) for n in notes)
    if entry is None:
        where = f" on {uri}" if uri else ""
        findings.append(
            refuse(
                "no-journal",
                f"the journal ({journal.journal_path()}) has no linked-clone VM called {name}"
                f"{where} that is not undone yet",
            )
        )
        return plan
    plan.title = f"undo clone-vm: remove the VM {entry.name} on {entry.uri} and {entry.overlay}"
    undefine = _undo_domain_findings(entry, findings)
    if undefine:
        plan.changes.append(f"undefines the VM {entry.name} on {entry.uri} (UUID {entry.uuid})")
    plan.changes.append(f"removes {entry.overlay}, the overlay it booted")
    plan.changes.append(f"{entry.base} is not touched")
    if is_remote(entry.uri):  # the volume was checked through libvirt
        return plan
    recorded = entry.state
    changed = recorded.differences(journal.Fingerprint.of(entry.overlay)) if recorded else []
    if recorded is None:
        findings.append(
            refuse("unverifiable", f"the journal has no fingerprint of {entry.overlay}")
        )
    elif changed:
        findings.append(
            refuse(
                "changed-since",
                f"{entry.overlay} is not as the clone created it: {'; '.join(changed)}. The VM "
                "has run (or the file was replaced), so undoing would throw away its data; "
                "remove the VM and its disk yourself if that is what you want",
            )
        )
    else:
        add_findings(findings, guards.not_in_use(entry.overlay, "overlay"))
        roots = tuple(guards.nearby_roots(entry.overlay))
        plan.searched = roots
        above = guards.find_overlays(entry.overlay, roots)
        if above:
            findings.append(
                refuse(
                    "has-overlays",
                    f"{entry.overlay} is the backing file of {', '.join(above)}: removing it "
                    "would break them",
                    paths=tuple(above),
                )
            )
    if (why := journal.writable_problem()) is not None:
        findings.append(warn("journal", why))
    return plan


def _undo_domain_findings(entry: journal.CloneVmEntry, findings: list[Finding]) -> bool:
    """Checks the domain; True when it is still defined (and so will be undefined)."""
    try:
        conn = open_connection(entry.uri)
    except LibvirtUnreachable as exc:
        findings.append(refuse("libvirt", str(exc)))
        return False
    libvirt = binding()
    try:
        try:
            dom = conn.lookupByUUIDString(entry.uuid)
        except libvirt.libvirtError:
            dom = None
        inv = read_host(conn, entry.uri)
        others = [
            u
            for u in disk_uses(conn, entry.uri, inv.domains, inv.volumes, entry.overlay)
            if dom is None or u.name != dom.name()
        ]
        if is_remote(entry.uri):
            _undo_volume_findings(conn, entry, inv.volumes, findings)
        for use in others:
            findings.append(
                refuse(
                    "used-by-domain",
                    f"{use.describe()} uses {entry.overlay} ({use.disk}): it cannot be removed",
                )
            )
        if dom is None:
            findings.append(
                warn(
                    "domain-gone",
                    f"the VM {entry.name} (UUID {entry.uuid}) is no longer defined on "
                    f"{entry.uri}: only its overlay is removed",
                )
            )
            return False
        state = domain_state(dom)
        if state != "shut off":
            findings.append(
                refuse(
                    "domain-active",
                    f"the VM {dom.name()} is {state}: a clone is undone only while it has never "
                    "run",
                )
            )
        xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        domain: Domain = parse_domain(xml, entry.uri, state, name=dom.name())
        local = not is_remote(entry.uri)
        paths = {canonical(d.path) if local else rv.normal(d.path) for d in domain.disks if d.path}
        if entry.overlay not in paths:
            findings.append(
                refuse(
                    "disk-changed",
                    f"the VM {dom.name()} no longer boots {entry.overlay} (it was edited): "
                    "undefine it yourself if that is what you want",
                )
            )
        return True
    except (libvirt.libvirtError, BadXML) as exc:
        findings.append(refuse("libvirt", f"cannot read {entry.name} on {entry.uri}: {exc}"))
        return False
    finally:
        conn.close()


def _undo_volume_findings(
    conn: Any, entry: journal.CloneVmEntry, volumes: list[Volume], findings: list[Finding]
) -> None:
    """On another host: the overlay volume as created, and no volume backing onto it."""
    changed = rv.state_differences(entry.volume_state, rv.volume_state(conn, entry.overlay))
    if changed:
        findings.append(
            refuse(
                "changed-since",
                f"{entry.overlay} is not as the clone created it: {'; '.join(changed)}. The VM "
                "has run (or the volume was replaced), so undoing would throw away its data; "
                "remove the VM and its disk yourself if that is what you want",
            )
        )
    above = sorted(
        v.path for v in volumes if v.backing_path and rv.normal(v.backing_path) == entry.overlay
    )
    if above:
        findings.append(
            refuse(
                "has-overlays",
                f"{entry.overlay} is the backing file of {', '.join(above)}: removing it would "
                "break them",
                paths=tuple(above),
            )
        )
