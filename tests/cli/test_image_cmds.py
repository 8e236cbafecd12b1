"""new / resize / snapshot / convert on the command line: dry runs change nothing, refusals are
exit 2, the list is qemu's, a Ctrl-C'd convert leaves no partial file (exit 130)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import qemu_img, qemu_info
from opshelpers import create, fake_qemu_img, pattern_at, qemu_io, sha256

from imagegui.cli import SUBCOMMANDS, run_cli


def cli(capsys: pytest.CaptureFixture, *args: object) -> tuple[int, str, str]:
    status = run_cli([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


def listing(root: Path) -> dict[str, str]:
    return {p.name: sha256(p) for p in sorted(root.iterdir()) if p.is_file()}


def test_subcommands_registered():
    assert {"new", "resize", "snapshot", "convert"} <= set(SUBCOMMANDS)


def test_dry_runs_change_nothing(tmp_path: Path, capsys):
    img = create(tmp_path / "vm.qcow2")
    qemu_img("snapshot", "-c", "s1", img)
    before = listing(tmp_path)
    for args, expect in [
        (("new", tmp_path / "n.qcow2", "20G"), "$ qemu-img create -f qcow2 "),
        (("resize", img, "+1G"), f"$ qemu-img resize -f qcow2 {img} {(64 << 20) + (1 << 30)}"),
        (("snapshot", img, "create", "s2"), "$ qemu-img snapshot --image-opts -c s2 "),
        (("snapshot", img, "apply", "s1"), "everything written to it since"),
        (("snapshot", img, "delete", "s1"), "$ qemu-img snapshot --image-opts -d s1 "),
        (("convert", img, tmp_path / "vm.vmdk", "-O", "vmdk"), "-O vmdk"),
    ]:
        status, out, err = cli(capsys, *args, "--dry-run")
        assert status == 0, (args, out, err)
        assert expect in out and "verdict: ok to run" in out, out
        assert listing(tmp_path) == before
    status, out, _ = cli(capsys, "resize", img, "1G", "--dry-run", "--json")
    doc = json.loads(out)
    assert doc["op"] == "resize" and doc["refused"] is False


def test_new_then_resize_then_refusals(tmp_path: Path, capsys):
    path = tmp_path / "d.raw"
    status, out, err = cli(capsys, "new", path, "64M", "-f", "raw", "--preallocation", "falloc")
    assert status == 0, err
    assert "created" in out and qemu_info(path, "raw")["virtual-size"] == 64 << 20
    status, _, err = cli(capsys, "new", path, "64M")
    assert status == 2 and "already exists" in err
    status, _, err = cli(capsys, "new", tmp_path / "x.qcow2", "lots")
    assert status == 2 and "not a size" in err
    qemu_io(path, "write -P 0x42 0 1M", fmt="raw")
    status, out, err = cli(capsys, "resize", path, "+64M")
    assert status == 0, err
    assert qemu_info(path, "raw")["virtual-size"] == 128 << 20
    status, _, err = cli(capsys, "resize", path, "32M")
    assert status == 2 and "add --shrink" in err
    status, out, err = cli(capsys, "resize", path, "--shrink", "--", "-96M")
    assert status == 0, err
    assert "warning: shrinking removes the last 96 MiB" in err
    assert qemu_info(path, "raw")["virtual-size"] == 32 << 20
    qemu_io(path, "read -P 0x42 0 1M", fmt="raw")


def test_snapshot_cycle(tmp_path: Path, capsys):
    img = create(tmp_path / "vm.qcow2")
    qemu_io(img, "write -P 0x11 0 1M")
    status, out, _ = cli(capsys, "snapshot", img, "list")
    assert status == 0 and "has no internal snapshots" in out
    assert cli(capsys, "snapshot", img, "create", "before update")[0] == 0
    status, out, _ = cli(capsys, "snapshot", img, "list")
    header, row = out.splitlines()
    assert header.split() == ["ID", "NAME", "VM", "STATE", "DATE", "VM", "CLOCK", "DISK", "SIZE"]
    assert row.startswith("1   before update  0 B")
    status, out, _ = cli(capsys, "snapshot", img, "list", "--json")
    (snap,) = json.loads(out)["snapshots"]
    (theirs,) = qemu_info(img)["snapshots"]
    assert (snap["id"], snap["name"], snap["date_sec"]) == (
        theirs["id"], theirs["name"], theirs["date-sec"],
    )  # fmt: skip
    qemu_io(img, "write -P 0x22 0 1M")
    status, _, err = cli(capsys, "snapshot", img, "apply", "before update")
    assert status == 0 and "warning: reverting discards the current state" in err
    assert pattern_at(img, 0x11, 0, "1M")
    status, _, err = cli(capsys, "snapshot", img, "apply", "nope")
    assert status == 2 and "no snapshot named 'nope'" in err
    status, _, err = cli(capsys, "snapshot", img, "create")
    assert status == 2 and "needs NAME" in err
    assert cli(capsys, "snapshot", img, "delete", "before update")[0] == 0
    assert qemu_info(img).get("snapshots", []) == []
    raw = create(tmp_path / "d.raw", fmt="raw")
    status, _, err = cli(capsys, "snapshot", raw, "list")
    assert status == 2 and "not a qcow2 image" in err


def test_convert_runs(tmp_path: Path, capsys):
    img = create(tmp_path / "vm.qcow2")
    qemu_io(img, "write -P 0x33 2M 1M")
    status, out, err = cli(capsys, "convert", img, tmp_path / "vm.vhdx", "-O", "vhdx")
    assert status == 0, err
    assert "wrote" in out
    proc = subprocess.run(["qemu-img", "compare", "-F", "vhdx", img, tmp_path / "vm.vhdx"])
    assert proc.returncode == 0
    status, _, err = cli(capsys, "convert", img, tmp_path / "x.raw", "-O", "raw", "--compress")
    assert status == 2 and "cannot hold compressed data" in err


def test_ctrl_c_cancels_convert_and_removes_the_partial_file(tmp_path: Path):
    img = create(tmp_path / "vm.qcow2")
    fifo = tmp_path / "ready"
    os.mkfifo(fifo)
    fake = fake_qemu_img(
        tmp_path,
        'case "$1" in\n'
        'measure) echo \'{"required": 1000, "fully-allocated": 2000}\' ;;\n'
        "convert) for last; do :; done; : > \"$last\"; printf '    (1.00/100%%)\\r'\n"
        f"  echo ready > {fifo}; exec sleep 300 ;;\n"
        "esac",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "imagegui", "convert", str(img), str(tmp_path / "out.vmdk"),
         "-O", "vmdk"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "IMAGEGUI_QEMU_IMG": str(fake)},
    )  # fmt: skip
    with open(fifo) as f:
        assert f.read() == "ready\n"
    assert any(p.endswith(".partial") for p in os.listdir(tmp_path))
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "convert cancelled: no file was created" in err
    assert sorted(os.listdir(tmp_path)) == ["fake-qemu-img", "ready", "vm.qcow2"]


def test_undo_of_new_convert_snapshot_and_grow(tmp_path: Path, capsys, monkeypatch, trash_home):
    """Each journalled change has its --undo, in the shape of move --undo: the plan with
    --dry-run, exit 0 when undone, 2 when there is nothing (left) to undo."""
    monkeypatch.setenv("IMAGEGUI_JOURNAL", str(tmp_path / "state" / "journal.jsonl"))
    new = tmp_path / "new.qcow2"
    status, out, _ = cli(capsys, "new", new, "64M")
    assert status == 0 and "imagegui new --undo" in out
    status, out, _ = cli(capsys, "new", "--undo", new, "--dry-run")
    assert status == 0 and "moves" in out and new.exists()
    assert cli(capsys, "new", "--undo", new)[0] == 0
    assert not new.exists() and (trash_home / "Trash" / "files" / "new.qcow2").exists()
    status, _, err = cli(capsys, "new", "--undo", new)
    assert status == 2 and "no new image" in err

    src = create(tmp_path / "src.qcow2")
    dest = tmp_path / "out.raw"
    assert cli(capsys, "convert", src, dest, "-O", "raw")[0] == 0
    assert cli(capsys, "convert", "--undo", dest)[0] == 0
    assert not dest.exists() and src.exists()

    img = create(tmp_path / "vm.qcow2")
    assert cli(capsys, "snapshot", img, "create", "s1")[0] == 0
    status, out, _ = cli(capsys, "snapshot", img, "--undo", "--dry-run")
    assert status == 0 and "-d s1" in out
    assert cli(capsys, "snapshot", img, "--undo")[0] == 0
    assert "s1" not in qemu_img("snapshot", "-l", img).stdout

    assert cli(capsys, "resize", img, "+64M")[0] == 0
    qemu_io(img, "write -P 0x12 100M 1M")
    status, _, err = cli(capsys, "resize", "--undo", img)
    assert status == 2 and "past its old size" in err
    assert qemu_info(img)["virtual-size"] == 128 << 20


def test_undo_usage_errors(tmp_path: Path, capsys):
    img = tmp_path / "vm.qcow2"
    for args in (
        ("new", "--undo", img, "1G"),
        ("convert", "--undo", img, tmp_path / "b.qcow2"),
        ("resize", "--undo", img, "1G"),
        ("snapshot", img, "--undo", "create"),
        ("new", img),
        ("resize", img),
        ("snapshot", img),
        ("convert", img),
    ):
        try:
            status, _, err = cli(capsys, *args)
        except SystemExit as exc:  # argparse's own usage error
            status, err = exc.code, capsys.readouterr().err
        assert status == 2, args
        assert "--undo" in err or "needs" in err, (args, err)
