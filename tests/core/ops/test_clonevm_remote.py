"""clone-vm on another host, through ``qemu+ssh://root@127.0.0.1`` against the real libvirtd and
an sshd the fixtures start: the overlay is a volume made with the storage API (backing and its
format recorded), the domain boots it, and the undo removes both through libvirt."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import qemu_img, qemu_info
from libvirt_fixtures import unique_name
from opshelpers import qemu_io

from imagegui.core.ops import journal
from imagegui.core.ops.clonevm import plan_clone_vm, templates
from imagegui.core.ops.clonevm_undo import plan_undo_clone_vm


@pytest.fixture(autouse=True)
def _journal(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEGUI_JOURNAL", str(tmp_path_factory.mktemp("j") / "journal.jsonl"))


@pytest.fixture
def clones(libvirt_conn):
    import libvirt

    names: list[str] = []
    yield names
    for name in names:
        try:
            libvirt_conn.lookupByName(name).undefine()
        except libvirt.libvirtError:
            continue


def _template(tmp_path: Path, define_domain):
    base = tmp_path / "base.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", base, "64M")
    top = tmp_path / "web01.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", top)
    return base, define_domain(disks=[top])


def test_clone_vm_on_another_host_through_the_storage_api(
    ssh_libvirt_uri, libvirt_conn, define_domain, define_pool, clones, tmp_path
):
    base, tmpl = _template(tmp_path, define_domain)
    pool = define_pool(tmp_path)
    (uses, why) = templates(str(base), ssh_libvirt_uri)
    assert why == "" and [u.name for u in uses] == [tmpl.name()]
    name = unique_name("remote")
    clones.append(name)
    overlay = tmp_path / f"{name}.qcow2"

    plan = plan_clone_vm(str(base), name, template=tmpl.name(), uri=ssh_libvirt_uri)

    assert not plan.refused, plan.describe()
    assert plan.commands == [] and plan.remote and plan.pool == pool.name()
    caption, volume_xml = plan.documents[0]
    assert caption == f"Volume created in the storage pool {pool.name()} on {ssh_libvirt_uri}"
    assert f"<backingStore><path>{base}</path><format type='qcow2'/>" in volume_xml
    assert f'<source file="{overlay}" />' in plan.xml
    assert not overlay.exists()

    plan.run()

    info = qemu_info(overlay)
    assert info["backing-filename"] == str(base) and info["backing-filename-format"] == "qcow2"
    assert f"<source file='{overlay}'/>" in libvirt_conn.lookupByName(name).XMLDesc()
    (entry,) = journal.clone_entries()
    assert entry.uri == ssh_libvirt_uri and entry.volume_state and entry.fingerprint is None

    undo = plan_undo_clone_vm(name, ssh_libvirt_uri)
    assert not undo.refused, undo.describe()
    undo.run()
    assert not overlay.exists() and base.exists()
    assert name not in [d.name() for d in libvirt_conn.listAllDomains()]


def test_remote_refusals(
    ssh_libvirt_uri, libvirt_conn, define_domain, define_pool, clones, tmp_path
):
    base, tmpl = _template(tmp_path, define_domain)
    # No storage pool has the folder: libvirt cannot see the base, nor create a volume there.
    plan = plan_clone_vm(str(base), unique_name(), template=tmpl.name(), uri=ssh_libvirt_uri)
    assert "unreadable" in [f.code for f in plan.blocking()]
    relative = plan_clone_vm("base.qcow2", unique_name(), uri=ssh_libvirt_uri)
    assert "remote-path" in [f.code for f in relative.blocking()]

    define_pool(tmp_path)
    name = unique_name("ran")
    clones.append(name)
    plan_clone_vm(str(base), name, template=tmpl.name(), uri=ssh_libvirt_uri).run()
    overlay = tmp_path / f"{name}.qcow2"
    qemu_io(overlay, "write -P 0x5a 0 64k")  # what its first boot does
    undo = plan_undo_clone_vm(name, ssh_libvirt_uri)
    assert [f.code for f in undo.blocking()] == ["changed-since"]
    assert overlay.exists()
