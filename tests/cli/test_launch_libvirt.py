"""``imagegui launch IMAGE --libvirt [--connect URI]`` against the real libvirtd: the dry run
shows the domain XML and starts nothing, refusals exit 2, libvirt's own failure exits 1 with its
reason. (Real starts are tested in tests/core/ops/test_launchvirt.py.)"""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

import pytest
from conftest import qemu_img

from imagegui.cli import build_parser, run_cli


def cli(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    status = run_cli([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


def domains(uri: str) -> list[str]:
    return subprocess.run(
        ["virsh", "-q", "-c", uri, "list", "--all", "--name"],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.split()


def tiny(path: Path) -> Path:
    qemu_img("create", "-q", "-f", "qcow2", path, "16M")
    return path


def test_connect_is_registered_once_on_launch():
    args = build_parser("launch").parse_args(
        ["launch", "/x.qcow2", "--libvirt", "--connect", "qemu:///system"]
    )
    assert args.libvirt and args.connect == ["qemu:///system"]


def test_dry_run_prints_the_domain_xml_and_starts_nothing(libvirt_uri, tmp_path, capsys):
    image = tiny(tmp_path / "dry.qcow2")
    status, out, _ = cli(
        capsys,
        "launch",
        image,
        "--libvirt",
        "--connect",
        libvirt_uri,
        "--dry-run",
        "--memory",
        "96",
    )
    assert status == 0, out
    assert f"domain XML given to libvirt at {libvirt_uri} (transient):" in out
    assert f"  <source file='{image}'/>" in out and "<memory unit='MiB'>96</memory>" in out
    assert "disappears from libvirt when it stops" in out
    assert "verdict: ok to run" in out
    assert "imagegui-dry" not in domains(libvirt_uri)  # (other sessions may share the daemon)


def test_refusals_exit_2_and_name_the_reason(libvirt_uri, tmp_path, capsys):
    image = tiny(tmp_path / "snap.qcow2")
    status, _, err = cli(capsys, "launch", image, "--libvirt", "--snapshot")
    assert status == 2 and "refused: a snapshot boot is not offered through libvirt" in err
    status, _, err = cli(capsys, "launch", image, "--libvirt", "--connect", "bogus:///nowhere")
    assert status == 2 and "libvirt not reachable at bogus:///nowhere:" in err
    status, _, err = cli(
        capsys, "launch", image, "--libvirt", "--connect", "qemu+ssh://root@192.0.2.1/system"
    )
    assert status == 2 and "is another machine" in err


def test_libvirts_own_failure_exits_1_with_its_reason(libvirt_uri, tmp_path, capsys):
    # pytest's tmp dirs are private to root: the daemon's VM account cannot open the image.
    stem = f"private-{secrets.token_hex(3)}"
    image = tiny(tmp_path / f"{stem}.qcow2")
    try:
        status, _, err = cli(capsys, "launch", image, "--libvirt", "--connect", libvirt_uri)
        assert status == 1, err
        assert f"libvirt did not start imagegui-{stem}:" in err and "Permission denied" in err
        assert f"imagegui-{stem}" not in domains(libvirt_uri)
    finally:  # a daemon whose VMs run as root would have started it
        subprocess.run(
            ["virsh", "-q", "-c", libvirt_uri, "destroy", f"imagegui-{stem}"],
            capture_output=True,
            timeout=60,
        )
