"""The writing commands ask libvirt (``--connect URI``) which VMs use the images, against a real
libvirtd (tests/libvirt_fixtures.py): a shut-off VM's disk is refused naming the VM (exit 2,
``--force`` lifts it), a running VM's is refused outright, reading its base is only noted."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from opshelpers import chain, create, pattern_at, sha256

from imagegui.cli import run_cli
from imagegui.core.ops.commit import plan_commit
from imagegui.core.ops.plan import GuardRefused
from imagegui.core.virt.inventory import DomainSource

UNREACHABLE = "qemu+unix:///system?socket=/nonexistent/libvirt-sock"


@pytest.fixture(autouse=True)
def _journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEGUI_JOURNAL", str(tmp_path / "journal.jsonl"))


def cli(capsys: pytest.CaptureFixture, *args: object) -> tuple[int, str, str]:
    status = run_cli([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


def test_commit_into_a_shut_off_vms_base_refused_naming_it_force_lets_it_through(
    libvirt_uri, define_domain, tmp_path: Path, capsys
):
    base, top = chain(tmp_path)
    name = define_domain(disks=[top]).name()
    before = sha256(base)
    status, _, err = cli(capsys, "commit", top, "--connect", libvirt_uri)
    assert status == 2
    assert (
        f"refused: base {base} is used by the VM {name} (shut off) through the backing chain "
        "of its disk vda; committing into it changes that VM's disk" in err
    )
    assert "add --force" in err
    assert sha256(base) == before
    status, out, err = cli(capsys, "commit", top, "--connect", libvirt_uri, "--force")
    assert status == 0, err
    assert f"warning: base {base} is used by the VM {name} (shut off)" in err
    assert pattern_at(base, 0xAB, "1M", "1M")  # the overlay's data is in the base now
    assert "committed" in out


def test_plan_json_shows_the_findings(libvirt_uri, define_domain, tmp_path, capsys):
    import json

    base, top = chain(tmp_path)
    name = define_domain(disks=[top]).name()
    doc = plan_commit(str(top), domains=DomainSource((libvirt_uri,))).to_json()
    (found,) = [f for f in doc["findings"] if f["code"] == "used-by-vm"]
    assert found["level"] == "error" and found["overridable"] is True
    assert name in found["message"] and doc["refused"] is True
    # check-image's repair mode (a plan with --json): while the VM is off, a repair is only
    # warned about, naming the VM.
    status, out, _ = cli(
        capsys, "check-image", top, "--repair", "leaks", "--connect", libvirt_uri, "--dry-run",
        "--json",
    )  # fmt: skip
    assert status == 0
    doc = json.loads(out)
    (found,) = [f for f in doc["findings"] if f["code"] == "used-by-vm"]
    assert found["level"] == "warning"
    assert f"image {top} is used by the VM {name} (shut off) as its disk vda" in found["message"]


def test_rebase_of_a_shut_off_vms_disk_refused(libvirt_uri, define_domain, tmp_path, capsys):
    _, top = chain(tmp_path)
    name = define_domain(disks=[top]).name()
    before = sha256(top)
    status, _, err = cli(capsys, "rebase", top, "", "--connect", libvirt_uri)
    assert status == 2
    assert f"image {top} is used by the VM {name} (shut off) as its disk vda" in err
    assert sha256(top) == before


def test_repairing_a_shut_off_vms_missing_base_is_named_not_refused(
    libvirt_uri, define_domain, tmp_path, capsys
):
    """The VM cannot start while its base is missing: the repair is what it needs."""
    base, top = chain(tmp_path)
    moved = tmp_path / "moved.qcow2"
    base.rename(moved)
    name = define_domain(disks=[top]).name()
    status, _, err = cli(capsys, "rebase", top, moved, "--unsafe", "--connect", libvirt_uri)
    assert status == 0, err
    assert (
        f"warning: image {top} is used by the VM {name} (shut off) as its disk vda; repairing "
        "its backing pointer changes that VM's disk, which cannot start while its backing file "
        "is missing" in err
    )
    assert pattern_at(top, 0x11, 0, "1M")  # the base's data shows through again


def test_rebase_undo_is_guarded_too(libvirt_uri, define_domain, tmp_path, capsys):
    base, top = chain(tmp_path)
    status, _, err = cli(capsys, "rebase", top, base, "--unsafe")  # journalled, same file
    assert status == 0, err
    name = define_domain(disks=[top]).name()
    status, _, err = cli(capsys, "rebase", top, "--undo", "--connect", libvirt_uri)
    assert status == 2 and f"the VM {name} (shut off) as its disk vda" in err
    status, _, err = cli(capsys, "rebase", top, "--undo", "--connect", libvirt_uri, "--force")
    assert status == 0, err


def test_launch_of_a_vms_image_writable_refused_snapshot_allowed(
    libvirt_uri, define_domain, tmp_path, capsys
):
    base, top = chain(tmp_path)
    name = define_domain(disks=[top]).name()
    status, out, _ = cli(capsys, "launch", top, "--connect", libvirt_uri, "--dry-run")
    assert status == 2
    assert f"image {top} is used by the VM {name} (shut off) as its disk vda; booting it " in out
    assert "Fix: add --snapshot or --read-only" in out
    status, out, _ = cli(capsys, "launch", top, "--snapshot", "--connect", libvirt_uri, "--dry-run")
    assert status == 0 and f"is also used by {name} (shut off); it is only read" in out


def test_clean_leftovers_keeps_a_file_a_vm_uses(libvirt_uri, define_domain, tmp_path, capsys):
    odd = create(tmp_path / ".disk.qcow2.0123abcd.partial")
    os.utime(odd, (1e9, 1e9))  # long settled: only the VM keeps it
    name = define_domain(disks=[odd]).name()
    status, _, err = cli(capsys, "clean-leftovers", odd, "--connect", libvirt_uri)
    assert status == 2 and odd.exists()
    assert f"refused: file {odd} is used by the VM {name} (shut off) as its disk vda" in err


def test_without_connect_libvirt_is_not_asked_here(libvirt_uri, define_domain, tmp_path, capsys):
    """The test run's defaults are empty (conftest): without --connect the VM is not seen, so
    the refusal above comes from the connection named, nothing else."""
    _, top = chain(tmp_path)
    define_domain(disks=[top])
    status, out, _ = cli(capsys, "rebase", top, "", "--dry-run")
    assert status == 0 and "used by the VM" not in out


def test_overlay_on_a_vms_base_is_allowed_and_names_it(
    libvirt_uri, define_domain, tmp_path, capsys
):
    base, top = chain(tmp_path)
    name = define_domain(disks=[top]).name()
    new = tmp_path / "clone.qcow2"
    status, out, _ = cli(capsys, "overlay", base, new, "--connect", libvirt_uri, "--dry-run")
    assert status == 0
    assert f"[note] base {base} is also used by {name} (shut off)" in out
    status, _, err = cli(capsys, "overlay", base, new, "--connect", libvirt_uri)
    assert status == 0, err
    assert new.exists()


def test_flatten_of_a_vms_disk_runs_it_only_reads_it(libvirt_uri, define_domain, tmp_path, capsys):
    _, top = chain(tmp_path)
    name = define_domain(disks=[top]).name()
    before = sha256(top)
    out_path = tmp_path / "flat.qcow2"
    status, _, err = cli(capsys, "flatten", top, out_path, "--connect", libvirt_uri)
    assert status == 0, err
    assert out_path.exists() and sha256(top) == before
    status, out, _ = cli(capsys, "flatten", top, tmp_path / "f2.qcow2", "--connect", libvirt_uri,
                         "--dry-run")  # fmt: skip
    assert f"is also used by {name} (shut off); the flatten only reads it" in out


def test_the_guard_reads_libvirt_again_when_the_plan_runs(libvirt_uri, define_domain, tmp_path):
    base, top = chain(tmp_path)
    plan = plan_commit(str(top), domains=DomainSource((libvirt_uri,)))
    assert not plan.refused
    name = define_domain(disks=[top]).name()  # defined between the preview and the run
    before = sha256(base)
    with pytest.raises(GuardRefused) as refused:
        plan.run()
    assert f"the VM {name} (shut off)" in str(refused.value)
    assert sha256(base) == before


def test_a_named_connection_that_fails_is_a_warning_and_the_operation_goes_on(
    tmp_path: Path, capsys
):
    pytest.importorskip("libvirt", reason="libvirt-python not installed")
    base = create(tmp_path / "base.qcow2")
    new = tmp_path / "new.qcow2"
    status, _, err = cli(capsys, "overlay", base, new, "--connect", UNREACHABLE)
    assert status == 0, err
    assert f"warning: libvirt at {UNREACHABLE} was not reachable" in err
    assert "VMs defined there were not checked" in err
    assert new.exists()


def test_every_writing_command_takes_connect(tmp_path: Path, capsys):
    from imagegui.cli import build_parser

    for argv in (
        ["overlay", "b", "n"],
        ["rebase", "i", ""],
        ["rebase", "i", "--undo"],
        ["commit", "i"],
        ["flatten", "i", "o"],
        ["check-image", "i", "--repair", "leaks"],
        ["launch", "i"],
        ["clean-leftovers", "d"],
    ):
        args = build_parser(argv[0]).parse_args([*argv, "--connect", "test:///default"])
        assert args.connect == ["test:///default"], argv


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory the daemon's VM account can open (pytest's tmp dirs are private to root)."""
    path = Path(tempfile.mkdtemp(prefix="imagegui-guards-", dir="/var/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_a_running_vms_disk_is_refused_outright_naming_it(
    libvirt_uri, define_domain, shared_dir: Path, capsys
):
    base, top = chain(shared_dir)
    for p in (base, top):
        os.chmod(p, 0o644)
    dom = define_domain(disks=[top])
    dom.create()
    try:
        status, _, err = cli(capsys, "commit", top, "--connect", libvirt_uri, "--force")
        assert status == 2
        assert f"is used by the running VM {dom.name()} (libvirt {libvirt_uri})" in err
        assert "shut it down first" in err
    finally:
        dom.destroy()
