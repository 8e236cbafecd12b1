"""The records read from libvirt: domains with their disks, storage volumes, and who uses what.

Plain dataclasses built from libvirt's XML (``domxml``), so everything above this layer (the
graph, the guards, the window) reasons about VMs without importing libvirt.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from imagegui.core.strenum import StrEnum


class Role(StrEnum):
    """How a domain's disk uses an image: as the file the disk names, or below it in its chain."""

    TOP = "top"
    BACKING = "backing"


#: ``virDomainState`` codes in virsh's words (``virsh list --all`` shows these).
STATE_NAMES = {
    0: "no state",
    1: "running",
    2: "idle",
    3: "paused",
    4: "in shutdown",
    5: "shut off",
    6: "crashed",
    7: "pmsuspended",
}

#: States in which the domain's QEMU process holds its disks open (locks show it too).
ACTIVE_STATES = frozenset({"running", "idle", "paused", "in shutdown", "pmsuspended"})


@dataclass(frozen=True)
class BackingEntry:
    """One ``<backingStore>`` level of a disk as libvirt recorded it (running domains, and
    domains whose XML was written with the chain)."""

    path: str
    format: str | None


@dataclass(frozen=True)
class DomainDisk:
    """One ``<disk>`` of a domain, as its XML says."""

    #: The guest's device name (``<target dev=...>``): vda, sda, hdc.
    target: str
    #: ``disk``, ``cdrom``, ``floppy`` or ``lun``.
    device: str
    #: ``<disk type=...>``: file, block, volume, network, dir, nvme.
    type: str
    #: The host file (or block device) the disk reads; None for network disks and empty drives.
    path: str | None
    #: ``<driver type=...>``: the format the domain opens it as (qcow2, raw), if stated.
    format: str | None = None
    readonly: bool = False
    #: For ``type='volume'``: the pool and volume the disk names (``path`` is resolved from
    #: the pool when the inventory knows it).
    pool: str | None = None
    volume: str | None = None
    #: The backing chain below ``path`` as libvirt recorded it, top first (often empty for a
    #: shut-off domain: libvirt fills it in when the domain starts).
    backing: tuple[BackingEntry, ...] = ()


@dataclass(frozen=True)
class Domain:
    """A defined or running VM on one libvirt host."""

    uri: str
    name: str
    uuid: str
    #: In virsh's words (:data:`STATE_NAMES`): "running", "shut off", ...
    state: str
    disks: tuple[DomainDisk, ...] = ()
    #: False for a transient domain (running, never defined: gone when it stops).
    persistent: bool = True

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    def describe(self) -> str:
        """``web01 (shut off)``: how the window and the messages name it."""
        return f"{self.name} ({self.state})"


@dataclass(frozen=True)
class DomainUse:
    """One domain disk that uses an image (``scan --json``'s ``domains`` entries)."""

    uri: str
    name: str
    state: str
    disk: str
    role: Role

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    def describe(self) -> str:
        """``web01 (shut off)``."""
        return f"{self.name} ({self.state})"

    def to_json(self) -> dict[str, str]:
        return {
            "uri": self.uri,
            "name": self.name,
            "state": self.state,
            "disk": self.disk,
            "role": str(self.role),
        }


@dataclass(frozen=True)
class Volume:
    """A storage pool volume as its XML describes it (local or on another host)."""

    uri: str
    pool: str
    name: str
    #: ``<target><path>``: the file on the host that holds the volume.
    path: str
    #: ``<target><format type=...>``; None when the pool does not say (e.g. a raw file).
    format: str | None
    capacity: int
    allocation: int
    backing_path: str | None = None
    backing_format: str | None = None
    #: ``<volume type=...>``: file, block, dir (a subdirectory of a dir pool), network, ...
    type: str = "file"
    #: ``<physical>``: the file's length on the host (how far its header bytes can be read).
    physical: int = 0
    #: ``<target><timestamps><mtime>``: seconds since the epoch, 0 when libvirt does not say.
    mtime: float = 0.0
    #: Whether libvirt could open the backing file when it refreshed the volume (it records the
    #: backing file's ``<permissions>`` only then): False for a missing or unreachable one,
    #: None without a backing file. The one way to tell "missing" on a remote host.
    backing_exists: bool | None = None


@dataclass
class HostInventory:
    """Everything read from one libvirt connection in one pass."""

    uri: str
    #: The host's name as libvirt reports it (``virConnectGetHostname``), for section titles.
    hostname: str = ""
    domains: list[Domain] = field(default_factory=list)
    volumes: list[Volume] = field(default_factory=list)
    #: Pools that could not be listed and why (an inactive pool, a permission): pool -> reason.
    pool_errors: dict[str, str] = field(default_factory=dict)
    #: True when the URI names another machine (``qemu+ssh://host/system``): paths in this
    #: inventory are that machine's, never files on this one.
    remote: bool = False
