"""The clone's domain XML from a template's (or virt-install's): only what two VMs cannot share
changes, the disk that used the base boots the overlay, everything else is left alone."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from imagegui.core.virt.clonexml import clone_definition, fresh_definition
from imagegui.core.virt.domxml import BadXML

OVERLAY = "/images/web02.qcow2"

TEMPLATE = """<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>web01</name>
  <uuid>8f0b1c1e-2a3b-4c5d-8e9f-0a1b2c3d4e5f</uuid>
  <title>The web server</title>
  <genid>11111111-2222-3333-4444-555555555555</genid>
  <memory unit='KiB'>1048576</memory>
  <sysinfo type='smbios'>
    <system>
      <entry name='manufacturer'>ACME</entry>
      <entry name='uuid'>8f0b1c1e-2a3b-4c5d-8e9f-0a1b2c3d4e5f</entry>
    </system>
  </sysinfo>
  <os>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
    <loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE.fd</loader>
    <nvram template='/usr/share/OVMF/OVMF_VARS.fd'>/var/lib/libvirt/qemu/nvram/web01_VARS.fd</nvram>
  </os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='none' discard='unmap'/>
      <source file='/images/web01.qcow2'>
        <seclabel model='dac' relabel='no'/>
      </source>
      <backingStore type='file'>
        <format type='qcow2'/>
        <source file='/images/base.qcow2'/>
        <backingStore/>
      </backingStore>
      <target dev='vda' bus='virtio'/>
      <address type='pci' domain='0x0000' bus='0x04' slot='0x00' function='0x0'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='/images/data.raw'/>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='/images/cluster.raw'/>
      <target dev='vdc' bus='virtio'/>
      <shareable/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='/images/seed.iso'/>
      <target dev='sda' bus='sata'/>
      <readonly/>
    </disk>
    <disk type='file' device='cdrom'>
      <target dev='sdb' bus='sata'/>
      <readonly/>
    </disk>
    <interface type='network'>
      <mac address='52:54:00:aa:bb:cc'/>
      <source network='default'/>
      <target dev='vnet3'/>
      <model type='virtio'/>
    </interface>
    <interface type='user'>
      <mac address='52:54:00:dd:ee:ff'/>
    </interface>
    <channel type='unix'>
      <source mode='bind' path='/var/lib/libvirt/qemu/channel/target/web01.org.qemu.guest_agent.0'/>
      <target type='virtio' name='org.qemu.guest_agent.0'/>
    </channel>
    <graphics type='vnc' port='5901' autoport='no' listen='127.0.0.1'/>
  </devices>
  <seclabel type='dynamic' model='selinux' relabel='yes'>
    <label>system_u:system_r:svirt_t:s0:c1,c2</label>
    <imagelabel>system_u:object_r:svirt_image_t:s0:c1,c2</imagelabel>
  </seclabel>
  <seclabel type='static' model='dac' relabel='no'>
    <label>+107:+107</label>
  </seclabel>
  <qemu:commandline>
    <qemu:arg value='-no-user-config'/>
  </qemu:commandline>
</domain>
"""


def _clone(xml: str = TEMPLATE, target: str = "vda"):
    made = clone_definition(xml, "web02", OVERLAY, target)
    return made, ET.fromstring(made.xml)


def _disk(root: ET.Element, target: str) -> ET.Element:
    return next(d for d in root.iterfind("devices/disk") if d.find("target").get("dev") == target)


def _norm(el: ET.Element) -> list:
    return [(e.tag, e.attrib, (e.text or "").strip()) for e in el.iter()]


def test_new_name_and_nothing_that_identifies_the_template():
    made, root = _clone()
    assert root.findtext("name") == "web02"
    assert root.find("uuid") is None  # libvirt makes a new one
    assert root.find("title") is None
    assert root.find("genid") is not None and not root.findtext("genid")
    entries = [e.get("name") for e in root.iterfind("sysinfo/system/entry")]
    assert entries == ["manufacturer"]  # an SMBIOS uuid would become the domain's UUID
    assert root.find(".//mac") is None
    ifaces = root.findall("devices/interface")
    assert len(ifaces) == 2 and all(i.find("target") is None for i in ifaces)
    assert ifaces[0].find("source").get("network") == "default"


def test_the_disk_that_used_the_base_boots_the_overlay_with_its_settings():
    _, root = _clone()
    vda = _disk(root, "vda")
    assert vda.get("type") == "file"
    assert vda.find("source").attrib == {"file": OVERLAY}  # no template relabel specifics
    assert vda.find("backingStore") is None  # libvirt reads the chain from the header
    driver = vda.find("driver")
    assert driver.attrib == {"name": "qemu", "type": "qcow2", "cache": "none", "discard": "unmap"}
    assert vda.find("target").get("bus") == "virtio" and vda.find("address") is not None


def test_other_disks_are_left_alone_and_shared_writable_ones_reported():
    made, root = _clone()
    original = ET.fromstring(TEMPLATE)
    for target in ("vdb", "vdc", "sda", "sdb"):
        assert _norm(_disk(root, target)) == _norm(_disk(original, target))
    shared = {d.target: d for d in made.shared}
    assert set(shared) == {"vdb", "vdc", "sda"}  # the empty CD drive shares nothing
    assert [d.target for d in made.shared_writable] == ["vdb"]
    assert shared["sda"].path == "/images/seed.iso" and not shared["sda"].writable
    assert not shared["vdc"].writable  # <shareable/>: meant for two VMs


def test_instance_specific_settings_are_reset_and_said():
    made, root = _clone()
    assert root.find("os/nvram") is None
    assert root.find("os/loader").text == "/usr/share/OVMF/OVMF_CODE.fd"
    graphics = root.find("devices/graphics")
    assert graphics.get("autoport") == "yes" and graphics.get("port") is None
    assert graphics.get("listen") == "127.0.0.1"
    channel = root.find("devices/channel/source")
    assert channel.get("path") is None and channel.get("mode") == "bind"
    dynamic, static = root.findall("seclabel")
    assert dynamic.find("label") is None and dynamic.find("imagelabel") is None
    assert static.findtext("label") == "+107:+107"  # the admin's choice, kept
    assert any("UEFI" in n for n in made.notes)
    assert any("port becomes automatic" in n for n in made.notes)


def test_namespaced_elements_keep_their_prefix():
    made, _ = _clone()
    assert "<qemu:commandline>" in made.xml and "ns0:" not in made.xml
    assert 'xmlns:qemu="http://libvirt.org/schemas/domain/qemu/1.0"' in made.xml


def test_a_volume_disk_becomes_a_file_disk():
    xml = """<domain type='kvm'><name>t</name><devices>
      <disk type='volume' device='disk'><driver name='qemu' type='raw'/>
        <source pool='default' volume='base.img'/><target dev='sda' bus='scsi'/></disk>
    </devices></domain>"""
    made, root = _clone(xml, "sda")
    disk = _disk(root, "sda")
    assert disk.get("type") == "file" and disk.find("source").attrib == {"file": OVERLAY}
    assert disk.find("driver").get("type") == "qcow2" and made.target == "sda"


def test_no_such_disk_or_not_a_domain_is_an_error():
    with pytest.raises(BadXML, match="no disk vdz"):
        clone_definition(TEMPLATE, "web02", OVERLAY, "vdz")
    with pytest.raises(BadXML, match="not a <domain>"):
        clone_definition("<network/>", "web02", OVERLAY, "vda")
    with pytest.raises(BadXML, match="cannot read"):
        clone_definition("<domain>", "web02", OVERLAY, "vda")


VIRT_INSTALL = """<domain type="kvm">
  <name>web02</name>
  <uuid>3729c021-0936-4bfa-85d5-e6c89f30f314</uuid>
  <memory>1048576</memory>
  <os><type arch="x86_64" machine="pc-i440fx-7.2">hvm</type><boot dev="hd"/></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <controller type="usb" model="ich9-ehci1"/>
    <interface type="user"><mac address="52:54:00:30:b6:e1"/><model type="e1000"/></interface>
  </devices>
</domain>
"""


def test_fresh_definition_adds_the_overlay_as_the_first_disk():
    made = fresh_definition(VIRT_INSTALL, "web02", OVERLAY)
    root = ET.fromstring(made.xml)
    assert made.target == "vda" and made.shared == ()
    devices = list(root.find("devices"))
    assert [d.tag for d in devices[:2]] == ["emulator", "disk"]
    disk = devices[1]
    assert disk.attrib == {"type": "file", "device": "disk"}
    assert disk.find("driver").attrib == {"name": "qemu", "type": "qcow2"}
    assert disk.find("source").attrib == {"file": OVERLAY}
    assert disk.find("target").attrib == {"dev": "vda", "bus": "virtio"}
    # No UUID or MAC: libvirt makes them, so planning twice gives the same XML.
    assert root.find("uuid") is None and root.find(".//mac") is None
    assert fresh_definition(VIRT_INSTALL, "web02", OVERLAY).xml == made.xml
