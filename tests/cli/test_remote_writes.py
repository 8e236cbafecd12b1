"""Writing commands with ``--connect qemu+ssh://...``, against a real libvirtd through a real sshd
on a loopback port: overlay creates a volume there through libvirt's storage API, every other
writing command refuses (exit 2) and changes nothing."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import qemu_info


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "imagegui", *args], capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def pool_dir(make, define_pool):
    """A started dir pool with a base and an overlay of it."""
    make.create("base.qcow2", "qcow2", "16M")
    make.overlay("ov1.qcow2", "base.qcow2")
    define_pool(make.root)
    return make.root


def test_overlay_over_ssh_creates_a_volume_backing_onto_the_base_with_its_format(
    pool_dir, ssh_libvirt_uri
):
    base, new = pool_dir / "base.qcow2", pool_dir / "clone.qcow2"
    dry = run("overlay", str(base), str(new), "--connect", ssh_libvirt_uri, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "<format type='qcow2'/></backingStore>" in dry.stdout and not new.exists()
    proc = run("overlay", str(base), str(new), "--connect", ssh_libvirt_uri)
    assert proc.returncode == 0, proc.stderr
    info = qemu_info(new)
    assert info["format"] == "qcow2"
    assert info["backing-filename"] == str(base)
    assert info["backing-filename-format"] == "qcow2"
    again = run("overlay", str(base), str(new), "--connect", ssh_libvirt_uri)
    assert again.returncode == 1 and "did not create" in again.stderr
    outside = run("overlay", str(base), "/nonexistent/x.qcow2", "--connect", ssh_libvirt_uri)
    assert outside.returncode == 2 and "no active storage pool" in outside.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["rebase", "{d}/ov1.qcow2", "{d}/base.qcow2", "--unsafe"],
        ["commit", "{d}/ov1.qcow2"],
        ["flatten", "{d}/ov1.qcow2", "{d}/flat.qcow2"],
    ],
)
def test_other_writes_to_another_host_are_refused(pool_dir, ssh_libvirt_uri, argv):
    before = sorted(p.name for p in pool_dir.iterdir())
    proc = run(*[a.format(d=pool_dir) for a in argv], "--connect", ssh_libvirt_uri)
    assert proc.returncode == 2
    assert (
        "writing to images on another host is not supported yet except creating an overlay and "
        "a linked-clone VM"
    ) in proc.stderr
    assert sorted(p.name for p in pool_dir.iterdir()) == before
