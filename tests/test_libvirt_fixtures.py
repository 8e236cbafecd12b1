"""The libvirt fixtures (tests/libvirt_fixtures.py) do what other tests rely on: a domain they
define is real (virsh sees it, with its disks, shut off), it is gone after the test - also after a
failing one - a pool lists the directory's images, and the qemu+ssh URI reaches the same daemon.
Without root, the fixtures skip saying why instead of starting anything."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import libvirt_fixtures
import pytest
from conftest import qemu_img

VIRSH = shutil.which("virsh")
TESTS = Path(__file__).resolve().parent


def virsh(uri: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    if VIRSH is None:
        pytest.skip("virsh is not installed (apt-get install libvirt-clients)")
    return subprocess.run(
        [VIRSH, "-q", "-c", uri, *args], capture_output=True, text=True, check=check, timeout=60
    )


def test_defined_domain_is_a_real_shut_off_domain_with_its_disks(
    libvirt_uri, define_domain, tmp_path
):
    base = tmp_path / "base.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", base, "64M")
    top = tmp_path / "top.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", top)
    raw = tmp_path / "data.raw"
    qemu_img("create", "-q", "-f", "raw", raw, "1M")

    dom = define_domain(disks=[top, (raw, "raw")])

    name = dom.name()
    assert name.startswith("imagegui-test-")
    assert dom.isPersistent() and not dom.isActive()
    xml = virsh(libvirt_uri, "dumpxml", name).stdout
    assert f"<source file='{top}'/>" in xml and f"<source file='{raw}'/>" in xml
    assert "<target dev='vda' bus='virtio'/>" in xml and "<target dev='vdb' bus='virtio'/>" in xml
    assert "<driver name='qemu' type='raw'/>" in xml
    assert "<interface type='user'>" in xml and "<mac address='52:54:00:" in xml
    assert virsh(libvirt_uri, "domstate", name).stdout.strip() == "shut off"


def test_two_domains_get_different_names_and_macs(define_domain, tmp_path):
    disk = tmp_path / "d.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", disk, "1M")
    a, b = define_domain(disks=[disk]), define_domain(disks=[disk], name=None)
    assert a.name() != b.name() and a.UUIDString() != b.UUIDString()
    assert (
        a.XMLDesc().split("<mac address='")[1][:17] != b.XMLDesc().split("<mac address='")[1][:17]
    )


def test_pool_lists_the_images_of_its_directory(libvirt_uri, define_pool, tmp_path):
    qemu_img("create", "-q", "-f", "qcow2", tmp_path / "v.qcow2", "1M")
    pool = define_pool(tmp_path)
    assert pool.isActive()
    assert [v.path() for v in pool.listAllVolumes()] == [str(tmp_path / "v.qcow2")]
    assert pool.name() in virsh(libvirt_uri, "pool-list", "--all", "--name").stdout.split()


INNER = """
import json

def record(obj, kind):
    with open({record!r}, "a") as f:
        f.write(json.dumps([kind, obj.name()]) + "\\n")

def test_passes(define_domain, define_pool, tmp_path):
    record(define_domain(disks=[{disk!r}]), "domain")
    record(define_pool(tmp_path), "pool")

def test_fails(define_domain):
    record(define_domain(disks=[{disk!r}]), "domain")
    assert False, "on purpose"
"""


def test_what_a_test_defined_is_gone_after_it_also_when_it_failed(
    libvirt_uri, libvirt_conn, tmp_path
):
    """A pytest run of its own (the fixtures' teardown is what is tested), sharing the daemon."""
    disk = tmp_path / "d.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", disk, "1M")
    record = tmp_path / "defined.jsonl"
    inner = tmp_path / "inner"
    inner.mkdir()
    (inner / "conftest.py").write_text('pytest_plugins = ["libvirt_fixtures"]\n')
    (inner / "test_inner.py").write_text(INNER.format(record=str(record), disk=str(disk)))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-o", "addopts=",
         "--import-mode=importlib", "--rootdir", str(inner), str(inner)],
        cwd=inner, capture_output=True, text=True, timeout=240,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(inner),
             os.environ.get("PYTHONPATH", "")])},
    )  # fmt: skip
    assert "1 failed, 1 passed" in proc.stdout, proc.stdout + proc.stderr
    made = [json.loads(line) for line in record.read_text().splitlines()]
    assert sorted(kind for kind, _ in made) == ["domain", "domain", "pool"]
    domains = {d.name() for d in libvirt_conn.listAllDomains()}
    pools = {p.name() for p in libvirt_conn.listAllStoragePools()}
    for kind, name in made:
        assert name not in (domains if kind == "domain" else pools), f"{kind} {name} left behind"


def test_ssh_uri_reaches_the_same_daemon(
    libvirt_uri, ssh_libvirt_uri, libvirt_conn, define_domain, tmp_path
):
    import libvirt

    disk = tmp_path / "d.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", disk, "1M")
    mine = define_domain(disks=[disk]).name()
    assert ssh_libvirt_uri.startswith("qemu+ssh://root@127.0.0.1:")

    # Other test sessions may define and undefine domains meanwhile: what the remote lists lies
    # between what the local lists before and after.
    before = {d.name() for d in libvirt_conn.listAllDomains()}
    remote = libvirt.open(ssh_libvirt_uri)
    try:
        assert remote.getURI().startswith("qemu+ssh://")
        seen = {d.name() for d in remote.listAllDomains()}
        assert remote.lookupByName(mine).XMLDesc() == libvirt_conn.lookupByName(mine).XMLDesc()
    finally:
        remote.close()
    after = {d.name() for d in libvirt_conn.listAllDomains()}
    assert mine in seen
    assert before & after <= seen <= before | after

    listed = virsh(ssh_libvirt_uri, "list", "--all", "--name").stdout.split()
    assert mine in listed
    assert not Path("~/.ssh/known_hosts").expanduser().exists() or (
        "127.0.0.1" not in Path("~/.ssh/known_hosts").expanduser().read_text()
    )


def test_without_root_nothing_is_started_and_a_missing_daemon_is_a_skip(monkeypatch):
    """As a normal user the fixture only looks: an answering daemon is used, none is a skip
    naming the reason; it never takes the machine lock or runs a daemon."""
    libvirt = pytest.importorskip("libvirt", reason=libvirt_fixtures.INSTALL_HINT)
    monkeypatch.setattr(os, "geteuid", lambda: 65534)
    started = []
    monkeypatch.setattr(libvirt_fixtures, "_start_daemon", lambda name: started.append(name))
    monkeypatch.setattr(
        libvirt_fixtures, "_try_open", lambda _lv, _uri: (None, "Permission denied")
    )
    with pytest.raises(pytest.skip.Exception) as skipped:
        libvirt_fixtures._bring_up(libvirt)
    assert str(skipped.value) == (
        "libvirt not reachable at qemu:///system: Permission denied (the tests run as uid 65534; "
        "starting libvirtd for them needs root)"
    )
    assert started == []


def test_without_root_the_ssh_uri_is_a_skip_saying_why(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 65534)
    with pytest.raises(pytest.skip.Exception) as skipped:
        libvirt_fixtures._ssh_tools()
    assert "needs the tests to run as root" in str(skipped.value)
    assert "uid 65534" in str(skipped.value)
