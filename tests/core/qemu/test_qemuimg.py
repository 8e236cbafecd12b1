"""The qemu-img runner: progress parsing, cancel (terminate, then kill), actionable errors."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest
from opshelpers import create, fake_qemu_img

from imagegui.core.jobs import CancelledError, CancelToken, Throttle
from imagegui.core.qemu import qemuimg
from imagegui.core.qemu.qemuimg import (
    ImageInUseError,
    MissingBackingError,
    NoSpaceError,
    ProgressParser,
    QemuImgError,
    QemuNotFoundError,
    map_error,
)
from imagegui.core.read.holders import describe_holders, holders

# --------------------------------------------------------------------------- progress parsing


def test_progress_parser_handles_split_updates_and_final_newline():
    p = ProgressParser()
    assert p.feed(b"    (0.00/100%)\r    (12.") == [0.0]
    assert p.feed(b"50/100%)\r") == [0.125]
    assert p.feed(b"    (100.00/100%)\r    (100.00/100%)\n") == [1.0, 1.0]
    assert p.feed(b"garbage\r") == []


def test_throttle_keeps_edges_and_drops_floods():
    seen: list[float] = []
    t = Throttle(seen.append, interval=3600)
    for i in range(101):
        t(i / 100)
    assert seen == [0.0, 1.0]


# --------------------------------------------------------------------------- error mapping


def test_lock_error_names_the_holder(tmp_path: Path):
    img = create(tmp_path / "held.qcow2")
    with open(img, "rb") as f:
        holder = subprocess.Popen(["sleep", "300"], stdin=f)
    try:
        assert [h.pid for h in holders(str(img))] == [holder.pid]
        stderr = (
            f"qemu-img: Could not open '{img}': Failed to get \"write\" lock\n"
            f"Is another process using the image [{img}]?\n"
        )
        err = map_error(["qemu-img", "commit", str(img)], 1, stderr)
        assert isinstance(err, ImageInUseError)
        assert err.path == str(img)
        assert f"in use by PID {holder.pid} (sleep)" in str(err)
        assert "Shut the VM" in str(err)
    finally:
        holder.kill()
        holder.wait()


def test_lock_error_from_qemu_system_without_could_not_open():
    stderr = (
        'qemu-system-x86_64: -drive file=/x/a.qcow2,format=qcow2: Failed to get "write" lock\n'
        "Is another process using the image [/x/a.qcow2]?\n"
    )
    err = map_error(["qemu-system-x86_64"], 1, stderr)
    assert isinstance(err, ImageInUseError) and err.path == "/x/a.qcow2"
    assert "not visible" in describe_holders("/x/a.qcow2") or "in use by" in str(err)


def test_no_space_and_missing_backing_and_generic():
    err = map_error(
        ["qemu-img", "convert", "a", "/full/out.qcow2"],
        1,
        "qemu-img: error while writing at byte 0: No space left on device\n",
    )
    assert isinstance(err, NoSpaceError) and "/full/out.qcow2" in str(err)
    err = map_error(
        ["qemu-img", "commit", "top.qcow2"],
        1,
        "qemu-img: Could not open 'top.qcow2': Could not open backing file: Could not open "
        "'gone.qcow2': No such file or directory\n",
    )
    assert isinstance(err, MissingBackingError) and err.backing == "gone.qcow2"
    assert "rebase --unsafe" in err.fix_cli and "--" not in str(err)
    err = map_error(["qemu-img", "info", "x"], 1, "qemu-img: Something odd\n")
    assert type(err) is QemuImgError and str(err) == "qemu-img failed: Something odd"


# --------------------------------------------------------------------------- real runs


def test_run_reports_progress_from_real_convert(tmp_path: Path):
    src = create(tmp_path / "src.qcow2")
    seen: list[float] = []
    qemuimg.run(
        qemuimg.convert_argv(str(src), "qcow2", str(tmp_path / "out.qcow2")), progress=seen.append
    )
    assert seen and seen[-1] == 1.0
    assert seen == sorted(seen)


def test_run_maps_a_real_missing_backing(make):
    top = make.overlay("top.qcow2", "gone.qcow2")
    with pytest.raises(MissingBackingError) as exc:
        qemuimg.run(qemuimg.commit_argv(str(top), "qcow2"))
    assert exc.value.backing.endswith("gone.qcow2")
    assert exc.value.returncode == 1


def test_measure_parses_json(tmp_path: Path):
    src = create(tmp_path / "src.qcow2")
    m = qemuimg.measure(str(src), "qcow2")
    assert 0 < m.required < m.fully_allocated


def test_missing_binary(tmp_path: Path):
    with pytest.raises(QemuNotFoundError, match="nope"):
        qemuimg.run(["qemu-img", "--version"], qemu_img=str(tmp_path / "nope"))


def test_the_chosen_program_runs_not_the_environments(tmp_path: Path, monkeypatch):
    """The program is a parameter: a variable left in the environment (as the window once set
    it) does not choose it; only the command line reads ``$IMAGEGUI_QEMU_IMG``, at its edge."""
    monkeypatch.setenv("IMAGEGUI_QEMU_IMG", str(tmp_path / "nope"))
    assert qemuimg.run(["qemu-img", "--version"]).returncode == 0
    fake = tmp_path / "fake-qemu-img"
    fake.write_text('#!/bin/sh\necho fake "$@"\n')
    fake.chmod(0o755)
    assert qemuimg.run(["qemu-img", "--version"], qemu_img=str(fake)).stdout == "fake --version\n"


# --------------------------------------------------------------------------- cancel


def test_cancel_before_start_spawns_nothing():
    token = CancelToken()
    token.cancel()
    with pytest.raises(CancelledError):
        qemuimg.run(["/nonexistent/never-run"], cancel=token)


def test_cancel_terminates_then_kills_a_child_that_ignores_sigterm(tmp_path: Path):
    """qemu-img stuck in uninterruptible I/O ignores SIGTERM in effect; the grace kill must come."""
    fake = fake_qemu_img(tmp_path, "trap '' TERM\nprintf '    (0.00/100%%)\\r'\nexec sleep 300")
    token = CancelToken()
    first = threading.Event()

    def progress(fraction: float) -> None:
        first.set()
        token.cancel()

    with pytest.raises(CancelledError):
        qemuimg.run([str(fake), "convert"], progress=progress, cancel=token, grace=0.2)
    assert first.is_set()


def test_failure_of_fake_tool_is_mapped(tmp_path: Path):
    fake = fake_qemu_img(tmp_path, "echo \"$0: Could not open 'x': Permission denied\" >&2; exit 1")
    with pytest.raises(QemuImgError, match="Permission denied"):
        qemuimg.run([str(fake), "info", "x"])
