"""Domain and volume XML as libvirt writes it, read into records (documents as libvirt 9 writes
them; the inventory tests read the same from a real daemon)."""

from __future__ import annotations

import pytest

from imagegui.core.virt.domxml import BadXML, parse_domain, parse_volume
from imagegui.core.virt.model import BackingEntry, DomainUse, Role

RUNNING = """<domain type='kvm' id='3'>
  <name>web01</name>
  <uuid>6f1c2f0e-4b0e-4d3e-9d2c-111111111111</uuid>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/libvirt/images/web01.qcow2' index='2'/>
      <backingStore type='file' index='3'>
        <format type='qcow2'/>
        <source file='/var/lib/libvirt/images/debian-12.qcow2'/>
        <backingStore type='file' index='4'>
          <format type='raw'/>
          <source file='/srv/base.raw'/>
          <backingStore/>
        </backingStore>
      </backingStore>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='/srv/seed.iso'/>
      <target dev='sda' bus='sata'/>
      <readonly/>
    </disk>
    <disk type='network' device='disk'>
      <source protocol='nbd' name='x'><host name='h' port='10809'/></source>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <disk type='volume' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source pool='default' volume='data.qcow2'/>
      <target dev='vdc' bus='virtio'/>
    </disk>
    <disk type='block' device='disk'>
      <source dev='/dev/vg/lv'/>
      <target dev='vdd' bus='virtio'/>
    </disk>
    <interface type='user'><mac address='52:54:00:aa:bb:cc'/></interface>
  </devices>
</domain>"""


def test_disks_their_sources_formats_and_backing_chains() -> None:
    dom = parse_domain(RUNNING, "qemu:///system", "running")
    assert (dom.name, dom.uuid, dom.state, dom.active) == (
        "web01",
        "6f1c2f0e-4b0e-4d3e-9d2c-111111111111",
        "running",
        True,
    )
    vda, sda, vdb, vdc, vdd = dom.disks
    assert (vda.target, vda.path, vda.format) == (
        "vda",
        "/var/lib/libvirt/images/web01.qcow2",
        "qcow2",
    )
    assert vda.backing == (
        BackingEntry("/var/lib/libvirt/images/debian-12.qcow2", "qcow2"),
        BackingEntry("/srv/base.raw", "raw"),
    )
    assert (sda.device, sda.readonly, sda.backing) == ("cdrom", True, ())
    assert (vdb.type, vdb.path) == ("network", None)
    assert (vdc.path, vdc.pool, vdc.volume) == (None, "default", "data.qcow2")
    assert (vdd.type, vdd.path) == ("block", "/dev/vg/lv")
    assert dom.describe() == "web01 (running)"


def test_a_shut_off_domain_and_an_empty_drive() -> None:
    xml = """<domain type='kvm'><name>db</name><uuid>u</uuid><devices>
      <disk type='file' device='cdrom'><target dev='hdc'/><readonly/></disk>
      <disk type='file' device='disk'><source file='/x/db.qcow2'/><target dev='vda'/></disk>
    </devices></domain>"""
    dom = parse_domain(xml, "qemu:///system", "shut off")
    assert not dom.active
    assert [(d.target, d.path, d.format) for d in dom.disks] == [
        ("hdc", None, None),
        ("vda", "/x/db.qcow2", None),
    ]


def test_bad_xml_names_the_domain() -> None:
    with pytest.raises(BadXML, match="domain web01 at qemu:///system"):
        parse_domain("<domain><name>", "qemu:///system", "running", name="web01")


def test_volume_with_backing_store_and_units() -> None:
    xml = """<volume type='file'>
      <name>web01.qcow2</name><key>/pool/web01.qcow2</key>
      <capacity unit='bytes'>10737418240</capacity>
      <allocation unit='KiB'>196</allocation>
      <target><path>/pool/web01.qcow2</path><format type='qcow2'/></target>
      <backingStore><path>/pool/base.qcow2</path><format type='qcow2'/></backingStore>
    </volume>"""
    vol = parse_volume(xml, "qemu+ssh://root@h/system", "images")
    assert (vol.name, vol.path, vol.format) == ("web01.qcow2", "/pool/web01.qcow2", "qcow2")
    assert (vol.capacity, vol.allocation) == (10 * 1024**3, 196 * 1024)
    assert (vol.backing_path, vol.backing_format) == ("/pool/base.qcow2", "qcow2")
    assert (vol.pool, vol.uri) == ("images", "qemu+ssh://root@h/system")
    assert vol.backing_exists is False  # no <permissions>: libvirt could not open the base


def test_volume_physical_size_mtime_type_and_an_existing_backing_file() -> None:
    xml = """<volume type='file'>
      <name>a.qcow2</name>
      <capacity unit='bytes'>1048576</capacity><allocation unit='bytes'>200704</allocation>
      <physical unit='bytes'>196616</physical>
      <target><path>/pool/a.qcow2</path><format type='qcow2'/>
        <timestamps><mtime>1796192678.553800828</mtime></timestamps></target>
      <backingStore><path>/elsewhere/base.raw</path><format type='raw'/>
        <permissions><mode>0644</mode></permissions></backingStore>
    </volume>"""
    vol = parse_volume(xml, "qemu:///system", "images")
    assert (vol.type, vol.physical, vol.backing_exists) == ("file", 196616, True)
    assert vol.mtime == pytest.approx(1796192678.5538)
    plain = parse_volume(
        "<volume type='dir'><name>sub</name><target><path>/pool/sub</path></target></volume>",
        "qemu:///system",
        "images",
    )
    assert (plain.type, plain.physical, plain.mtime, plain.backing_exists) == ("dir", 0, 0.0, None)


def test_domain_use_json_is_the_documented_record() -> None:
    use = DomainUse("qemu:///system", "web01", "shut off", "vda", Role.BACKING)
    assert use.to_json() == {
        "uri": "qemu:///system",
        "name": "web01",
        "state": "shut off",
        "disk": "vda",
        "role": "backing",
    }
    assert use.describe() == "web01 (shut off)"
    assert not use.active
