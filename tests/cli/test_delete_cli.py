"""``imagegui delete``: guarded, to the Trash with its .trashinfo, ``--undo`` puts it back."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest
from opshelpers import create, overlay, sha256

from imagegui.cli import run_cli


@pytest.fixture(autouse=True)
def _journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEGUI_JOURNAL", str(tmp_path / "state" / "journal.jsonl"))


def cli(capsys: pytest.CaptureFixture, *args: object) -> tuple[int, str, str]:
    status = run_cli([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def images(tmp_path: Path) -> dict[str, Path]:
    d = tmp_path / "images"
    base = create(d / "base.qcow2")
    return {
        "base": base,
        "web01": overlay(d / "web01.qcow2", base),
        "web02": overlay(d / "web02.qcow2", base),
        "orphan": create(d / "orphan.qcow2"),
    }


def test_a_base_with_overlays_is_refused_naming_them_untouched(images, capsys, trash_home):
    before = sha256(images["base"])
    status, out, err = cli(capsys, "delete", images["base"])
    assert status == 2 and out == ""
    assert f"refused: {images['base']} is the backing file of {images['web01']}, " in err
    assert str(images["web02"]) in err
    assert "add --with-overlays" in err
    assert sha256(images["base"]) == before and not (trash_home / "Trash").exists()


def test_an_orphan_lands_in_the_trash_with_its_trashinfo_and_undo_restores_it(
    images, capsys, trash_home, tmp_path
):
    orphan = images["orphan"]
    copy = tmp_path / "copy"
    copy.write_bytes(orphan.read_bytes())
    status, out, err = cli(capsys, "delete", orphan)
    assert status == 0, err
    files = trash_home / "Trash" / "files" / "orphan.qcow2"
    info = trash_home / "Trash" / "info" / "orphan.qcow2.trashinfo"
    assert not orphan.exists() and files.exists()
    lines = info.read_text().splitlines()
    assert lines[0] == "[Trash Info]"
    fields = dict(line.split("=", 1) for line in lines[1:])
    assert unquote(fields["Path"]) == str(orphan)
    assert len(fields["DeletionDate"]) == len("2026-12-02T09:00:00")
    assert f"moved {orphan} to {files}" in out
    assert "moved 1 file to the Trash" in out and "imagegui delete --undo" in out

    status, out, err = cli(capsys, "delete", "--undo", orphan)
    assert status == 0, err
    assert f"restored {orphan}" in out
    assert subprocess.run(["cmp", str(orphan), str(copy)]).returncode == 0
    assert not files.exists() and not info.exists()
    # Nothing left to restore.
    status, _, err = cli(capsys, "delete", "--undo", orphan)
    assert status == 2 and "no deletion of" in err


def test_dry_run_changes_nothing(images, capsys, trash_home, tmp_path):
    status, out, _ = cli(capsys, "delete", images["base"], "--with-overlays", "--dry-run")
    assert status == 0
    assert "move 3 files to the Trash" in out
    assert f"moves {images['web01']} (" in out and "backs onto" in out
    assert all(p.exists() for p in images.values())
    assert not (trash_home / "Trash").exists()
    assert not (tmp_path / "state").exists()  # not even the journal is made
    status, out, _ = cli(capsys, "delete", images["orphan"], "--dry-run", "--json")
    doc = json.loads(out)
    assert doc["op"] == "delete" and not doc["refused"]
    assert images["orphan"].exists()


def test_with_overlays_deletes_the_whole_tree(images, capsys, trash_home):
    status, out, err = cli(capsys, "delete", images["base"], "--with-overlays")
    assert status == 0, err
    assert not any(images[k].exists() for k in ("base", "web01", "web02"))
    assert images["orphan"].exists()
    assert sorted(os.listdir(trash_home / "Trash" / "files")) == [
        "base.qcow2",
        "web01.qcow2",
        "web02.qcow2",
    ]
    assert "moved 3 files to the Trash" in out


def test_permanent_says_it_cannot_be_undone(images, capsys, trash_home):
    status, out, err = cli(capsys, "delete", images["orphan"], "--permanent")
    assert status == 0, err
    assert "cannot be restored or undone" in err  # the warning, before it runs
    assert f"deleted {images['orphan']}" in out
    assert not images["orphan"].exists() and not (trash_home / "Trash").exists()


def test_a_symlink_is_refused_explaining(images, capsys, tmp_path, trash_home):
    link = tmp_path / "images" / "link.qcow2"
    link.symlink_to("orphan.qcow2")
    status, _, err = cli(capsys, "delete", link)
    assert status == 2 and "is a symbolic link (to orphan.qcow2)" in err
    assert link.is_symlink() and images["orphan"].exists()


@pytest.mark.slow
def test_an_image_a_running_qemu_holds_is_refused(images, capsys, tmp_path, trash_home):
    pidfile = tmp_path / "qemu.pid"
    subprocess.run(
        ["qemu-system-x86_64", "-machine", "accel=tcg", "-display", "none", "-S", "-daemonize",
         "-pidfile", str(pidfile), "-drive", f"file={images['orphan']},format=qcow2,if=virtio"],
        check=True,
    )  # fmt: skip
    try:
        status, _, err = cli(capsys, "delete", images["orphan"])
        assert status == 2
        assert f"refused: image {images['orphan']} is in use by PID " in err, err
        assert "(qemu-system-x86_64) (a running VM writes it)" in err
        assert images["orphan"].exists()
    finally:
        os.kill(int(pidfile.read_text()), 9)


def test_an_image_a_libvirt_vm_uses_is_refused(
    libvirt_uri, define_domain, images, capsys, trash_home
):
    name = define_domain(disks=[images["orphan"]]).name()
    status, _, err = cli(capsys, "delete", images["orphan"], "--connect", libvirt_uri)
    assert status == 2
    assert (
        f"refused: image {images['orphan']} is used by the VM {name} (shut off) as its disk "
        "vda; deleting it breaks that VM's disk" in err
    )
    assert images["orphan"].exists() and not (trash_home / "Trash").exists()


def test_a_volume_without_a_usable_trash_is_refused_naming_permanent(tmp_path, capsys, trash_home):
    """A volume whose Trash folder cannot be made (a file is in its way), and the home Trash
    would mean a copy: refused, saying how much, and how to delete it for good instead."""
    if os.geteuid() != 0:
        pytest.skip("mounting a volume needs root")
    vol = tmp_path / "vol"
    vol.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "none", str(vol)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        img = vol / "big.raw"
        img.write_bytes(b"\1" * (1 << 20))
        (vol / f".Trash-{os.getuid()}").write_text("not a folder")
        status, _, err = cli(capsys, "delete", img)
        assert status == 2
        assert f"refused: {img} cannot be moved to the Trash without copying it (1 MiB)" in err
        assert "add --permanent" in err
        assert img.exists() and not (trash_home / "Trash").exists()
    finally:
        subprocess.run(["umount", "-l", str(vol)], check=False)
