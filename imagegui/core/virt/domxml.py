"""libvirt's domain and volume XML read into :mod:`model` records, and nothing else.

Pure functions of the XML text, so they are tested on documents written by hand as well as on
ones a real libvirtd returns. Only the elements imagegui needs are read; anything else (network
disks, unknown devices, a schema from a newer libvirt) is skipped, never an error, because one odd
domain must not hide the others.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from imagegui.core.virt.model import BackingEntry, Domain, DomainDisk, Volume


class BadXML(ValueError):
    """libvirt returned XML this module cannot read (says which document and why)."""


def _parse(text: str, what: str) -> ET.Element:
    try:
        return ET.fromstring(text)
    except ET.ParseError as exc:
        raise BadXML(f"cannot read the XML of {what}: {exc}") from None


def _source_path(disk_type: str, source: ET.Element | None) -> str | None:
    if source is None:
        return None
    if disk_type == "file":
        return source.get("file")
    if disk_type == "block":
        return source.get("dev")
    if disk_type == "dir":
        return source.get("dir")
    return None


def _backing_chain(element: ET.Element) -> tuple[BackingEntry, ...]:
    """``<backingStore type='file'><format type='qcow2'/><source file='...'/><backingStore .../>``
    nested levels, top first; stops at an empty ``<backingStore/>`` (the chain's end)."""
    chain: list[BackingEntry] = []
    node = element.find("backingStore")
    while node is not None and len(chain) < 256:
        path = _source_path(node.get("type", "file"), node.find("source"))
        if path is None:
            break
        fmt = node.find("format")
        chain.append(BackingEntry(path, fmt.get("type") if fmt is not None else None))
        node = node.find("backingStore")
    return tuple(chain)


def parse_disk(element: ET.Element) -> DomainDisk:
    disk_type = element.get("type", "file")
    source = element.find("source")
    driver = element.find("driver")
    target = element.find("target")
    return DomainDisk(
        target=target.get("dev", "") if target is not None else "",
        device=element.get("device", "disk"),
        type=disk_type,
        path=_source_path(disk_type, source),
        format=driver.get("type") if driver is not None else None,
        readonly=element.find("readonly") is not None,
        pool=source.get("pool") if source is not None and disk_type == "volume" else None,
        volume=source.get("volume") if source is not None and disk_type == "volume" else None,
        backing=_backing_chain(element),
    )


def parse_domain(
    text: str, uri: str, state: str, persistent: bool = True, name: str = ""
) -> Domain:
    """A domain from ``virDomainGetXMLDesc``; ``state`` in virsh's words (``model.STATE_NAMES``).
    ``name`` labels errors when the XML itself cannot be read."""
    root = _parse(text, f"domain {name or '?'} at {uri}")
    return Domain(
        uri=uri,
        name=root.findtext("name", name),
        uuid=root.findtext("uuid", ""),
        state=state,
        disks=tuple(parse_disk(d) for d in root.iterfind("devices/disk")),
        persistent=persistent,
    )


def _int(element: ET.Element, tag: str) -> int:
    node = element.find(tag)
    if node is None or not node.text:
        return 0
    try:
        value = int(node.text)
    except ValueError:
        return 0
    unit = node.get("unit", "bytes")
    return value * _UNITS.get(unit, 1)


_UNITS = {"bytes": 1, "B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "TiB": 1024**4}


def parse_volume(text: str, uri: str, pool: str) -> Volume:
    """A volume from ``virStorageVolGetXMLDesc``."""
    root = _parse(text, f"a volume of pool {pool} at {uri}")
    fmt = root.find("target/format")
    back = root.find("backingStore")
    back_path = back.findtext("path") if back is not None else None
    back_fmt = back.find("format") if back is not None else None
    return Volume(
        uri=uri,
        pool=pool,
        name=root.findtext("name", ""),
        path=root.findtext("target/path", "") or root.findtext("key", ""),
        format=fmt.get("type") if fmt is not None else None,
        capacity=_int(root, "capacity"),
        allocation=_int(root, "allocation"),
        backing_path=back_path or None,
        backing_format=back_fmt.get("type") if back_fmt is not None else None,
        type=root.get("type", "file"),
        physical=_int(root, "physical"),
        mtime=_float(root.findtext("target/timestamps/mtime")),
        backing_exists=(
            None if back is None or not back_path else back.find("permissions") is not None
        ),
    )


def _float(text: str | None) -> float:
    try:
        return float(text) if text else 0.0
    except ValueError:
        return 0.0
