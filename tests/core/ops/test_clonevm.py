"""clone-vm against a real libvirtd: the domain it defines boots the new overlay (the base below
it), with a fresh UUID and MAC and the template's other disks untouched; without a template the
machine comes from virt-install; a refused definition leaves no overlay; undo removes both while
the VM has never run, and refuses once it has."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import qemu_img, qemu_info
from libvirt_fixtures import unique_name
from opshelpers import qemu_io

from imagegui.core.jobs import CancelToken, no_progress
from imagegui.core.ops import journal
from imagegui.core.ops.clonevm import CloneVmError, plan_clone_vm
from imagegui.core.ops.clonevm_undo import plan_undo_clone_vm
from imagegui.core.ops.plan import GuardRefused


@pytest.fixture(autouse=True)
def _journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEGUI_JOURNAL", str(tmp_path / "journal.jsonl"))


@pytest.fixture
def clones(libvirt_conn):
    """Names of VMs a test makes through clone-vm; each is undefined after the test."""
    import libvirt

    names: list[str] = []
    yield names
    for name in names:
        try:
            dom = libvirt_conn.lookupByName(name)
        except libvirt.libvirtError:
            continue
        if dom.isActive():
            dom.destroy()
        dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)


def virsh(uri: str, *args: str) -> str:
    if shutil.which("virsh") is None:
        pytest.skip("virsh is not installed (apt-get install libvirt-clients)")
    done = subprocess.run(["virsh", "-q", "-c", uri, *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _template(tmp_path: Path, define_domain):
    """base.qcow2, the template web01 booting its own overlay of it, with a cloud-init ISO."""
    base = tmp_path / "base.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", base, "64M")
    top = tmp_path / "web01.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", top)
    seed = tmp_path / "seed.iso"
    qemu_img("create", "-q", "-f", "raw", seed, "1M")
    cdrom = (
        "<disk type='file' device='cdrom'><driver name='qemu' type='raw'/>"
        f"<source file='{seed}'/><target dev='sda' bus='sata'/><readonly/></disk>"
    )
    dom = define_domain(disks=[top], extra_xml=cdrom)
    return base, seed, dom


def test_clone_from_a_template_defines_a_domain_on_the_new_overlay(
    libvirt_uri, libvirt_conn, define_domain, define_pool, clones, tmp_path
):
    base, seed, tmpl = _template(tmp_path, define_domain)
    name = unique_name("clone")
    clones.append(name)
    plan = plan_clone_vm(str(base), name, template=tmpl.name(), uri=libvirt_uri)
    assert not plan.refused, plan.describe()
    overlay = tmp_path / f"{name}.qcow2"
    assert plan.commands == [
        ["qemu-img", "create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", str(overlay)]
    ]
    assert f'<source file="{overlay}" />' in plan.xml and plan.disk == "vda"
    assert f"Domain XML defined on {libvirt_uri}:" in plan.describe()

    result = plan.run()

    info = qemu_info(overlay)
    assert info["backing-filename"] == "base.qcow2" and info["backing-filename-format"] == "qcow2"
    xml = virsh(libvirt_uri, "dumpxml", name)
    assert f"<source file='{overlay}'/>" in xml
    assert "<driver name='qemu' type='qcow2'/>" in xml
    assert f"<source file='{seed}'/>" in xml  # the ISO disk untouched
    assert str(tmp_path / "web01.qcow2") not in xml
    assert virsh(libvirt_uri, "domstate", name).strip() == "shut off"
    rows = [line.split() for line in virsh(libvirt_uri, "domblklist", name).splitlines()]
    assert rows == [["vda", str(overlay)], ["sda", str(seed)]]
    clone = libvirt_conn.lookupByName(name)
    assert clone.UUIDString() == result.uuid != tmpl.UUIDString()
    mac = xml.split("<mac address='")[1][:17]
    assert mac.startswith("52:54:00:") and mac not in tmpl.XMLDesc()
    # An inactive domain's XML does not list the chain; libvirt's storage view of the overlay
    # does: the base below it, with its format.
    define_pool(tmp_path)
    vol = virsh(libvirt_uri, "vol-dumpxml", str(overlay))
    chain = vol.split("<backingStore>")[1]
    assert f"<path>{base}</path>" in chain and "<format type='qcow2'/>" in chain
    (entry,) = journal.clone_entries()
    assert (entry.name, entry.uuid, entry.overlay, entry.template) == (
        name,
        result.uuid,
        str(overlay),
        tmpl.name(),
    )

    undo = plan_undo_clone_vm(name, libvirt_uri)
    assert not undo.refused, undo.describe()
    undo.run()
    assert name not in [d.name() for d in libvirt_conn.listAllDomains()]
    assert not overlay.exists() and base.exists() and (tmp_path / "web01.qcow2").exists()
    assert tmpl.name() in [d.name() for d in libvirt_conn.listAllDomains()]
    assert plan_undo_clone_vm(name, libvirt_uri).refused  # undone once


def pools_on(conn, directory) -> list[str]:
    """Pools whose directory is inside ``directory``: only this test's own (other test sessions
    share the daemon and define pools of their own at any moment)."""
    inside = []
    for pool in conn.listAllStoragePools():
        path = ET.fromstring(pool.XMLDesc(0)).findtext("target/path") or ""
        if path == str(directory) or path.startswith(f"{directory}/"):
            inside.append(pool.name())
    return sorted(inside)


@pytest.mark.skipif(shutil.which("virt-install") is None, reason="virtinst is not installed")
def test_without_a_template_the_machine_comes_from_virt_install(
    libvirt_uri, libvirt_conn, clones, tmp_path
):
    base = tmp_path / "base.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", base, "64M")
    name = unique_name("fresh")
    clones.append(name)
    pools = pools_on(libvirt_conn, tmp_path)
    overlay = tmp_path / "vms" / "fresh.qcow2"
    overlay.parent.mkdir()

    plan = plan_clone_vm(str(base), name, str(overlay), uri=libvirt_uri)

    assert not plan.refused, plan.describe()
    assert plan.made_by[:2] == ["virt-install", "--connect"] and "--print-xml" in plan.made_by
    # virt-install was asked without the disk: it would have made a storage pool for the folder.
    assert pools_on(libvirt_conn, tmp_path) == pools == []
    assert not overlay.exists()
    plan.run()
    xml = virsh(libvirt_uri, "dumpxml", name)
    assert f"<source file='{overlay}'/>" in xml and "<target dev='vda' bus='virtio'/>" in xml
    assert "<memory unit='KiB'>1048576</memory>" in xml and "<interface type='user'>" in xml
    assert qemu_info(overlay)["backing-filename"] == "../base.qcow2"
    assert pools_on(libvirt_conn, tmp_path) == pools == []


def test_a_definition_libvirt_refuses_leaves_no_overlay(
    libvirt_uri, libvirt_conn, define_domain, tmp_path
):
    import libvirt

    base, _seed, tmpl = _template(tmp_path, define_domain)
    name = unique_name("refused")
    plan = plan_clone_vm(str(base), name, template=tmpl.name(), uri=libvirt_uri)
    assert not plan.refused, plan.describe()
    before = sorted(os.listdir(tmp_path))
    # libvirt itself refuses this (the plan's guards cannot know every rule of its schema).
    bad = dataclasses.replace(plan, xml=plan.xml.replace('bus="virtio"', 'bus="nonsense"'))
    with pytest.raises(CloneVmError, match="libvirt refused to define .* removed again"):
        bad._execute(no_progress, CancelToken())
    assert sorted(os.listdir(tmp_path)) == before
    with pytest.raises(libvirt.libvirtError):
        libvirt_conn.lookupByName(name)
    assert journal.clone_entries() == []


def test_guards_name_taken_template_not_using_the_base_relative_remote_path(
    libvirt_uri, define_domain, tmp_path
):
    base, _seed, tmpl = _template(tmp_path, define_domain)
    other = tmp_path / "other.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", other, "64M")
    stranger = define_domain(disks=[other])

    taken = plan_clone_vm(str(base), tmpl.name(), uri=libvirt_uri)
    assert [f.code for f in taken.blocking()] == ["domain-exists"]
    assert f"a VM called {tmpl.name()} is already defined" in taken.blocking()[0].message

    wrong = plan_clone_vm(str(base), unique_name(), template=stranger.name(), uri=libvirt_uri)
    assert [f.code for f in wrong.blocking()] == ["template-not-using-base"]

    missing = plan_clone_vm(str(base), unique_name(), template=unique_name(), uri=libvirt_uri)
    assert [f.code for f in missing.blocking()] == ["no-template"]

    # Another host's paths are that host's: a relative one means nothing there (refused before
    # any connection is made).
    remote = plan_clone_vm("base.qcow2", "x", uri="qemu+ssh://root@127.0.0.1/system")
    assert {f.code for f in remote.blocking()} == {"remote-path"}

    (tmp_path / "web02.qcow2").write_bytes(b"mine")
    exists = plan_clone_vm(str(base), "web02", template=tmpl.name(), uri=libvirt_uri)
    assert "target-exists" in [f.code for f in exists.blocking()]
    assert (tmp_path / "web02.qcow2").read_bytes() == b"mine"

    bad = plan_clone_vm(str(base), "a/b", uri=libvirt_uri)
    assert "bad-name" in [f.code for f in bad.blocking()]
    # A template that boots the base itself: the clone works, with the hazard named.
    direct = define_domain(disks=[base])
    plan = plan_clone_vm(str(base), unique_name(), template=direct.name(), uri=libvirt_uri)
    assert not plan.refused and "template-boots-base" in [f.code for f in plan.warnings]


def test_undo_is_refused_once_the_vm_has_written_its_disk(
    libvirt_uri, libvirt_conn, define_domain, clones, tmp_path
):
    base, _seed, tmpl = _template(tmp_path, define_domain)
    name = unique_name("used")
    clones.append(name)
    plan_clone_vm(str(base), name, template=tmpl.name(), uri=libvirt_uri).run()
    overlay = tmp_path / f"{name}.qcow2"
    qemu_io(overlay, "write -P 0x5a 0 64k")  # what a guest's first boot does to it

    undo = plan_undo_clone_vm(name, libvirt_uri)

    assert [f.code for f in undo.blocking()] == ["changed-since"]
    assert "has run" in undo.blocking()[0].message
    with pytest.raises(GuardRefused):
        undo.run()
    assert overlay.exists() and libvirt_conn.lookupByName(name).name() == name
