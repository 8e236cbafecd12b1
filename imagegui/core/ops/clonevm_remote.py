"""clone-vm on another host (``qemu+ssh://host/system``): everything through libvirt.

The paths are that host's: nothing here stats, opens or resolves them on this machine. The
overlay is created with the storage API (``core.virt.remote``: a ``<volume>`` with its
``<backingStore>`` and the base's format recorded, in the pool of the overlay's directory), the
base's chain is followed through the volumes' XML, a template's disks are matched with the base
through the same volume chains, and the overlay's state (for the undo) is its volume's size on
disk and modification time as libvirt reports them.
"""

from __future__ import annotations

import posixpath
import xml.etree.ElementTree as ET
from typing import Any

from imagegui.core.virt.connect import binding
from imagegui.core.virt.domxml import BadXML, parse_volume
from imagegui.core.virt.inventory import DISK_DEVICES, disk_path
from imagegui.core.virt.model import Domain, DomainUse, Role, Volume
from imagegui.core.virt.remote import RemoteWriteError

#: Backing levels followed at most (a loop of volumes ends there too).
CHAIN_LIMIT = 256


def path_problem(path: str, role: str) -> str | None:
    """A remote path must be absolute: there is no working directory on the other host."""
    if not path.startswith("/"):
        return f"{role} {path!r} must be a full path on the other host"
    return None


def normal(path: str) -> str:
    """The host's path as text (``..`` and doubled slashes folded; no local lookup)."""
    return posixpath.normpath(path)


def volume(conn: Any, path: str) -> Volume | None:
    """The volume at ``path`` on the host, or None when no active pool has it."""
    libvirt = binding()
    try:
        handle = conn.storageVolLookupByPath(path)
        return parse_volume(
            handle.XMLDesc(0), conn.getURI(), handle.storagePoolLookupByVolume().name()
        )
    except (libvirt.libvirtError, BadXML):
        return None


def volume_chain(conn: Any, path: str) -> tuple[list[str], str | None]:
    """``path`` and the backing files below it as the volumes' XML says, top first; and the
    first path that is no volume of an active pool (None when the whole chain was followed)."""
    chain: list[str] = []
    current: str | None = normal(path)
    while current is not None and current not in chain and len(chain) < CHAIN_LIMIT:
        vol = volume(conn, current)
        if vol is None:
            return chain, current
        chain.append(current)
        current = normal(vol.backing_path) if vol.backing_path else None
    return chain, None


def uses_of(conn: Any, domains: list[Domain], volumes: list[Volume], path: str) -> list[DomainUse]:
    """Every disk of ``domains`` that reads ``path`` on the host, itself or below it."""
    target = normal(path)
    out: list[DomainUse] = []
    for dom in domains:
        for disk in dom.disks:
            source = disk_path(disk, volumes)
            if disk.device not in DISK_DEVICES or not source or not source.startswith("/"):
                continue
            chain, _ = volume_chain(conn, source)
            chain = chain or [normal(source)]
            if target in chain:
                role = Role.TOP if chain.index(target) == 0 else Role.BACKING
                out.append(DomainUse(dom.uri, dom.name, dom.state, disk.target, role))
    return out


def volume_state(conn: Any, path: str) -> dict[str, str] | None:
    """What changes when a VM writes the volume: its size on disk and modification time, as
    libvirt reads them now (its XML is refreshed on each request)."""
    libvirt = binding()
    try:
        root = ET.fromstring(conn.storageVolLookupByPath(path).XMLDesc(0))
    except (libvirt.libvirtError, ET.ParseError):
        return None
    return {
        "physical": root.findtext("physical") or root.findtext("allocation") or "",
        "mtime": root.findtext("target/timestamps/mtime") or "",
    }


def state_differences(recorded: dict | None, now: dict | None) -> list[str]:
    """What changed between two :func:`volume_state` readings, in words (empty: nothing)."""
    if now is None:
        return ["the volume is gone or cannot be read"]
    if not isinstance(recorded, dict):
        return ["the journal has no record of it as created"]
    out = []
    if recorded.get("physical") != now.get("physical"):
        out.append(
            f"its size on disk changed ({recorded.get('physical')} -> {now.get('physical')} bytes)"
        )
    if recorded.get("mtime") != now.get("mtime"):
        out.append("it was written since")
    return out


def delete_volume(conn: Any, path: str) -> None:
    """Removes the volume ``path`` through libvirt (the undo and a refused definition)."""
    libvirt = binding()
    try:
        conn.storageVolLookupByPath(path).delete(0)
    except libvirt.libvirtError as exc:
        why = " ".join(str(exc).split())
        raise RemoteWriteError(f"libvirt did not remove {path}: {why}") from None
