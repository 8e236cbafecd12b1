"""clone-vm: a linked-clone VM - a qcow2 overlay on a base and a libvirt domain that boots it.

The domain is either a copy of a *template* domain that uses the base (new name, UUID and MAC
addresses, its disk re-pointed, other disks such as a cloud-init ISO left alone:
``core.virt.clonexml``) or a new machine from ``virt-install --print-xml`` when there is none.
The plan shows the overlay's ``qemu-img create`` (the overlay operation's own, base format
always recorded) and the whole domain XML. Running it creates the overlay, then defines the
domain on a read-write connection; a definition libvirt refuses removes the new overlay again,
so nothing is left half-made. Every clone is journalled, and undone (undefine, remove the
overlay) only while the VM has never run: shut off, its overlay exactly as created. On another
host (``qemu+ssh://``) the overlay is a volume made through libvirt's storage API and every check
goes through libvirt (``clonevm_remote``); the undo is ``clonevm_undo``.
"""

from __future__ import annotations

import os
import posixpath
import shlex
import time
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from imagegui.core.jobs import CancelToken, ProgressFn
from imagegui.core.ops import clonevm_remote as rv
from imagegui.core.ops import journal
from imagegui.core.ops.newfile import claim_new_file, release_new_file, still_ours
from imagegui.core.ops.overlay import plan_overlay
from imagegui.core.ops.plan import Finding, OpResult, Plan, info, refuse, warn
from imagegui.core.qemu import qemuimg
from imagegui.core.read.backing import canonical
from imagegui.core.units import printable
from imagegui.core.virt import clonexml, virtinstall
from imagegui.core.virt.connect import (
    SYSTEM_URI,
    LibvirtUnreachable,
    binding,
    is_remote,
    open_connection,
)
from imagegui.core.virt.domxml import BadXML, parse_domain
from imagegui.core.virt.inventory import DomainIndex, read_host
from imagegui.core.virt.model import STATE_NAMES, Domain, DomainUse, HostInventory, Role, Volume
from imagegui.core.virt.remote import RemoteWriteError, create_overlay_volume, plan_overlay_volume

#: The connection a clone is defined on unless the user names another.
DEFAULT_URI = SYSTEM_URI
#: What a definition from virt-install gets (the user changes it later in virt-manager).
FRESH_MEMORY_MIB = 1024
FRESH_VCPUS = 1


class CloneVmError(Exception):
    """libvirt refused the definition (or the undefinition); the message says what was left."""


def default_overlay(base: str, name: str) -> str:
    """The clone's disk beside its base, named after the VM: ``/images/web02.qcow2``."""
    return os.path.join(os.path.dirname(canonical(base)), f"{name}.qcow2")


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a VM (libvirt's QEMU driver refuses '/' and control characters;
    the overlay is named after it too), or None."""
    if not name.strip():
        return "the new VM needs a name"
    if name != name.strip():
        return f"the VM name {name!r} starts or ends with a space"
    if "/" in name:
        return f"a VM name cannot contain '/': {name!r}"
    if not name.isprintable():
        return f"a VM name cannot contain control characters: {printable(name)!r}"
    if len(name.encode()) > 200:
        return "the VM name is too long (at most 200 bytes)"
    return None


# --------------------------------------------------------------------------- the plan


@dataclass(kw_only=True)
class CloneVmResult(OpResult):
    journal_id: str
    uri: str
    name: str
    uuid: str


@dataclass(kw_only=True)
class CloneVmPlan(Plan[CloneVmResult]):
    op: ClassVar[str] = "clone-vm"

    base: str
    name: str
    overlay: str
    uri: str = DEFAULT_URI
    #: The domain whose definition is copied; None: a new one from virt-install.
    template: str | None = None
    absolute: bool = False
    roots: tuple[str, ...] = ()
    mode: int = 0o600
    #: The new domain's XML, exactly as it will be defined ("" when it could not be made).
    xml: str = ""
    #: The virt-install command line that made the machine definition (no template).
    made_by: list[str] = field(default_factory=list)
    #: The template's disk the overlay replaces (``vda``).
    disk: str = ""
    #: Another host: the overlay is created through libvirt's storage API (``volume_xml`` in
    #: the pool ``pool``), its paths are that host's.
    remote: bool = False
    volume_xml: str = ""
    pool: str = ""

    def set_documents(self) -> None:
        """What the preview shows whole beside the command: the domain XML (and what made it)."""
        self.documents = []
        if self.volume_xml:
            where = f"Volume created in the storage pool {self.pool} on {self.uri}"
            self.documents.append((where, self.volume_xml))
        if self.made_by:
            self.documents.append(("Machine definition made by", shlex.join(self.made_by)))
        if self.xml:
            self.documents.append((f"Domain XML defined on {self.uri}", self.xml.rstrip("\n")))

    def to_json(self) -> dict[str, Any]:
        d = super().to_json()
        d.update(
            uri=self.uri,
            name=self.name,
            base=self.base,
            overlay=self.overlay,
            template=self.template,
            disk=self.disk or None,
            virt_install=self.made_by or None,
            domain_xml=self.xml or None,
        )
        return d

    def replan(self) -> CloneVmPlan:
        fresh = plan_clone_vm(
            self.base,
            self.name,
            self.overlay,
            template=self.template,
            uri=self.uri,
            absolute=self.absolute,
            roots=self.roots,
            allow=self.allow,
            qemu_img=self.qemu_img,
        )
        if fresh.xml != self.xml and not fresh.blocking():
            fresh.findings.append(
                refuse(
                    "changed",
                    "the domain definition changed since this plan was made (the template was "
                    "edited?); review it again",
                )
            )
        return fresh

    def _execute(self, progress: ProgressFn, cancel: CancelToken) -> CloneVmResult:
        if self.remote:
            uuid, state = self._execute_remote()
            return self._record(uuid, None, state, progress)
        libvirt = binding()
        ident = claim_new_file(self.overlay, self.mode)
        try:
            qemuimg.run(self.commands[0], cancel=cancel, qemu_img=self.qemu_img)
            still_ours(self.overlay, ident)
            progress(0.5)
            cancel.raise_if_cancelled(f"nothing was kept: {self.overlay} was removed again")
            created = journal.Fingerprint.of(self.overlay)
            try:
                conn = open_connection(self.uri, readonly=False)
            except LibvirtUnreachable as exc:
                raise CloneVmError(f"{exc}; {self.overlay} was removed again") from None
            try:
                dom = conn.defineXML(self.xml)
                uuid = dom.UUIDString()
            except libvirt.libvirtError as exc:
                why = " ".join(str(exc).split())
                raise CloneVmError(
                    f"libvirt refused to define {self.name} on {self.uri}: {why}; "
                    f"{self.overlay} was removed again, nothing was changed"
                ) from None
            finally:
                conn.close()
        except BaseException:
            release_new_file(self.overlay, ident)
            raise
        return self._record(uuid, created, None, progress)

    def _execute_remote(self) -> tuple[str, dict | None]:
        """Creates the overlay volume, then defines the domain; a refused definition deletes
        the volume again. Returns the domain's UUID and the volume's state as created."""
        libvirt = binding()
        try:
            conn = open_connection(self.uri, readonly=False)
        except LibvirtUnreachable as exc:
            raise CloneVmError(f"{exc}; nothing was changed") from None
        try:
            try:
                create_overlay_volume(conn, self.base, self.overlay)
            except RemoteWriteError as exc:
                raise CloneVmError(f"{exc}; nothing was changed") from None
            state = rv.volume_state(conn, self.overlay)
            try:
                return conn.defineXML(self.xml).UUIDString(), state
            except libvirt.libvirtError as exc:
                why = " ".join(str(exc).split())
                try:
                    rv.delete_volume(conn, self.overlay)
                    left = f"{self.overlay} was removed again, nothing was changed"
                except RemoteWriteError as gone:
                    left = f"and {gone}"
                raise CloneVmError(
                    f"libvirt refused to define {self.name} on {self.uri}: {why}; {left}"
                ) from None
        finally:
            conn.close()

    def _record(
        self,
        uuid: str,
        created: journal.Fingerprint | None,
        state: dict | None,
        progress: ProgressFn,
    ) -> CloneVmResult:
        entry = journal.CloneVmEntry(
            id=journal.new_id(),
            time=time.time(),
            uri=self.uri,
            name=self.name,
            uuid=uuid,
            overlay=self.overlay,
            base=self.base,
            template=self.template,
            fingerprint=asdict(created) if created else None,
            volume_state=state,
        )
        try:
            journal.record_clone(entry)
        except journal.JournalError as exc:
            raise CloneVmError(f"the VM {self.name} was defined, but {exc}") from None
        progress(1.0)
        return CloneVmResult(
            message=f"defined the VM {self.name} on {self.uri}, booting {self.overlay} "
            f"(a new overlay on {self.base})",
            changed=[self.overlay],
            journal_id=entry.id,
            uri=self.uri,
            name=self.name,
            uuid=uuid,
            cli_hint=f"undo while it has never run: imagegui clone-vm --undo {self.name}"
            + ("" if self.uri == DEFAULT_URI else f" --connect {shlex.quote(self.uri)}"),
        )


def plan_clone_vm(
    base: str,
    name: str,
    overlay: str | None = None,
    template: str | None = None,
    uri: str = DEFAULT_URI,
    absolute: bool = False,
    roots: tuple[str, ...] = (),
    allow: tuple[str, ...] = (),
    qemu_img: str = "",
) -> CloneVmPlan:
    """``overlay`` defaults to ``NAME.qcow2`` beside the base; ``template`` names a domain on
    ``uri`` that uses the base (directly or below its disk's overlay). On another host (a
    remote ``uri``) the paths are that host's and the overlay is made through libvirt."""
    remote = is_remote(uri)
    if remote:
        base = rv.normal(base)
        overlay = rv.normal(overlay or posixpath.join(posixpath.dirname(base), f"{name}.qcow2"))
        ov = None
    else:
        base = canonical(base)
        overlay = canonical(overlay or default_overlay(base, name))
        ov = plan_overlay(
            base, overlay, None, absolute, roots=roots, allow=allow, qemu_img=qemu_img
        )
    findings: list[Finding] = list(ov.findings) if ov else []
    plan = CloneVmPlan(
        title=f"clone-vm: new VM {name} on {uri}, booting {overlay} on {base}",
        commands=ov.commands if ov else [],
        findings=findings,
        allow=tuple(allow),
        qemu_img=qemu_img,
        base=base,
        name=name,
        overlay=overlay,
        uri=uri,
        template=template or None,
        absolute=absolute,
        roots=tuple(roots),
        mode=ov.mode if ov else 0o600,
        remote=remote,
    )
    bad_name = name_problem(name)
    if bad_name:
        findings.append(refuse("bad-name", bad_name))
    unusable = bool(bad_name)  # no definition can be asked for: say so alone
    for path, role in ((base, "base"), (overlay, "new image")):
        if remote and (why := rv.path_problem(path, role)):
            findings.append(refuse("remote-path", why))
            unusable = True
    definition = None if unusable else _definition(plan, findings)
    described = _vm_change(plan, definition)
    if ov is not None:
        created, kept = ov.changes
    else:
        created = (
            f"creates {overlay} on {uri} through libvirt's storage API, in the pool "
            f"{plan.pool or '(none found)'}: a qcow2 overlay recording backing {base} and its "
            "format; it starts empty and shows the base's content"
        )
        kept = f"{base} is not modified, but from now on it must stay unchanged (it has an overlay)"
    plan.changes = [created, described, *_shared_changes(plan, definition), kept]
    plan.changes.append(
        f"recorded in {journal.journal_path()}: undone (the VM undefined, the overlay removed) "
        "only while the VM has never run"
    )
    if (why := journal.writable_problem()) is not None:
        findings.append(refuse("journal", why))
    plan.set_documents()
    return plan


def _vm_change(plan: CloneVmPlan, definition: clonexml.CloneDefinition | None) -> str:
    where = f"defines the VM {plan.name} on {plan.uri}, shut off (Virtual Machine Manager lists it)"
    if plan.template:
        disk = f", its disk {definition.target}" if definition else ""
        return (
            f"{where}: a copy of {plan.template}'s definition with a new name, UUID and MAC "
            f"addresses{disk} now {plan.overlay}"
        )
    return (
        f"{where}: a new definition from virt-install ({FRESH_MEMORY_MIB} MiB, {FRESH_VCPUS} "
        f"vCPU, user-mode network) booting {plan.overlay}"
    )


def _shared_changes(plan: CloneVmPlan, definition: clonexml.CloneDefinition | None) -> list[str]:
    if definition is None or not definition.shared:
        return []
    disks = ", ".join(f"{d.target} ({d.path})" for d in definition.shared)
    return [f"the clone's other disks are the template's own files, left as they are: {disks}"]


def _definition(plan: CloneVmPlan, findings: list[Finding]) -> clonexml.CloneDefinition | None:
    """Reads the connection (read-only) and makes the domain XML; refusals go to ``findings``."""
    try:
        conn = open_connection(plan.uri)
    except LibvirtUnreachable as exc:
        findings.append(refuse("libvirt", str(exc)))
        return None
    try:
        if plan.remote:
            _remote_overlay(conn, plan, findings)
        return _definition_on(conn, plan, findings)
    finally:
        conn.close()


def _remote_overlay(conn: Any, plan: CloneVmPlan, findings: list[Finding]) -> None:
    """The overlay on another host: free, the base's chain whole (as its volumes say), and the
    ``<volume>`` the storage API will be handed."""
    if rv.volume(conn, plan.overlay) is not None:
        findings.append(
            refuse(
                "target-exists",
                f"new image {plan.overlay} already exists on {plan.uri}; imagegui never "
                "overwrites a file: choose another name",
            )
        )
    chain, missing = rv.volume_chain(conn, plan.base)
    if not chain:
        findings.append(
            refuse(
                "unreadable",
                f"base {plan.base} is not a volume of any active storage pool on {plan.uri}",
            )
        )
        return
    if missing:
        findings.append(
            refuse(
                "missing-backing",
                f"{chain[-1]} backs onto {missing}, which is no volume of an active storage pool "
                f"on {plan.uri}: an overlay needs the whole chain",
            )
        )
    try:
        request = plan_overlay_volume(conn, plan.base, plan.overlay)
    except RemoteWriteError as exc:
        findings.append(refuse("remote-overlay", str(exc)))
        return
    plan.volume_xml, plan.pool = request.xml, request.pool


def _lookup(conn: Any, name: str) -> Any | None:
    libvirt = binding()
    try:
        return conn.lookupByName(name)
    except libvirt.libvirtError:
        return None


def domain_state(dom: Any) -> str:
    return STATE_NAMES.get(dom.state()[0], "no state")


def _definition_on(
    conn: Any, plan: CloneVmPlan, findings: list[Finding]
) -> clonexml.CloneDefinition | None:
    libvirt = binding()
    existing = _lookup(conn, plan.name)
    if existing is not None:
        findings.append(
            refuse(
                "domain-exists",
                f"a VM called {plan.name} is already defined on {plan.uri} "
                f"({domain_state(existing)}): choose another name",
            )
        )
        return None
    if plan.template is None:
        _note_templates(conn, plan, findings)
        return _fresh(plan, findings)
    tmpl = _lookup(conn, plan.template)
    if tmpl is None:
        findings.append(
            refuse("no-template", f"there is no VM called {plan.template} on {plan.uri}")
        )
        return None
    try:
        xml = tmpl.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        state = domain_state(tmpl)
        domain = parse_domain(xml, plan.uri, state, name=plan.template)
    except (libvirt.libvirtError, BadXML) as exc:
        findings.append(refuse("template", f"cannot read {plan.template}'s definition: {exc}"))
        return None
    volumes = read_host(conn, plan.uri).volumes if any(d.pool for d in domain.disks) else []
    uses = disk_uses(conn, plan.uri, [domain], volumes, plan.base)
    if not uses:
        reads = ", ".join(f"{d.target}: {d.path}" for d in domain.disks if d.path) or "none"
        findings.append(
            refuse(
                "template-not-using-base",
                f"{plan.template} does not use {plan.base} (its disks: {reads}); choose a VM that "
                "boots it, or none for a new definition",
            )
        )
        return None
    if len(uses) > 1:
        targets = ", ".join(u.disk for u in uses)
        findings.append(
            refuse(
                "several-disks",
                f"{plan.template} uses {plan.base} on {len(uses)} disks ({targets}); a linked "
                "clone replaces one disk with one overlay",
            )
        )
        return None
    use = uses[0]
    plan.disk = use.disk
    disk_path = next((d.path for d in domain.disks if d.target == use.disk), None)
    if use.role is Role.TOP:
        findings.append(
            warn(
                "template-boots-base",
                f"{plan.template} boots {plan.base} itself ({use.disk}): when it starts it "
                f"writes the base, and the clone's disk changes under it. Keep {plan.template} "
                "as a template that is never started, or give it an overlay of its own",
            )
        )
    else:
        findings.append(
            info(
                "template-overlay",
                f"{plan.template}'s {use.disk} is {disk_path}, an overlay on {plan.base}: the "
                f"clone gets its own overlay directly on {plan.base}, without {disk_path}'s "
                "changes",
            )
        )
    try:
        definition = clonexml.clone_definition(xml, plan.name, plan.overlay, use.disk)
    except BadXML as exc:
        findings.append(refuse("template", str(exc)))
        return None
    for shared in definition.shared_writable:
        findings.append(
            warn(
                "shared-disk",
                f"the clone shares {plan.template}'s writable disk {shared.target} "
                f"({shared.path}): two VMs writing one disk corrupt it. Run only one of them at "
                "a time, or give the clone a disk of its own in virt-manager",
            )
        )
    findings += [info("reset", note) for note in definition.notes]
    plan.xml = definition.xml
    return definition


def disk_uses(
    conn: Any, uri: str, domains: list[Domain], volumes: list[Volume], path: str
) -> list[DomainUse]:
    """The disks of ``domains`` that read ``path``: on this machine through the image headers
    (``DomainIndex``), on another host through its volumes' XML."""
    if is_remote(uri):
        return rv.uses_of(conn, domains, volumes, path)
    inv = HostInventory(uri=uri, domains=list(domains), volumes=list(volumes))
    return DomainIndex([inv]).uses_of(path)


def _note_templates(conn: Any, plan: CloneVmPlan, findings: list[Finding]) -> None:
    """Without a template: names the VMs on the connection that use the base, whose definition
    could be copied instead."""
    try:
        inv = read_host(conn, plan.uri)
    except LibvirtUnreachable:
        return
    for use in disk_uses(conn, plan.uri, inv.domains, inv.volumes, plan.base):
        findings.append(
            info(
                "template-available",
                f"{use.describe()} uses {plan.base} ({use.disk}): its definition can be copied "
                "instead of making a new one",
                fix_cli=f"--from-domain {shlex.quote(use.name)}",
            )
        )


def _fresh(plan: CloneVmPlan, findings: list[Finding]) -> clonexml.CloneDefinition | None:
    command = virtinstall.argv(plan.uri, plan.name, FRESH_MEMORY_MIB, FRESH_VCPUS)
    why = virtinstall.missing()
    if why is not None:
        findings.append(
            refuse(
                "virt-install-missing",
                f"without a template VM the definition comes from virt-install, but {why}",
            )
        )
        return None
    plan.made_by = command
    try:
        definition = clonexml.fresh_definition(
            virtinstall.machine_xml(command), plan.name, plan.overlay
        )
    except (virtinstall.VirtInstallError, BadXML) as exc:
        findings.append(refuse("virt-install", str(exc)))
        return None
    plan.disk = definition.target
    findings += [info("reset", note) for note in definition.notes]
    plan.xml = definition.xml
    return definition


# --------------------------------------------------------------------------- templates


def templates(base: str, uri: str = DEFAULT_URI) -> tuple[list[DomainUse], str]:
    """The VMs on ``uri`` whose disk uses ``base`` (directly or below an overlay): the templates
    a clone can copy, one per VM; and why none could be looked for ("" when they were)."""
    try:
        conn = open_connection(uri)
    except LibvirtUnreachable as exc:
        return [], str(exc)
    try:
        inv = read_host(conn, uri)
        path = rv.normal(base) if is_remote(uri) else canonical(base)
        uses = disk_uses(conn, uri, inv.domains, inv.volumes, path)
    except LibvirtUnreachable as exc:
        return [], str(exc)
    finally:
        conn.close()
    found: dict[str, DomainUse] = {}
    for use in uses:
        found.setdefault(use.name, use)
    return list(found.values()), ""
