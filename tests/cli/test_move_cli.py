"""``imagegui move``, ``imagegui relink`` and ``imagegui check --portable`` on the command line:
dry runs change nothing, refusals exit 2 naming why, a libvirt VM's disk is named."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import qemu_info
from opshelpers import create, qemu_io, sha256

from imagegui.cli import run_cli


@pytest.fixture(autouse=True)
def _journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEGUI_JOURNAL", str(tmp_path / "state" / "journal.jsonl"))


def cli(capsys: pytest.CaptureFixture, *args: object) -> tuple[int, str, str]:
    status = run_cli([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


def overlay(path: Path, backing: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    argv = ["qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", backing, "-F", "qcow2"]
    subprocess.run([*argv, str(path), "64M"], check=True)
    return path


def snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): sha256(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and "state" not in p.parts
    }


@pytest.fixture
def vms(tmp_path: Path) -> Path:
    vms = tmp_path / "vms"
    base = create(vms / "base.qcow2")
    qemu_io(base, "write -P 0x11 0 1M")
    overlay(vms / "rel.qcow2", "base.qcow2")
    overlay(vms / "abs.qcow2", str(base))
    overlay(tmp_path / "clones" / "far.qcow2", "../vms/base.qcow2")
    return vms


def test_move_dry_run_changes_nothing_then_runs(tmp_path: Path, vms: Path, capsys):
    dest = tmp_path / "store"
    dest.mkdir()
    before = snapshot(tmp_path)
    status, out, _ = cli(capsys, "move", vms / "base.qcow2", dest, "--dry-run")
    assert status == 0
    assert f"$ mv -n -T -- {vms / 'base.qcow2'} {dest / 'base.qcow2'}" in out
    assert out.count("$ qemu-img rebase -f qcow2 -u -b ") == 3
    assert "verdict: ok to run" in out
    status, out, _ = cli(capsys, "move", vms / "base.qcow2", dest, "--dry-run", "--json")
    doc = json.loads(out)
    assert doc["op"] == "move" and not doc["refused"] and len(doc["commands"]) == 4
    assert snapshot(tmp_path) == before
    status, out, err = cli(capsys, "move", vms / "base.qcow2", dest)
    assert status == 0, err
    assert "3 backing pointers rewritten" in out and "move --undo" in out
    assert qemu_info(vms / "rel.qcow2")["backing-filename"] == "../store/base.qcow2"
    status, out, _ = cli(capsys, "check", tmp_path)
    assert status == 0 and "0 errors, 0 warnings, 0 unusable" in out


def test_move_refused_when_dest_exists(tmp_path: Path, vms: Path, capsys):
    before = snapshot(tmp_path)
    status, _, err = cli(capsys, "move", vms / "base.qcow2", vms / "rel.qcow2")
    assert status == 2
    assert f"refused: destination {vms / 'rel.qcow2'} already exists" in err
    assert snapshot(tmp_path) == before


def test_move_bad_arguments(tmp_path: Path, capsys):
    status, _, err = cli(capsys, "move", tmp_path / "nope.qcow2", tmp_path / "x.qcow2")
    assert status == 2 and "does not exist" in err
    status, _, err = cli(capsys, "move", tmp_path)  # DEST missing
    assert status == 2 and "move needs SRC... DEST" in err


def test_relink_and_check_portable(tmp_path: Path, vms: Path, capsys):
    status, out, _ = cli(capsys, "check", tmp_path)
    assert status == 0 and "absolute-backing" not in out
    status, out, _ = cli(capsys, "check", tmp_path, "--portable")
    assert status == 0  # a warning
    assert "warning absolute-backing" in out and "vms/abs.qcow2" in out
    assert f"Fix: imagegui relink --relative {vms / 'abs.qcow2'}" in out
    status, out, _ = cli(capsys, "check", tmp_path, "--portable", "--json")
    kinds = [p["kind"] for p in json.loads(out)["problems"]]
    assert kinds == ["absolute-backing"]
    before = snapshot(tmp_path)
    status, out, _ = cli(capsys, "relink", tmp_path, "--relative", "--dry-run")
    assert status == 0 and "-b base.qcow2 -F qcow2" in out
    assert snapshot(tmp_path) == before
    status, out, err = cli(capsys, "relink", tmp_path, "--relative")
    assert status == 0, err
    assert f"rewrote {vms / 'abs.qcow2'}" in out
    status, out, _ = cli(capsys, "check", tmp_path, "--portable")
    assert "absolute-backing" not in out and "0 warnings" in out
    # A read-only image is kept and named (exit 2), the others rewritten.
    os.chmod(vms / "rel.qcow2", 0o444)
    try:
        status, out, err = cli(capsys, "relink", vms, "--absolute")
        assert status == 2
        assert f"kept: image {vms / 'rel.qcow2'} is read-only" in err
        assert f"rewrote {vms / 'abs.qcow2'}" in out
    finally:
        os.chmod(vms / "rel.qcow2", 0o644)
    with pytest.raises(SystemExit):
        run_cli(["relink", str(tmp_path)])  # --relative or --absolute is required


def test_move_of_a_libvirt_vms_disk_is_refused_naming_it(
    libvirt_uri, define_domain, tmp_path: Path, vms: Path, capsys
):
    name = define_domain(disks=[vms / "rel.qcow2"]).name()
    dest = tmp_path / "store"
    dest.mkdir()
    before = snapshot(tmp_path)
    status, _, err = cli(capsys, "move", vms / "base.qcow2", dest, "--connect", libvirt_uri)
    assert status == 2
    assert f"image {vms / 'base.qcow2'} is used by the VM {name} (shut off)" in err
    assert f"overlay {vms / 'rel.qcow2'} is used by the VM {name} (shut off) as its disk" in err
    assert snapshot(tmp_path) == before
    # relink keeps that VM's disk as it is, named (nothing else to rewrite: refused).
    status, out, err = cli(capsys, "relink", vms, "--absolute", "--connect", libvirt_uri)
    assert status == 2
    assert f"refused: image {vms / 'rel.qcow2'} is used by the VM {name} (shut off)" in err
    assert snapshot(tmp_path) == before  # abs.qcow2 was absolute already: nothing else to do
    status, out, err = cli(
        capsys, "move", vms / "base.qcow2", dest, "--connect", libvirt_uri, "--force"
    )
    assert status == 0, err
    assert f"warning: image {vms / 'base.qcow2'} is used by the VM {name}" in err
    assert (dest / "base.qcow2").exists()


def test_ctrl_c_during_a_move_across_file_systems_undoes_it(tmp_path: Path, vms: Path, other_fs):
    """The first pointer rewrite hangs (a fake qemu-img says when it got there); Ctrl-C stops
    it, the rewrites done are put back, the copy is removed and the source stays: exit 130."""
    import shutil
    import signal
    import sys

    fifo = tmp_path / "ready"
    os.mkfifo(fifo)
    fake = tmp_path / "fake-qemu-img"
    fake.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = rebase ] && [ ! -e {tmp_path}/hung ]; then\n'
        f"  : > {tmp_path}/hung; echo ready > {fifo}; exec sleep 300\n"
        "fi\n"
        f'exec {shutil.which("qemu-img")} "$@"\n'
    )
    fake.chmod(0o755)
    before = snapshot(vms)
    proc = subprocess.Popen(
        [sys.executable, "-m", "imagegui", "move", str(vms / "base.qcow2"), str(other_fs)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "IMAGEGUI_QEMU_IMG": str(fake)},
    )
    with open(fifo) as f:  # blocks until the copy has its name and the first rewrite hangs
        assert f.read() == "ready\n"
    assert os.listdir(other_fs) == ["base.qcow2"]
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "move cancelled:" in err and "untouched, no copy left" in err
    assert os.listdir(other_fs) == []
    assert snapshot(vms) == before  # clones/far.qcow2 hung first: nothing else was touched
    assert qemu_info(vms / "abs.qcow2")["backing-filename"] == str(vms / "base.qcow2")
    assert qemu_info(vms / "rel.qcow2")["backing-filename"] == "base.qcow2"
    status = run_cli(["check", str(tmp_path)])
    assert status == 0


def test_move_undo_puts_it_back(tmp_path: Path, vms: Path, capsys):
    new = vms / "golden.qcow2"
    status, _, err = cli(capsys, "move", vms / "base.qcow2", new)
    assert status == 0, err
    status, out, _ = cli(capsys, "move", "--undo", "--dry-run")
    assert status == 0 and "undo move of base.qcow2" in out
    assert f"$ mv -n -T -- {new} {vms / 'base.qcow2'}" in out
    status, out, err = cli(capsys, "move", "--undo", new)
    assert status == 0, err
    assert (vms / "base.qcow2").exists() and not new.exists()
    assert qemu_info(vms / "rel.qcow2")["backing-filename"] == "base.qcow2"
    status, _, err = cli(capsys, "move", "--undo")
    assert status == 2 and "has no move" in err
    status, _, err = cli(capsys, "move", vms / "base.qcow2")
    assert status == 2 and "SRC" in err


def test_a_killed_folder_move_across_file_systems_leaves_a_leftover_clean_offers(
    tmp_path: Path, other_fs, trash_home, capsys
):
    """SIGKILL (no clean-up runs) while a folder is copied to another file system: the copy is
    left as .NAME.<hex>.partial/. The scan reports it as a leftover naming the interrupted
    move, the space report counts it, and clean moves it to the Trash."""
    import shutil
    import signal
    import sys

    tree = tmp_path / "vms" / "tree"
    base = create(tmp_path / "vms" / "base.qcow2")
    top = overlay(tree / "top.qcow2", "../base.qcow2")  # leads outside: rewritten in the copy
    qemu_io(top, "write -P 0x22 0 1M")
    fifo = tmp_path / "ready"
    os.mkfifo(fifo)
    fake = tmp_path / "fake-qemu-img"
    fake.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = rebase ]; then echo ready > {fifo}; exec sleep 300; fi\n'
        f'exec {shutil.which("qemu-img")} "$@"\n'
    )
    fake.chmod(0o755)
    proc = subprocess.Popen(
        [sys.executable, "-m", "imagegui", "move", str(tree), str(other_fs)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "IMAGEGUI_QEMU_IMG": str(fake)},
    )
    with open(fifo) as f:  # the folder is copied and its copy's pointer being rewritten
        assert f.read() == "ready\n"
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    (left,) = os.listdir(other_fs)
    assert left.startswith(".tree.") and left.endswith(".partial")
    partial = other_fs / left
    assert (partial / "top.qcow2").is_file() and tree.is_dir() and base.exists()
    old = os.stat(partial).st_mtime - 7200  # an old leftover, not a copy starting now
    for p in [*partial.rglob("*"), partial]:
        os.utime(p, (old, old))

    status, out, _ = cli(capsys, "check", other_fs, "--json")
    doc = json.loads(out)
    assert [p["path"] for p in doc["problems"] if p["kind"] == "leftover-file"] == [str(partial)]
    (problem,) = [p for p in doc["problems"] if p["kind"] == "leftover-file"]
    assert "interrupted move" in problem["message"] and "tree" in problem["message"]
    status, out, _ = cli(capsys, "scan", other_fs, "--json")
    assert json.loads(out)["images"] == []  # its copies are not shown as images
    status, out, _ = cli(capsys, "space", other_fs, "--json")
    leftovers = [r for r in json.loads(out)["reclaimable"] if r["category"] == "leftover"]
    assert [r["path"] for r in leftovers] == [str(partial)] and leftovers[0]["bytes"] > 1 << 20
    status, out, err = cli(capsys, "clean", other_fs, "--dry-run")
    assert status == 0 and str(partial) in out, out + err
    status, out, err = cli(capsys, "clean", other_fs)
    assert status == 0, err
    assert os.listdir(other_fs) == [".Trash-0"] or not partial.exists()
    assert not partial.exists()


def test_a_leftover_file_names_the_move_among_what_leaves_one(tmp_path: Path):
    from imagegui.core.read.scan import scan_directory

    left = create(tmp_path / ".base.qcow2.0123abcd.partial")
    (note,) = scan_directory(str(tmp_path)).errors
    assert note.path == str(left) and note.leftover
    assert "interrupted move, flatten, convert or new image into base.qcow2" in note.message
