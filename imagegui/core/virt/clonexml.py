"""The domain XML of a linked clone: a template domain's definition made into a new VM's.

Pure functions of XML text (no libvirt, no files), so each rule is tested on documents written
by hand and on ones a real libvirtd returns. The input is a template's *inactive* XML
(``dom.XMLDesc(VIR_DOMAIN_XML_INACTIVE)``: what it boots next time, not a running instance's
live state) or the machine definition ``virt-install --print-xml`` made. The output differs from
it only where two VMs cannot share a value, as virt-clone does it:

- a new ``<name>``; no ``<uuid>``, ``<mac address>``, interface ``<target dev>``, ``<title>`` or
  SMBIOS uuid entry (libvirt makes new ones; an SMBIOS uuid would even become the domain's);
- the one disk that uses the base now names the new overlay, ``<driver type='qcow2'/>``, without
  ``<backingStore>`` (libvirt reads the chain from the overlay's header);
- what belongs to one instance: fixed graphics ports (autoport instead), guest-agent socket paths
  named after the template, the UEFI variable store (``<nvram>``: a fresh one is made at the first
  start), a VM generation id, and dynamic security labels;
- everything else (a cloud-init ISO, data disks, memory, network) is left alone; writable disks
  the clone would share with its template are reported, because two VMs writing one disk
  corrupt it.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from imagegui.core.virt.domxml import BadXML

#: ``<disk device=...>`` values a guest writes to unless marked read-only.
WRITABLE_DEVICES = ("disk", "lun")


@dataclass(frozen=True)
class SharedDisk:
    """A disk of the template the clone keeps as it is (the same file for both VMs)."""

    target: str
    device: str
    path: str
    #: The guest can write it (not ``<readonly/>``, ``<shareable/>`` or ``<transient/>``).
    writable: bool


@dataclass(frozen=True)
class CloneDefinition:
    """The new domain's XML and what it shares with the template."""

    xml: str
    #: The guest device that boots the overlay (``vda``).
    target: str
    shared: tuple[SharedDisk, ...] = ()
    #: Instance-specific settings that were reset, one sentence each ("graphics port ...").
    notes: tuple[str, ...] = field(default=())

    @property
    def shared_writable(self) -> list[SharedDisk]:
        return [d for d in self.shared if d.writable]


def _parse(text: str, what: str) -> ET.Element:
    """The document's root; namespace prefixes it declares (``qemu:``, ``libosinfo:``) are
    registered so the output keeps them instead of ``ns0:``."""
    try:
        for _event, (prefix, uri) in ET.iterparse(io.StringIO(text), events=("start-ns",)):
            if prefix:
                ET.register_namespace(prefix, uri)
        return ET.fromstring(text)
    except ET.ParseError as exc:
        raise BadXML(f"cannot read the XML of {what}: {exc}") from None


def _text(root: ET.Element) -> str:
    ET.indent(root, "  ")
    return ET.tostring(root, encoding="unicode") + "\n"


def _drop(parent: ET.Element, tag: str) -> None:
    for child in parent.findall(tag):
        parent.remove(child)


def _disk_source(disk: ET.Element) -> str:
    source = disk.find("source")
    if source is None:
        return ""
    for attr in ("file", "dev", "dir", "name"):
        if source.get(attr):
            return source.get(attr, "")
    if source.get("volume"):
        return f"{source.get('pool', '')}/{source.get('volume')}"
    return ""


def strip_identity(root: ET.Element, name: str) -> list[str]:
    """Gives ``root`` (a ``<domain>``) the name ``name`` and takes away every value that
    identifies one instance; returns a sentence per setting reset that a user may care about."""
    notes: list[str] = []
    name_el = root.find("name")
    if name_el is None:
        name_el = ET.SubElement(root, "name")
        root.remove(name_el)
        root.insert(0, name_el)
    name_el.text = name
    _drop(root, "uuid")
    _drop(root, "title")
    for genid in root.findall("genid"):
        genid.text = None  # empty: libvirt generates one
    for system in root.findall("sysinfo/system"):
        for entry in system.findall("entry"):
            if entry.get("name") == "uuid":
                system.remove(entry)
    os_el = root.find("os")
    if os_el is not None and os_el.find("nvram") is not None:
        _drop(os_el, "nvram")
        notes.append(
            "the template's UEFI variable store is not shared: libvirt makes a fresh one for the "
            "clone at its first start (boot entries the template added are not copied)"
        )
    for seclabel in root.findall("seclabel"):
        if seclabel.get("type", "dynamic") == "dynamic":
            _drop(seclabel, "label")
            _drop(seclabel, "imagelabel")
    devices = root.find("devices")
    if devices is None:
        return notes
    for iface in devices.findall("interface"):
        _drop(iface, "mac")
        target = iface.find("target")
        if target is not None and iface.get("type") != "ethernet":
            iface.remove(target)
    for graphics in devices.findall("graphics"):
        port = graphics.get("port")
        if graphics.get("autoport") == "no" or (port and port != "-1"):
            for attr in ("port", "tlsPort", "websocket"):
                graphics.attrib.pop(attr, None)
            graphics.set("autoport", "yes")
            notes.append(
                f"the {graphics.get('type', '')} display's fixed port becomes automatic (two VMs "
                "cannot listen on one port)"
            )
    for channel in devices.findall("channel"):
        source, target = channel.find("source"), channel.find("target")
        tname = target.get("name") if target is not None else None
        if (
            channel.get("type") == "unix"
            and source is not None
            and tname
            and tname in source.get("path", "")
        ):
            source.attrib.pop("path")  # libvirt names a socket after the new domain
    return notes


def _overlay_disk(disk: ET.Element, overlay: str) -> None:
    """Makes ``disk`` read ``overlay`` (a qcow2 file), keeping its target, bus, cache and the
    rest of its driver settings."""
    disk.set("type", "file")
    source = disk.find("source")
    index = list(disk).index(source) if source is not None else 0
    for tag in ("source", "backingStore", "mirror"):
        _drop(disk, tag)
    new = ET.Element("source", {"file": overlay})
    disk.insert(index, new)
    driver = disk.find("driver")
    if driver is None:
        driver = ET.Element("driver", {"name": "qemu"})
        disk.insert(0, driver)
    driver.set("type", "qcow2")


def clone_definition(template_xml: str, name: str, overlay: str, target: str) -> CloneDefinition:
    """The clone of the template whose XML is ``template_xml``: named ``name``, its disk
    ``target`` (the one that uses the base) re-pointed to ``overlay``. Raises :class:`BadXML`
    when the XML cannot be read or has no such disk."""
    root = _parse(template_xml, "the template domain")
    if root.tag != "domain":
        raise BadXML(f"the template's XML is a <{root.tag}>, not a <domain>")
    notes = strip_identity(root, name)
    found = False
    shared: list[SharedDisk] = []
    for disk in root.iterfind("devices/disk"):
        tgt = disk.find("target")
        dev = tgt.get("dev", "") if tgt is not None else ""
        if dev == target and not found:
            _overlay_disk(disk, overlay)
            found = True
            continue
        path = _disk_source(disk)
        if not path:
            continue  # an empty CD drive
        device = disk.get("device", "disk")
        writable = device in WRITABLE_DEVICES and not any(
            disk.find(t) is not None for t in ("readonly", "shareable", "transient")
        )
        shared.append(SharedDisk(dev, device, path, writable))
    if not found:
        raise BadXML(f"the template has no disk {target}")
    return CloneDefinition(_text(root), target, tuple(shared), tuple(notes))


def new_disk(overlay: str, target: str = "vda", bus: str = "virtio") -> ET.Element:
    """``<disk>`` for a qcow2 overlay, as ``virt-install --disk path=..,format=qcow2`` writes it."""
    disk = ET.Element("disk", {"type": "file", "device": "disk"})
    ET.SubElement(disk, "driver", {"name": "qemu", "type": "qcow2"})
    ET.SubElement(disk, "source", {"file": overlay})
    ET.SubElement(disk, "target", {"dev": target, "bus": bus})
    return disk


def fresh_definition(machine_xml: str, name: str, overlay: str) -> CloneDefinition:
    """A new domain from ``virt-install --print-xml --disk none`` output: the overlay added as
    its first disk (``vda``, virtio), no UUID or MAC (libvirt makes them at define, so the same
    inputs give the same XML each time they are planned)."""
    root = _parse(machine_xml, "virt-install's definition")
    if root.tag != "domain":
        raise BadXML(f"virt-install printed a <{root.tag}>, not a <domain>")
    notes = strip_identity(root, name)
    devices = root.find("devices")
    if devices is None:
        devices = ET.SubElement(root, "devices")
    used = {t.get("dev") for t in devices.iterfind("disk/target")}
    target = next(f"vd{c}" for c in "abcdefghijklmnopqrstuvwxyz" if f"vd{c}" not in used)
    emulator = devices.find("emulator")
    index = list(devices).index(emulator) + 1 if emulator is not None else 0
    devices.insert(index, new_disk(overlay, target))
    return CloneDefinition(_text(root), target, (), tuple(notes))
