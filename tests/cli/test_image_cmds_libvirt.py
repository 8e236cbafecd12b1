"""resize and snapshot ask libvirt (``--connect URI``, a real libvirtd): a shut-off VM's disk is
refused naming the VM (exit 2, ``--force`` lifts it); convert only reads, so it is only noted."""

from __future__ import annotations

import pytest
from conftest import qemu_info
from opshelpers import create, sha256

from imagegui.cli import run_cli


def cli(capsys: pytest.CaptureFixture, *args: object) -> tuple[int, str, str]:
    status = run_cli([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


def test_resize_and_snapshot_of_a_shut_off_vms_disk(libvirt_uri, define_domain, tmp_path, capsys):
    disk = create(tmp_path / "vm.qcow2")
    name = define_domain(disks=[disk]).name()
    before = sha256(disk)
    status, _, err = cli(capsys, "resize", disk, "+1G", "--connect", libvirt_uri)
    assert status == 2
    assert (
        f"refused: image {disk} is used by the VM {name} (shut off) as its disk vda; resizing "
        "it changes that VM's disk" in err
    )
    status, _, err = cli(capsys, "snapshot", disk, "create", "s", "--connect", libvirt_uri)
    assert status == 2 and f"the VM {name} (shut off)" in err
    assert "without libvirt knowing of it" in err
    assert sha256(disk) == before
    status, _, err = cli(capsys, "resize", disk, "+1G", "--connect", libvirt_uri, "--force")
    assert status == 0, err
    assert f"warning: image {disk} is used by the VM {name} (shut off)" in err
    assert qemu_info(disk)["virtual-size"] == (64 << 20) + (1 << 30)
    status, out, err = cli(
        capsys, "convert", disk, tmp_path / "copy.qcow2", "--connect", libvirt_uri, "--dry-run"
    )
    assert status == 0 and f"is also used by {name} (shut off)" in out
