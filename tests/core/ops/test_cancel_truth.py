"""A cancelled operation reports the state read back from the files, never an assumed one.

A cancel can land after qemu-img did its work: a commit that had copied and emptied the overlay
was reported as "unchanged"; a safe rebase whose pointer was already rewritten left no journal
entry. The real qemu-img does the work here; a wrapper then keeps the process alive (as a slow
exit would) so the cancel provably lands after it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from opshelpers import create, fake_qemu_img, overlay, pattern_at, qemu_io

from imagegui.core.jobs import CancelledError, CancelToken
from imagegui.core.ops import journal
from imagegui.core.ops.commit import plan_commit
from imagegui.core.ops.rebase import plan_rebase
from imagegui.core.qemu import qemuimg
from imagegui.core.read.probe import probe_image


@pytest.fixture(autouse=True)
def _journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEGUI_JOURNAL", str(tmp_path / "journal.jsonl"))


def _slow_exit(tmp_path: Path, verb: str) -> tuple[Path, str]:
    """qemu-img that does the real ``verb``, says so on a FIFO, then does not exit: (the FIFO,
    the program to plan with)."""
    fifo = tmp_path / "done"
    os.mkfifo(fifo)
    real = qemuimg.executable()
    fake = fake_qemu_img(
        tmp_path,
        f'if [ "$1" = {verb} ]; then {real} "$@" || exit $?; echo done > {fifo}; exec sleep 300; '
        f'fi\nexec {real} "$@"',
    )
    return fifo, str(fake)


def _cancel_when(fifo: Path, token: CancelToken) -> None:
    import threading

    def wait() -> None:
        with open(fifo) as f:
            f.read()
        token.cancel()

    threading.Thread(target=wait, daemon=True).start()


def test_commit_cancelled_after_it_finished_says_so(tmp_path):
    base = create(tmp_path / "base.qcow2")
    top = overlay(tmp_path / "ov.qcow2", base)
    qemu_io(top, "write -P 0x3c 0 4M")
    fifo, fake = _slow_exit(tmp_path, "commit")
    plan = plan_commit(str(top), qemu_img=fake)
    assert not plan.refused
    token = CancelToken()
    _cancel_when(fifo, token)
    with pytest.raises(CancelledError) as exc:
        plan.run(cancel=token)
    message = str(exc.value)
    assert "unchanged" not in message
    assert "had finished" in message and "was emptied" in message
    # What it says is what the files show: the base has the data, the overlay holds none.
    assert pattern_at(base, 0x3C, 0, "4M")
    assert qemuimg.own_data(str(top), "qcow2") == 0


def test_commit_cancelled_before_writing_says_both_unchanged(tmp_path):
    base = create(tmp_path / "base.qcow2")
    top = overlay(tmp_path / "ov.qcow2", base)
    qemu_io(top, "write -P 0x3c 0 1M")
    plan = plan_commit(str(top))
    token = CancelToken()
    token.cancel()
    with pytest.raises(CancelledError, match="nothing was changed"):
        plan.run(cancel=token)
    assert qemuimg.own_data(str(top), "qcow2") == 1 << 20


def test_safe_rebase_cancelled_after_it_finished_is_journalled(tmp_path):
    old = create(tmp_path / "old.qcow2")
    new = create(tmp_path / "new.qcow2")
    top = overlay(tmp_path / "top.qcow2", old)
    qemu_io(old, "write -P 0x11 0 1M")
    fifo, fake = _slow_exit(tmp_path, "rebase")
    plan = plan_rebase(str(top), str(new), qemu_img=fake)
    assert not plan.refused
    token = CancelToken()
    _cancel_when(fifo, token)
    result = plan.run(cancel=token)
    assert "the cancel came too late" in result.message
    assert probe_image(str(top)).backing_file == "new.qcow2"
    entry = journal.last_undoable(str(top))
    assert entry is not None and entry.old_backing == "old.qcow2"
    assert pattern_at(top, 0x11, 0, "1M")  # what the guest saw, kept
