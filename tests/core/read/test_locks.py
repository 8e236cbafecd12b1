"""The kernel's lock table read for QEMU's locks (``/proc/locks``), against a real qemu-io."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from imagegui.core.read.locks import lock_state, qemu_locks, read_qemu_locks

SAMPLE = """\
1: OFDLCK ADVISORY  READ -1 fe:00:2152009 203 203
2: OFDLCK ADVISORY  READ -1 fe:00:2152009 100 101
3: FLOCK  ADVISORY  READ 3674 fe:00:16637956 0 EOF
4: POSIX  ADVISORY  WRITE 812 00:2f:77 0 EOF
5: OFDLCK ADVISORY  WRITE -1 fe:00:99 0 10
6: -> OFDLCK ADVISORY  WRITE -1 fe:00:55 100 100
7: OFDLCK ADVISORY  READ -1 fe:00:bad 100 100
"""


def test_only_locks_on_qemu_s_bytes_are_kept():
    assert qemu_locks(SAMPLE) == {
        (2152009, 203, 203, "READ"),
        (2152009, 100, 101, "READ"),
        (77, 0, 299, "WRITE"),  # a POSIX lock to the end covers QEMU's bytes too
    }
    assert qemu_locks("") == frozenset()


def test_unreadable_lock_table_is_none(tmp_path):
    assert read_qemu_locks(str(tmp_path / "missing")) is None


@pytest.fixture
def holder():
    """``holder(path, *flags)``: a real qemu-io that opens ``path`` and stops itself, holding
    QEMU's locks until killed (awaited with waitpid, no sleep)."""
    qemu_io = shutil.which("qemu-io")
    if qemu_io is None:
        pytest.fail("qemu-io is not installed (Debian: qemu-utils)")
    procs: list[subprocess.Popen] = []

    def run(path, *flags: str) -> subprocess.Popen:
        argv = [qemu_io, "-f", "qcow2", *flags, "-c", "sigraise 19", str(path)]
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        procs.append(proc)
        _, status = os.waitpid(proc.pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status), proc.stderr.read().decode() if proc.stderr else status
        return proc

    yield run
    for proc in procs:
        proc.kill()
        proc.wait()


def test_a_qemu_s_locks_are_in_the_table_by_inode(make, holder):
    base = make.create("base.qcow2")
    top = make.overlay("top.qcow2", "base.qcow2")
    before = read_qemu_locks()
    assert before is not None
    ino = {os.stat(p).st_ino: p for p in (base, top)}
    assert not {lock[0] for lock in before} & ino.keys()
    proc = holder(top)
    assert lock_state(str(top)).writer
    held = read_qemu_locks()
    assert held is not None
    # The overlay and its base (other processes' locks come and go beside them).
    assert {lock[0] for lock in held - before} >= ino.keys()
    assert any(lock[0] == os.stat(top).st_ino and lock[1] <= 101 <= lock[2] for lock in held)
    proc.kill()
    proc.wait()
    after = read_qemu_locks()
    assert after is not None and not {lock[0] for lock in after} & ino.keys()
