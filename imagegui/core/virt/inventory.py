"""Reading a libvirt host in one pass, and matching its domains' disks with image files.

One listing call per host for the domains and one per pool for the volumes, then one XML
document per domain and per volume: libvirt has no bulk call for the XML, and the XML is where
the disks and backing stores are.
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from imagegui.core.read import backing
from imagegui.core.read.fileid import FileId, file_id
from imagegui.core.virt.connect import (
    LibvirtUnreachable,
    binding,
    default_uris,
    is_remote,
    open_connection,
)
from imagegui.core.virt.model import (
    STATE_NAMES,
    Domain,
    DomainDisk,
    DomainUse,
    HostInventory,
    Role,
    Volume,
)

log = logging.getLogger(__name__)

#: Devices whose source is an image a VM reads (a network interface's file is not).
DISK_DEVICES = frozenset({"disk", "cdrom", "floppy", "lun"})


def read_host(conn: Any, uri: str) -> HostInventory:
    """Every domain (running and shut off) and every volume of every active pool on ``conn``.

    A domain or volume that vanishes while it is read is skipped; a pool that cannot be listed
    is named in ``pool_errors``. libvirt errors on the connection itself propagate as
    :class:`LibvirtUnreachable`.
    """
    # Only here: the XML parser (xml.etree, pyexpat) is for hosts that answered, and every
    # default scan imports this module whether or not libvirt runs.
    from imagegui.core.virt.domxml import BadXML, parse_domain, parse_volume

    libvirt = binding()
    inv = HostInventory(uri=uri, remote=is_remote(uri))
    try:
        inv.hostname = conn.getHostname()
    except libvirt.libvirtError:
        inv.hostname = ""
    try:
        domains = conn.listAllDomains(0)
    except libvirt.libvirtError as exc:
        raise LibvirtUnreachable(uri, f"cannot list its domains: {exc}") from None
    for dom in domains:
        try:
            code = dom.state()[0]
            xml = dom.XMLDesc(0)
            persistent = bool(dom.isPersistent())
        except libvirt.libvirtError as exc:  # undefined or stopped (transient) meanwhile
            log.debug("domain %s vanished while read: %s", dom.name(), exc)
            continue
        try:
            inv.domains.append(
                parse_domain(xml, uri, STATE_NAMES.get(code, "no state"), persistent, dom.name())
            )
        except BadXML as exc:
            log.warning("%s", exc)
    try:
        pools = conn.listAllStoragePools(0)
    except libvirt.libvirtError as exc:
        inv.pool_errors["*"] = str(exc)
        pools = []
    for pool in pools:
        name = pool.name()
        try:
            if not pool.isActive():
                continue
            vols = pool.listAllVolumes(0)
        except libvirt.libvirtError as exc:
            inv.pool_errors[name] = str(exc)
            continue
        for vol in vols:
            try:
                inv.volumes.append(parse_volume(vol.XMLDesc(0), uri, name))
            except libvirt.libvirtError as exc:
                log.debug("volume %s of %s vanished while read: %s", vol.name(), name, exc)
            except BadXML as exc:
                log.warning("%s", exc)
    return inv


@dataclass
class Hosts:
    """What the connections gave: an inventory per host reached, a note per host not reached."""

    inventories: list[HostInventory] = field(default_factory=list)
    #: One sentence per connection that failed ("libvirt not reachable at URI: reason").
    notes: list[str] = field(default_factory=list)
    #: The URIs that were asked for (the defaults when the user named none).
    asked: list[str] = field(default_factory=list)
    #: Every connection tried that failed, quiet defaults included: URI -> the reason in
    #: libvirt's or the OS's words (``scan --json``'s ``libvirt`` entries say it).
    unreachable: dict[str, str] = field(default_factory=dict)

    @property
    def local(self) -> list[HostInventory]:
        """Inventories whose paths are files on this machine."""
        return [i for i in self.inventories if not i.remote]


def read_hosts(uris: Sequence[str] | None = None) -> Hosts:
    """Reads each of ``uris``; with None, the first default that answers, and no note when none
    does (nothing was asked for: libvirt is simply not used on this machine)."""
    hosts = Hosts(asked=list(uris) if uris else default_uris())
    for uri in hosts.asked:
        try:
            conn = open_connection(uri)
            try:
                hosts.inventories.append(read_host(conn, uri))
            finally:
                conn.close()
        except LibvirtUnreachable as exc:
            hosts.unreachable[uri] = exc.reason
            if uris:
                hosts.notes.append(str(exc))
            else:
                log.info("%s", exc)
            continue
        if not uris:
            break  # the defaults: the first that answers is the host's libvirt
    return hosts


def disk_path(disk: DomainDisk, volumes: Iterable[Volume]) -> str | None:
    """The host path a disk reads: its source, or for a ``type='volume'`` disk the volume's."""
    if disk.path is not None or disk.pool is None:
        return disk.path
    for vol in volumes:
        if vol.pool == disk.pool and vol.name == disk.volume:
            return vol.path
    return None


def default_chain(path: str) -> list[str]:
    """``path`` and the backing files below it as their headers say (read natively; stops at a
    missing file, a protocol or a loop)."""
    from imagegui.core.read.probe import ProbeError, probe_image

    out: list[str] = []
    seen: set[FileId] = set()
    current: str | None = path
    while current is not None and len(out) < 256:
        out.append(current)
        try:
            info = probe_image(current)
        except (ProbeError, OSError):
            break
        if info.file_id in seen:
            break
        seen.add(info.file_id)
        current = None if info.backing_protocol else info.backing_path
    return out


@dataclass(frozen=True)
class DiskUse:
    """A domain disk that names a file on this machine."""

    domain: Domain
    disk: DomainDisk
    #: The disk's file, made absolute the kernel's way (``read.backing.canonical``).
    path: str

    def use(self, role: Role) -> DomainUse:
        d = self.domain
        return DomainUse(d.uri, d.name, d.state, self.disk.target, role)


class DomainIndex:
    """Which domains use which files on this machine, for the graph and the guards.

    A disk uses the file it names (role ``top``) and every file below it in its backing chain
    (role ``backing``). libvirt records the chain of a running domain; for a shut-off domain the
    chain is read from the image headers, as qemu will read it at the next start.
    """

    def __init__(
        self,
        inventories: Iterable[HostInventory],
        chain_of: Callable[[str], list[str]] = default_chain,
    ):
        self.inventories = [i for i in inventories if not i.remote]
        self._chain_of = chain_of
        self.disks: list[DiskUse] = []
        for inv in self.inventories:
            for dom in inv.domains:
                for disk in dom.disks:
                    path = disk_path(disk, inv.volumes)
                    if disk.device in DISK_DEVICES and path and path.startswith("/"):
                        self.disks.append(DiskUse(dom, disk, backing.canonical(path)))
        self._chains: dict[int, list[tuple[str, FileId | None]]] | None = None

    @classmethod
    def read(cls, uris: Sequence[str] | None = None) -> tuple[DomainIndex, Hosts]:
        hosts = read_hosts(uris)
        return cls(hosts.local), hosts

    @classmethod
    def of_remote_host(cls, inventory: HostInventory) -> DomainIndex:
        """The domain disks of another host (``qemu+ssh://...``), with its paths as that host
        writes them: never resolved or stat'ed here. The graph of that host's volumes
        (``core.virt.remote.scan_host``) follows each disk's chain itself."""
        index = cls(())
        index.inventories = [inventory]
        for dom in inventory.domains:
            for disk in dom.disks:
                path = disk_path(disk, inventory.volumes)
                if disk.device in DISK_DEVICES and path and path.startswith("/"):
                    index.disks.append(DiskUse(dom, disk, posixpath.normpath(path)))
        return index

    def _disk_chains(self) -> dict[int, list[tuple[str, FileId | None]]]:
        if self._chains is None:
            self._chains = {}
            for n, du in enumerate(self.disks):
                self._chains[n] = [(p, file_id(p)) for p in self.chain_of(du)]
        return self._chains

    def chain_of(self, disk: DiskUse) -> list[str]:
        """``disk``'s file and the files below it, top first, as qemu will open them: read
        from the headers, or libvirt's recorded chain where it knows more (a protocol, a
        running domain's chain)."""
        names = self._chain_of(disk.path)
        recorded = [b.path for b in disk.disk.backing]
        if len(recorded) + 1 > len(names):
            names = [disk.path, *recorded]
        return names

    def uses_of(self, path: str) -> list[DomainUse]:
        """Every domain disk that reads ``path``, directly or through its backing chain."""
        target = backing.canonical(path)
        key = file_id(target)
        out: list[DomainUse] = []
        for n, chain in self._disk_chains().items():
            for depth, (p, fid) in enumerate(chain):
                if p == target or (key is not None and fid == key):
                    out.append(self.disks[n].use(Role.TOP if depth == 0 else Role.BACKING))
                    break
        return out

    def top_uses(self) -> list[DiskUse]:
        """Each domain disk that names a file on this machine (the graph follows the chain)."""
        return list(self.disks)

    def domains(self) -> list[Domain]:
        return [d for inv in self.inventories for d in inv.domains]


@dataclass(frozen=True)
class DomainSource:
    """Where to ask which domains use which files: the connections a user named, or (None) the
    defaults tried quietly. Plans hold one and read it afresh at each check (a domain can be
    defined between the preview and the run), as the lock guards read the locks afresh."""

    uris: tuple[str, ...] | None = None

    def read(self) -> tuple[DomainIndex, Hosts]:
        """A fresh index of this machine's domain disks, and the hosts as read (with a note for
        each connection asked for by name that failed)."""
        return DomainIndex.read(self.uris)
