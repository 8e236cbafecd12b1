"""Flatten…: a run cancelled from the operations panel leaves no file behind."""

from __future__ import annotations

import os

import pytest
from conftest import qemu_info
from opshelpers import big_chain


@pytest.mark.slow
def test_flatten_cancelled_from_the_jobs_panel_leaves_nothing(
    qtbot, window, open_dir, wait_plan, tmp_path
):
    _, top = big_chain(tmp_path, mib=256)
    before = sorted(os.listdir(tmp_path))
    open_dir(tmp_path)
    window.selection.set(str(top))
    window.actions.flatten.trigger()
    dialog = window.ops.dialog
    out = dialog.out_path
    assert out == str(tmp_path / "top-flat.qcow2")
    plan = wait_plan(dialog)
    assert not plan.refused
    assert "qemu-img convert -p -f qcow2 -O qcow2" in dialog.preview.toPlainText()
    dialog.accept()

    record = window.jobs.records[-1]
    assert window.jobs_dock.isVisible()
    qtbot.waitUntil(lambda: record.row.progress.value() > 0, timeout=30_000)  # mid-copy
    with qtbot.waitSignal(window.jobs.jobCancelled, timeout=30_000) as blocker:
        qtbot.mouseClick(record.row.cancel, qtbot_left())
    assert "no file was created" in blocker.args[1]
    assert record.state == "cancelled"
    assert record.row.state.text() == "cancelled"
    assert sorted(os.listdir(tmp_path)) == before  # no output, no .partial
    assert not os.path.exists(out)


def test_flatten_runs_and_the_copy_appears(qtbot, window, open_dir, wait_plan, tmp_path):
    _, top = big_chain(tmp_path, mib=4)
    open_dir(tmp_path)
    window.selection.set(str(top))
    window.actions.flatten.trigger()
    dialog = window.ops.dialog
    out = dialog.out_path
    wait_plan(dialog)
    with qtbot.waitSignal(window.ready, timeout=60_000):
        dialog.accept()
    assert window.jobs.records[-1].state == "done"
    assert "backing-filename" not in qemu_info(out)
    assert window.selection.node == out


def qtbot_left():
    from PySide6.QtCore import Qt

    return Qt.MouseButton.LeftButton
