"""Logging as a user meets it: ``-v`` on stderr, the rotating file, what gets written there."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

from imagegui import logsetup


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "imagegui", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_verbose_prints_log_lines_to_stderr_and_quiet_does_not(make, tmp_path, log_file):
    make.create("base.qcow2", "qcow2", "1M")
    quiet = run("scan", str(tmp_path))
    assert quiet.returncode == 0 and quiet.stderr == ""
    loud = run("scan", "-v", str(tmp_path))
    assert loud.returncode == 0
    assert f"imagegui: INFO: scanned {tmp_path}: 1 images" in loud.stderr
    assert "DEBUG" not in loud.stderr
    before = run("-v", "scan", str(tmp_path))  # before the command works too
    assert before.returncode == 0 and "INFO: scanned" in before.stderr
    louder = run("scan", "-vv", str(tmp_path))
    assert "imagegui: DEBUG: imagegui started" in louder.stderr
    # The file got all three runs (INFO and up), stdout stayed the tree alone.
    text = log_file.read_text()
    assert text.count(f"scanned {tmp_path}") == 4
    assert "INFO" not in loud.stdout


def test_log_file_has_the_qemu_img_command_line_and_exit_status(make, tmp_path, log_file):
    base = make.create("base.qcow2", "qcow2", "1M")
    proc = run("overlay", str(base), str(tmp_path / "top.qcow2"))
    assert proc.returncode == 0, proc.stderr
    lines = log_file.read_text().splitlines()
    [started] = [line for line in lines if "run (pid" in line and " create " in line]
    assert "qemu-img create -f qcow2 -b base.qcow2 -F qcow2" in started
    assert str(tmp_path / "top.qcow2") in started
    pid = started.split("run (pid ")[1].split(")")[0]
    assert any(f"exit status 0 (pid {pid})" in line for line in lines)
    assert any("plan overlay:" in line and "runs (1 commands" in line for line in lines)
    assert any("imagegui overlay: exit status 0" in line for line in lines)


def test_a_failing_qemu_img_is_logged_with_its_message(make, tmp_path, log_file):
    base = make.create("base.qcow2", "qcow2", "1M")
    (tmp_path / "top.qcow2").write_bytes(b"")
    proc = run("overlay", str(base), str(tmp_path / "top.qcow2"))
    assert proc.returncode == 2  # refused: the target exists
    assert "refused" in log_file.read_text()


def test_the_log_rotates_at_its_size(tmp_path, monkeypatch):
    path = tmp_path / "state" / "imagegui.log"
    monkeypatch.setenv("IMAGEGUI_LOG", str(path))
    monkeypatch.setattr(logsetup, "MAX_BYTES", 2000)
    try:
        assert logsetup.setup(0) == path
        log = logging.getLogger("imagegui.test")
        for n in range(200):
            log.info("line %d %s", n, "x" * 50)
    finally:
        logsetup.close()
    names = sorted(p.name for p in path.parent.iterdir())
    assert names == ["imagegui.log", "imagegui.log.1", "imagegui.log.2", "imagegui.log.3"]
    assert all(p.stat().st_size <= 2000 for p in path.parent.iterdir())
    assert "line 199" in logsetup.tail(path)


def test_log_path_follows_xdg_state_home(monkeypatch, tmp_path):
    monkeypatch.delenv("IMAGEGUI_LOG")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert logsetup.log_path() == tmp_path / "imagegui" / "imagegui.log"


def test_an_unwritable_log_place_is_a_note_not_a_failure(make, tmp_path):
    make.create("base.qcow2", "qcow2", "1M")
    blocker = tmp_path / "file"
    blocker.write_text("")
    proc = run("scan", str(tmp_path), env={"IMAGEGUI_LOG": str(blocker / "x" / "imagegui.log")})
    assert proc.returncode == 0
    assert "note: no log file" in proc.stderr
