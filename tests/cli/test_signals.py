"""SIGTERM, SIGHUP and SIGKILL of ``imagegui flatten|commit|rebase|launch`` mid-run.

The real CLI runs as a process on real images with the real qemu-img / qemu-system; its progress
bar (stderr on a pseudo-terminal) says when the work is under way, and the signal lands then.
Afterwards no qemu process of ours may be left running, the exit status and message must tell
the truth, and a flatten's temporary file may only remain if the scan reports it as a leftover.
qemu-img convert and commit are slowed with their own rate limit (``-r``) by a wrapper that
``exec``s the real binary, so the signal provably lands mid-copy.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from opshelpers import create, fake_qemu_img, overlay, pattern_at, qemu_io

from imagegui.core.ops import journal
from imagegui.core.qemu import qemuimg
from imagegui.core.read.locks import lock_state
from imagegui.core.read.probe import probe_image

SIGNALS = [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL]
_PERCENT = re.compile(rb"(\d+\.\d)%")


@pytest.fixture(autouse=True)
def _journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path.parent / f"{tmp_path.name}-journal.jsonl"
    monkeypatch.setenv("IMAGEGUI_JOURNAL", str(path))
    return path


class Cli:
    """``python -m imagegui ARGS`` with stderr on a pseudo-terminal (so it draws progress)."""

    def __init__(self, *args: object, env: dict[str, str] | None = None):
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "imagegui", *map(str, args)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=slave,
            env={**os.environ, **(env or {})},
        )
        os.close(slave)
        self.err = b""

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return False
        try:
            data = os.read(self.master, 65536)
        except OSError:  # the child closed its end
            return False
        self.err += data
        return bool(data)

    def await_progress(
        self, above: float = 0.0, timeout: float = 60, or_done: bool = False
    ) -> float:
        """Blocks until the progress bar shows more than ``above`` percent (not 100); with
        ``or_done``, 100 % counts too (work that cannot be slowed down may finish between two
        redraws of the bar on a quiet machine; the caller then checks the finished outcome)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            shown = [float(m) for m in _PERCENT.findall(self.err)]
            if any(above < p < 100.0 or (or_done and p == 100.0) for p in shown):
                return max(shown)
            if not self._read(deadline - time.monotonic()) and self.proc.poll() is not None:
                break
        raise AssertionError(f"no progress above {above}%: {self.err.decode(errors='replace')}")

    def finish(self, timeout: float = 90) -> tuple[int, str, str]:
        out, _ = self.proc.communicate(timeout=timeout)
        while self._read(0.2):
            pass
        os.close(self.master)
        return self.proc.returncode, out.decode(), self.err.decode(errors="replace")


def _ours(root: Path) -> list[int]:
    """Processes (other than this test) whose command line names the test's directory."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if str(root).encode() in cmd:
            found.append(int(entry))
    return found


def assert_none_left(root: Path, timeout: float = 20) -> None:
    """Every process naming ``root`` has ended (a killed CLI's children get their signal from
    the kernel as it dies; they need a moment to act on it)."""
    for pid in _ours(root):
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        try:
            select.select([fd], [], [], timeout)
        finally:
            os.close(fd)
    left = {pid: Path(f"/proc/{pid}/cmdline").read_bytes() for pid in _ours(root)}
    assert not left, left


def _throttled(root: Path) -> dict[str, str]:
    real = qemuimg.executable()
    fake = fake_qemu_img(
        root,
        f'case "$1" in convert|commit) v=$1; shift; exec {real} "$v" -r 8M "$@";; esac\n'
        f'exec {real} "$@"',
    )
    return {"IMAGEGUI_QEMU_IMG": str(fake)}


def _exit_status(sig: int, rc: int) -> None:
    if sig == signal.SIGKILL:
        assert rc == -signal.SIGKILL
    else:
        assert rc == 128 + sig


def _unreported_partials(root: Path) -> list[str]:
    """Temporary files left in ``root`` that ``imagegui check`` does not name as leftovers."""
    partials = [n for n in os.listdir(root) if n.endswith(".partial")]
    if not partials:
        return []
    check = subprocess.run(
        [sys.executable, "-m", "imagegui", "check", str(root)], capture_output=True, text=True
    )
    scan = json.loads(
        subprocess.run(
            [sys.executable, "-m", "imagegui", "scan", "--json", str(root)],
            capture_output=True,
            text=True,
        ).stdout
    )
    images = {i["path"] for i in scan["images"]}
    notes = {n["path"] for n in scan["notes"]}
    unreported = []
    for name in partials:
        path = str(root / name)
        line = next((x for x in check.stdout.splitlines() if name in x), "")
        if "leftover-file" not in line or path in images or path not in notes:
            unreported.append(name)
    return unreported


@pytest.mark.slow
@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_flatten(tmp_path: Path, sig: int):
    base = create(tmp_path / "base.qcow2")
    top = overlay(tmp_path / "top.qcow2", base)
    qemu_io(top, "write -P 0x5a 0 24M")
    env = _throttled(tmp_path)
    before = sorted(os.listdir(tmp_path))
    cli = Cli("flatten", top, tmp_path / "flat.qcow2", env=env)
    cli.await_progress()
    cli.proc.send_signal(sig)
    rc, _, err = cli.finish()
    _exit_status(sig, rc)
    assert_none_left(tmp_path)
    assert not (tmp_path / "flat.qcow2").exists()
    if sig != signal.SIGKILL:
        assert "flatten cancelled: no file was created" in err
        assert sorted(os.listdir(tmp_path)) == before
    else:  # nothing could clean up: the file is there, and the scan says what it is
        assert any(n.endswith(".partial") for n in os.listdir(tmp_path))
    assert _unreported_partials(tmp_path) == []


@pytest.mark.slow
@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_commit(tmp_path: Path, sig: int):
    base = create(tmp_path / "base.qcow2")
    top = overlay(tmp_path / "top.qcow2", base)
    qemu_io(top, "write -P 0x5a 0 24M")
    cli = Cli("commit", top, env=_throttled(tmp_path))
    cli.await_progress(above=-1)  # commit shows 0% until its (rate-limited) copy is done
    cli.proc.send_signal(sig)
    rc, _, err = cli.finish()
    _exit_status(sig, rc)
    assert_none_left(tmp_path)
    # The commit did not go on after the stop: the overlay still holds its data and shows it.
    stamp = os.stat(base).st_mtime_ns
    assert qemuimg.own_data(str(top), "qcow2") == 24 << 20
    assert pattern_at(top, 0x5A, 0, "24M")
    assert os.stat(base).st_mtime_ns == stamp
    if sig != signal.SIGKILL:
        assert re.search(r"commit cancelled (during the copy|before anything).*top.qcow2", err)
        assert "still holds all its data" in err or "are unchanged" in err


@pytest.mark.slow
@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_safe_rebase(tmp_path: Path, sig: int, _journal: Path):
    old = create(tmp_path / "old.qcow2", "1G")
    new = create(tmp_path / "new.qcow2", "1G")
    top = overlay(tmp_path / "top.qcow2", old)
    # qemu-img rebase has no rate limit (-r) to slow it down like convert and commit: 512 MiB to
    # copy makes a signal mid-copy likely; one landing after the copy is checked as finished.
    qemu_io(old, "write -P 0x11 0 512M")
    cli = Cli("rebase", top, new)
    if cli.await_progress(or_done=True) < 100.0:
        cli.proc.send_signal(sig)  # else it finished first: no signal, the finished outcome
    rc, out, err = cli.finish()
    assert_none_left(tmp_path)
    backing = probe_image(str(top)).backing_file
    entry = journal.last_undoable(str(top)) if _journal.exists() else None
    if rc == 0:  # the signal came after qemu-img had finished: done, and journalled
        assert backing == "new.qcow2" and entry is not None, (out, err)
    else:
        _exit_status(sig, rc)
        if sig != signal.SIGKILL:
            assert backing == "old.qcow2" and entry is None
            assert "rebase cancelled: " in err and "still backs onto 'old.qcow2'" in err
        # Whatever was copied, the guest still sees exactly what it saw.
    assert pattern_at(top, 0x11, 0, "512M")


@pytest.mark.slow
@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_launch(tmp_path: Path, sig: int):
    img = create(tmp_path / "vm.qcow2")
    cli = Cli(
        "launch", img, "--headless", "--accel", "tcg", "--memory", "64", "--stop-timeout", "1"
    )
    line = cli.proc.stdout.readline().decode()
    assert line.startswith("VM running:"), line
    assert lock_state(str(img)).writer
    cli.proc.send_signal(sig)
    rc, out, err = cli.finish()
    _exit_status(sig, rc)
    assert_none_left(tmp_path)
    assert not lock_state(str(img)).in_use
    if sig != signal.SIGKILL:
        assert "Ctrl-C again to force off" in err and "VM stopped" in out


@pytest.mark.slow
def test_vms_lists_a_vm_whose_launcher_is_gone_and_stop_stops_it(tmp_path: Path):
    from imagegui.core.ops.launch import LaunchOptions, plan_launch

    img = create(tmp_path / "kept,running.qcow2")
    vm = plan_launch(str(img), LaunchOptions(memory=64, accel="tcg")).run().vm
    try:
        vm.close()  # its launcher's handle is gone; the VM runs on

        def cli(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                [sys.executable, "-m", "imagegui", *args], capture_output=True, text=True
            )

        listed = cli("vms", "--json")
        assert listed.returncode == 0, listed.stderr
        (entry,) = [v for v in json.loads(listed.stdout)["vms"] if v["pid"] == vm.pid]
        assert entry["image"] == str(img) and entry["name"] == "imagegui:kept,running.qcow2"
        assert f"PID {vm.pid}  imagegui:kept,running.qcow2" in cli("vms").stdout
        missing = cli("stop", str(tmp_path / "other.qcow2"))
        assert missing.returncode == 2 and "no VM started by imagegui runs" in missing.stderr
        stopped = cli("stop", str(img), "--timeout", "0.5")  # SeaBIOS ignores the power-down
        assert stopped.returncode == 0, stopped.stderr
        assert "stopped" in stopped.stdout and "powering down" in stopped.stderr
        assert vm.wait(10) == 0
        assert not lock_state(str(img)).in_use
        assert "no VM started by imagegui is running" in cli("vms").stdout
    finally:
        vm.stop(timeout=0)
