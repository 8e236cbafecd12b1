"""``imagegui clone-vm`` against the real libvirtd: --dry-run changes nothing (no file, domain,
pool or journal line), a run defines the VM and --undo removes it, refusals exit 2."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import qemu_img
from libvirt_fixtures import unique_name

from imagegui.cli import run_cli


@pytest.fixture(autouse=True)
def _journal(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path_factory.mktemp("state") / "journal.jsonl"
    monkeypatch.setenv("IMAGEGUI_JOURNAL", str(path))
    return path


def cli(capsys: pytest.CaptureFixture, *args: object) -> tuple[int, str, str]:
    status = run_cli([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def clones(libvirt_conn):
    import libvirt

    names: list[str] = []
    yield names
    for name in names:
        try:
            dom = libvirt_conn.lookupByName(name)
        except libvirt.libvirtError:
            continue
        dom.undefine()


def _world(conn, tmp_path: Path, name: str) -> tuple:
    """What a dry run must leave as it was: the files, the VM name, pools on the folder (other
    test sessions define and undefine their own meanwhile)."""
    pools = [p for p in conn.listAllStoragePools() if str(tmp_path) in p.XMLDesc()]
    return (
        sorted(os.listdir(tmp_path)),
        name in [d.name() for d in conn.listAllDomains()],
        pools,
    )


def test_dry_run_changes_nothing(
    libvirt_uri, libvirt_conn, define_domain, tmp_path, capsys, _journal
):
    base = tmp_path / "base.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", base, "64M")
    tmpl = define_domain(disks=[base])
    name = unique_name("dry")
    before = _world(libvirt_conn, tmp_path, name)
    assert before[1:] == (False, [])
    for extra in ([], ["--from-domain", tmpl.name()]):
        status, out, _ = cli(
            capsys, "clone-vm", base, name, "--connect", libvirt_uri, "--dry-run", *extra
        )
        assert status == 0, out
        assert f"$ qemu-img create -f qcow2 -b base.qcow2 -F qcow2 {tmp_path}/{name}.qcow2" in out
        assert f"Domain XML defined on {libvirt_uri}:" in out and f"<name>{name}</name>" in out
        assert "verdict: ok to run" in out
    status, out, _ = cli(capsys, "clone-vm", base, name, "--dry-run", "--json")
    plan = json.loads(out)
    assert status == 0 and plan["op"] == "clone-vm" and plan["uri"] == "qemu:///system"
    assert plan["name"] == name and f"<name>{name}</name>" in plan["domain_xml"]
    assert plan["virt_install"][0] == "virt-install" and plan["documents"]
    assert _world(libvirt_conn, tmp_path, name) == before
    assert not _journal.exists() or _journal.read_bytes() == b""


def test_run_then_undo(libvirt_uri, libvirt_conn, define_domain, clones, tmp_path, capsys):
    base = tmp_path / "base.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", base, "64M")
    top = tmp_path / "web01.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", top)
    tmpl = define_domain(disks=[top])
    name = unique_name("cli")
    clones.append(name)
    overlay = tmp_path / "vms" / "web02.qcow2"
    overlay.parent.mkdir()
    status, out, err = cli(
        capsys, "clone-vm", base, name, "--from-domain", tmpl.name(), "--overlay", overlay,
        "--connect", libvirt_uri,
    )  # fmt: skip
    assert status == 0, err
    assert f"defined the VM {name} on {libvirt_uri}" in out
    assert f"imagegui clone-vm --undo {name}" in out
    assert overlay.exists()
    assert f"<source file='{overlay}'/>" in libvirt_conn.lookupByName(name).XMLDesc()

    status, _, err = cli(capsys, "clone-vm", base, name, "--connect", libvirt_uri)
    assert status == 2 and f"a VM called {name} is already defined" in err

    status, out, _ = cli(capsys, "clone-vm", "--undo", name, "--dry-run")
    assert status == 0 and f"undefines the VM {name}" in out
    status, out, err = cli(capsys, "clone-vm", "--undo", name, "--connect", libvirt_uri)
    assert status == 0, err
    assert not overlay.exists() and base.exists() and top.exists()
    assert name not in [d.name() for d in libvirt_conn.listAllDomains()]
    status, _, err = cli(capsys, "clone-vm", "--undo", name)
    assert status == 2 and "no linked-clone VM called" in err


def test_refusals_and_bad_arguments_exit_2(tmp_path, capsys, monkeypatch):
    base = tmp_path / "base.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", base, "64M")
    status, _, err = cli(capsys, "clone-vm", base)
    assert status == 2 and "needs BASE and NAME" in err
    status, _, err = cli(
        capsys, "clone-vm", base, "x", "--connect", "qemu:///system", "--connect", "test:///default"
    )
    assert status == 2 and "give --connect once" in err
    status, _, err = cli(
        capsys, "clone-vm", "base.qcow2", "web02", "--connect", "qemu+ssh://root@127.0.0.1/system"
    )
    assert status == 2 and "must be a full path on the other host" in err
    assert sorted(os.listdir(tmp_path)) == ["base.qcow2"]


def test_without_virt_install_the_refusal_names_the_package(
    libvirt_uri, tmp_path, capsys, monkeypatch
):
    base = tmp_path / "base.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", base, "64M")
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    status, out, _ = cli(
        capsys, "clone-vm", base, unique_name(), "--connect", libvirt_uri, "--dry-run"
    )
    assert status == 2
    assert "virt-install is not installed (the virtinst package: apt-get install virtinst)" in out
