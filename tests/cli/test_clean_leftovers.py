"""``imagegui clean-leftovers``: a flatten's temporary files are listed, then removed - unless a
process has one open, it was just written, or its name is not exactly a leftover's (exit 2)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from opshelpers import create, overlay, qemu_io

from imagegui.cli import run_cli

NAME = ".flat.qcow2.0badcafe.partial"


def cli(capsys: pytest.CaptureFixture, *args: object) -> tuple[int, str, str]:
    status = run_cli([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


def leftover(path: Path, size: int = 300_000, age: float = 7200) -> Path:
    path.write_bytes(os.urandom(size))
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def test_dry_run_lists_size_and_age_then_the_run_removes(tmp_path: Path, capsys):
    create(tmp_path / "base.qcow2")
    partial = leftover(tmp_path / NAME)
    status, out, _ = cli(capsys, "clean-leftovers", tmp_path, "--dry-run")
    assert status == 0, out
    assert f"removes {partial} (293 KiB, last written 2 h ago)" in out
    assert "verdict: ok to run" in out
    assert partial.exists()
    status, out, _ = cli(capsys, "clean-leftovers", tmp_path)
    assert status == 0, out
    assert f"removed {partial} (300,000 bytes)" in out
    assert not partial.exists()
    assert sorted(os.listdir(tmp_path)) == ["base.qcow2"]
    status, out, _ = cli(capsys, "clean-leftovers", tmp_path)
    assert (status, out) == (0, "no leftover temporary files found\n")


def test_an_open_file_and_a_wrong_name_are_kept_the_rest_removed_exit_2(tmp_path: Path, capsys):
    held = leftover(tmp_path / ".a.qcow2.12345678.partial")
    free = leftover(tmp_path / ".b.qcow2.9abcdef0.partial")
    wrong = leftover(tmp_path / ".c.qcow2.NOTHEX12.partial")
    link = tmp_path / ".d.qcow2.aaaaaaaa.partial"
    link.symlink_to(free)
    with open(held, "rb") as f:
        holder = subprocess.Popen(["sleep", "60"], stdin=f)
    try:
        status, out, _ = cli(capsys, "clean-leftovers", tmp_path, wrong, link, "--dry-run")
        assert status == 2
        assert f"is open by PID {holder.pid} (sleep)" in out
        assert f"removes {free} " in out and f"removes {held}" not in out
        assert "not a temporary file of imagegui's" in out
        assert "not a regular file" in out
        assert all(p.exists() for p in (held, free, wrong))
        status, out, err = cli(capsys, "clean-leftovers", tmp_path, wrong, link)
    finally:
        holder.kill()
        holder.wait()
    assert status == 2
    assert f"removed {free} " in out
    assert f"refused: {held} is open by PID {holder.pid} (sleep)" in err
    assert f"refused: {wrong} is not a temporary file" in err
    assert not free.exists() and held.exists() and wrong.exists() and link.is_symlink()
    status, out, _ = cli(capsys, "clean-leftovers", held)  # its holder is gone now
    assert status == 0 and not held.exists()


def test_a_file_written_seconds_ago_is_kept(tmp_path: Path, capsys):
    fresh = leftover(tmp_path / NAME, age=0)
    status, _, err = cli(capsys, "clean-leftovers", tmp_path)
    assert status == 2 and "may belong to a flatten that is starting" in err
    assert fresh.exists()


def test_dry_run_json_and_a_missing_path(tmp_path: Path, capsys):
    partial = leftover(tmp_path / NAME)
    status, out, _ = cli(capsys, "clean-leftovers", tmp_path, "--dry-run", "--json")
    assert status == 0
    doc = json.loads(out)
    assert doc["op"] == "clean-leftovers" and not doc["refused"]
    assert [c.split(" (")[0] for c in doc["changes"]] == [f"removes {partial}"]
    status, _, err = cli(capsys, "clean-leftovers", tmp_path / "nope")
    assert status == 2 and "no such file or directory" in err


def test_check_names_the_command_that_cleans_up(tmp_path: Path, capsys):
    partial = leftover(tmp_path / NAME)
    status, out, _ = cli(capsys, "check", tmp_path)
    line = next(x for x in out.splitlines() if "leftover-file" in x)
    assert f"Fix: imagegui clean-leftovers {partial}" in line


@pytest.mark.slow
def test_the_leftover_of_a_killed_flatten_is_removed(tmp_path: Path):
    from cli.test_signals import Cli, _throttled, assert_none_left

    base = create(tmp_path / "base.qcow2")
    top = overlay(tmp_path / "top.qcow2", base)
    qemu_io(top, "write -P 0x5a 0 24M")
    run = Cli("flatten", top, tmp_path / "flat.qcow2", env=_throttled(tmp_path))
    run.await_progress()
    run.proc.send_signal(signal.SIGKILL)
    run.finish()
    assert_none_left(tmp_path)
    (partial,) = [tmp_path / n for n in os.listdir(tmp_path) if n.endswith(".partial")]
    then = time.time() - 120  # as when the user comes back to it
    os.utime(partial, (then, then))

    def imagegui(*args: object) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "imagegui", *map(str, args)]
        return subprocess.run(cmd, capture_output=True, text=True)

    dry = imagegui("clean-leftovers", "--dry-run", tmp_path)
    assert dry.returncode == 0 and f"removes {partial} (" in dry.stdout and partial.exists()
    done = imagegui("clean-leftovers", tmp_path)
    assert done.returncode == 0, done.stderr
    assert not partial.exists()
    assert "leftover-file" not in imagegui("check", tmp_path).stdout
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".") or n == "flat.qcow2"]


@pytest.fixture
def locked_dir(tmp_path: Path):
    """A directory whose entries cannot be removed: read-only for a user, immutable for root."""
    d = tmp_path / "locked"
    d.mkdir()
    leftover(d / NAME)
    if os.geteuid() != 0:
        d.chmod(0o555)
        yield d
        d.chmod(0o755)
        return
    if subprocess.run(["chattr", "+i", str(d)], capture_output=True).returncode != 0:
        pytest.skip("cannot make a directory immutable here (chattr)")
    try:
        yield d
    finally:
        subprocess.run(["chattr", "-i", str(d)], check=True)


def test_a_removal_that_fails_exits_1(locked_dir: Path, capsys):
    status, out, err = cli(capsys, "clean-leftovers", locked_dir)
    assert status == 1, (out, err)
    assert f"cannot remove {locked_dir / NAME}: " in err
    assert (locked_dir / NAME).exists()


def test_scan_and_check_name_a_leftover_once(tmp_path: Path, capsys):
    partial = leftover(tmp_path / NAME)
    for command in ("scan", "check"):
        _, out, _ = cli(capsys, command, tmp_path)
        lines = [line for line in out.splitlines() if partial.name in line]
        assert len(lines) == 1, out  # not also as a note and as "not readable"


def test_dry_run_json_levels_and_searched_folders(tmp_path: Path, capsys):
    """The plan JSON: each finding's level is "error" / "warning" / "info" (an error refuses),
    and the folders searched for images backing onto the files are stated."""
    partial = create(tmp_path / NAME)  # a real base with a leftover's name
    overlay(tmp_path / "top.qcow2", partial)  # something backs onto it: not a leftover
    then = time.time() - 7200
    os.utime(partial, (then, then))
    status, out, _ = cli(capsys, "clean-leftovers", partial, "--dry-run", "--json")
    assert status == 2
    doc = json.loads(out)
    assert [(f["code"], f["level"]) for f in doc["findings"]] == [("has-overlays", "error")]
    assert doc["searched"] == [str(tmp_path)] and doc["refused"] is True
    status, out, err = cli(capsys, "clean-leftovers", partial, "--dry-run")
    assert "[refused] " in out
    assert f"searched for images backing onto these files in: {tmp_path}" in out.splitlines()
