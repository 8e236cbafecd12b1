"""The operation subcommands: dry runs, refusals (exit 2), qemu failures (1), Ctrl-C (130)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import qemu_info
from opshelpers import create, fake_qemu_img, overlay, pattern_at, qemu_io, same_content, sha256

from imagegui.cli import run_cli
from imagegui.cli.ops_cmds import ProgressBar
from imagegui.core.read.locks import lock_state


@pytest.fixture(autouse=True)
def _journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEGUI_JOURNAL", str(tmp_path / "journal.jsonl"))


def cli(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    status = run_cli([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


def test_overlay_dry_run_prints_the_command_and_changes_nothing(tmp_path: Path, capsys):
    base = create(tmp_path / "base.qcow2")
    status, out, _ = cli(capsys, "overlay", base, tmp_path / "new.qcow2", "--dry-run")
    assert status == 0
    assert f"$ qemu-img create -f qcow2 -b base.qcow2 -F qcow2 {tmp_path}/new.qcow2" in out
    assert "verdict: ok to run" in out
    assert sorted(os.listdir(tmp_path)) == ["base.qcow2"]


def test_overlay_runs_and_refuses_existing_target(tmp_path: Path, capsys):
    base = create(tmp_path / "base.qcow2")
    status, out, _ = cli(capsys, "overlay", base, tmp_path / "new.qcow2", "--size", "128M")
    assert status == 0 and "created" in out
    assert qemu_info(tmp_path / "new.qcow2")["virtual-size"] == 128 << 20
    before = sha256(tmp_path / "new.qcow2")
    status, _, err = cli(capsys, "overlay", base, tmp_path / "new.qcow2")
    assert status == 2 and "refused:" in err and "already exists" in err
    assert sha256(tmp_path / "new.qcow2") == before


def test_bad_size_is_a_usage_error(tmp_path: Path, capsys):
    base = create(tmp_path / "base.qcow2")
    status, _, err = cli(capsys, "overlay", base, tmp_path / "n.qcow2", "--size", "lots")
    assert status == 2 and "not a size" in err


def test_commit_shared_refused_then_forced(tmp_path: Path, capsys):
    base = create(tmp_path / "base.qcow2")
    top = overlay(tmp_path / "top.qcow2", base)
    sib = overlay(tmp_path / "sib.qcow2", base)
    qemu_io(top, "write -P 0xab 0 1M")
    before = sha256(base)
    status, _, err = cli(capsys, "commit", top)
    assert status == 2 and str(sib) in err
    assert sha256(base) == before
    status, out, _ = cli(capsys, "commit", top, "--dry-run", "--force")
    assert status == 0 and "[forced]" in out and sha256(base) == before
    status, out, err = cli(capsys, "commit", top, "--force")
    assert status == 0 and "warning:" in err
    assert pattern_at(base, 0xAB, 0, "1M")


def test_commit_dry_run_names_the_folders_searched_for_other_overlays(make, tmp_path: Path, capsys):
    """templates/base <- clones/mine: the search covers their common parent, and the text says
    so once (in the note, with what was not looked at), a name's control characters escaped (no
    forged verdict line)."""
    root = tmp_path / "x\nverdict: ok to run"
    make.create(f"{root.name}/templates/base.qcow2")
    mine = make.overlay(f"{root.name}/clones/mine.qcow2", "../templates/base.qcow2")
    status, out, _ = cli(capsys, "commit", mine, "--dry-run")
    assert status == 0
    shown = str(root).replace("\n", "\\n")
    [said] = [line for line in out.splitlines() if f"under {shown};" in line]
    assert said.startswith("  [note] looked for other overlays of ")
    assert "searched for other overlays in:" not in out
    assert [line for line in out.splitlines() if line.startswith("verdict:")] == [
        "verdict: ok to run"
    ]


def test_rebase_unsafe_repair_and_undo(tmp_path: Path, capsys):
    base = create(tmp_path / "base.qcow2")
    top = overlay(tmp_path / "top.qcow2", base)
    os.rename(base, tmp_path / "renamed.qcow2")
    status, _, err = cli(capsys, "rebase", top, tmp_path / "renamed.qcow2")
    assert status == 2 and "--unsafe" in err  # safe mode needs the old base
    status, out, _ = cli(capsys, "rebase", top, tmp_path / "renamed.qcow2", "--unsafe")
    assert status == 0 and "--undo" in out
    assert qemu_info(top)["backing-filename"] == "renamed.qcow2"
    os.rename(tmp_path / "renamed.qcow2", base)  # put it back, then undo the repair
    status, _, _ = cli(capsys, "rebase", top, "--undo")
    assert status == 0
    assert qemu_info(top)["backing-filename"] == "base.qcow2"


def test_rebase_refuses_raw_with_reason(tmp_path: Path, capsys):
    base = create(tmp_path / "base.qcow2")
    raw = create(tmp_path / "disk.img", fmt="raw")
    status, _, err = cli(capsys, "rebase", raw, base, "--unsafe")
    assert status == 2 and "only qcow2 and qed" in err
    status, _, err = cli(capsys, "rebase", raw)
    assert status == 2 and "NEW_BACKING" in err


def test_flatten_and_check_image(tmp_path: Path, capsys):
    base = create(tmp_path / "base.qcow2")
    top = overlay(tmp_path / "top.qcow2", base)
    qemu_io(top, "write -P 0x5a 0 2M")
    out_path = tmp_path / "flat.qcow2"
    status, out, _ = cli(capsys, "flatten", top, out_path)
    assert status == 0 and same_content(top, out_path)
    status, out, _ = cli(capsys, "check-image", out_path)
    assert status == 0 and "no problems" in out
    status, out, _ = cli(capsys, "check-image", out_path, "--json")
    assert status == 0 and json.loads(out)["problems"] == []


def test_qemu_failure_is_exit_1_with_its_message(tmp_path: Path, capsys, monkeypatch):
    base = create(tmp_path / "base.qcow2")
    top = overlay(tmp_path / "top.qcow2", base)
    fake = fake_qemu_img(
        tmp_path, "echo \"qemu-img: Could not open '$4': Input/output error\" >&2; exit 1"
    )
    monkeypatch.setenv("IMAGEGUI_QEMU_IMG", str(fake))
    status, _, err = cli(capsys, "commit", top)
    assert status == 1 and "Input/output error" in err


def test_launch_dry_run_and_base_refusal(tmp_path: Path, capsys):
    base = create(tmp_path / "base.qcow2")
    status, out, _ = cli(capsys, "launch", base, "--dry-run", "--headless", "--accel", "tcg")
    assert status == 0 and "$ qemu-system-x86_64 " in out and "accel=tcg" in out
    overlay(tmp_path / "child.qcow2", base)
    status, _, err = cli(capsys, "launch", base, "--headless")
    assert status == 2 and "--snapshot" in err
    status, out, _ = cli(capsys, "launch", base, "--snapshot", "--dry-run")
    assert status == 0 and "snapshot=on" in out


def test_progress_bar_renders_in_place():
    stream = io.StringIO()
    bar = ProgressBar("flatten: a into b", stream, width=10)
    bar(0.0)
    bar(0.5)
    bar.finish()
    assert stream.getvalue() == (
        "\r[----------]   0.0%  flatten: a into b\r[#####-----]  50.0%  flatten: a into b\n"
    )


# --------------------------------------------------------------------------- as a real process


def _spawn(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "imagegui", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def test_ctrl_c_cancels_flatten_and_removes_the_partial_file(tmp_path: Path):
    base = create(tmp_path / "base.qcow2")
    top = overlay(tmp_path / "top.qcow2", base)
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
    proc = _spawn("flatten", top, tmp_path / "out.qcow2", env={"IMAGEGUI_QEMU_IMG": str(fake)})
    with open(fifo) as f:  # blocks until the fake convert has written its partial file
        assert f.read() == "ready\n"
    assert any(p.endswith(".partial") for p in os.listdir(tmp_path))
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "flatten cancelled: no file was created" in err
    assert sorted(os.listdir(tmp_path)) == ["base.qcow2", "fake-qemu-img", "ready", "top.qcow2"]


@pytest.mark.slow
def test_launch_runs_until_ctrl_c_powers_it_down(tmp_path: Path):
    img = create(tmp_path / "vm.qcow2")
    proc = _spawn(
        "launch", img, "--headless", "--accel", "tcg", "--memory", "64", "--stop-timeout", "1"
    )
    line = proc.stdout.readline()  # printed once QMP answered
    assert line.startswith("VM running:"), proc.stderr.read() if proc.poll() is not None else line
    assert lock_state(str(img)).writer
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err  # cancelled by Ctrl-C, as every command
    assert "powering down" in err and "Ctrl-C again to force off" in err and "VM stopped" in out
    assert not lock_state(str(img)).in_use
