"""Rebase…: a safe rebase may be the default; an unsafe one (pointer only) never runs on Enter."""

from __future__ import annotations

import shutil

from conftest import qemu_info
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest


def test_enter_never_runs_an_unsafe_rebase(qtbot, window, open_dir, wait_plan, make, tmp_path):
    make.create("old.qcow2", "qcow2", "64M")
    make.create("new.qcow2", "qcow2", "64M")
    top = str(make.overlay("top.qcow2", "old.qcow2"))
    open_dir(tmp_path)
    window.selection.set(top)
    window.ops.rebase(str(tmp_path / "new.qcow2"), unsafe=True)
    dialog = window.ops.dialog
    qtbot.waitExposed(dialog)
    assert dialog.cancel_button.isDefault()  # before the plan arrives, too
    plan = wait_plan(dialog)
    assert not plan.refused and plan.unsafe
    assert dialog.ok_button.isEnabled()
    assert dialog.ok_button.text() == "Rewrite pointer without copying"
    assert dialog.cancel_button.isDefault() and dialog.cancel_button.autoDefault()
    assert not dialog.ok_button.isDefault() and not dialog.ok_button.autoDefault()
    QTest.keyClick(dialog, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not dialog.isVisible())
    assert window.jobs.records == []
    assert qemu_info(top)["backing-filename"] == "old.qcow2"


def test_a_safe_rebase_keeps_the_run_button_as_default(
    qtbot, window, open_dir, wait_plan, make, tmp_path
):
    make.create("old.qcow2", "qcow2", "64M")
    make.create("new.qcow2", "qcow2", "64M")
    top = str(make.overlay("top.qcow2", "old.qcow2"))
    open_dir(tmp_path)
    window.selection.set(top)
    window.ops.rebase(str(tmp_path / "new.qcow2"))
    dialog = window.ops.dialog
    assert not wait_plan(dialog).refused
    assert dialog.ok_button.isDefault()
    assert dialog.ok_button.text() == "Rebase (copy the differences)"
    dialog.mode.set_value("unsafe")  # switching to unsafe moves the default at once
    assert dialog.cancel_button.isDefault() and not dialog.ok_button.isDefault()
    assert not wait_plan(dialog).refused
    assert dialog.cancel_button.isDefault()
    dialog.reject()


def test_enter_in_repair_points_nowhere(qtbot, window, open_dir, wait_plan, make, tmp_path):
    make.create("images/base.qcow2", "qcow2", "64M")
    clone = str(make.overlay("clones/clone.qcow2", "../images/base.qcow2"))
    (tmp_path / "archive").mkdir()
    shutil.move(tmp_path / "images" / "base.qcow2", tmp_path / "archive" / "base.qcow2")
    open_dir(tmp_path)
    window.selection.set(clone)
    window.ops.repair()
    dialog = window.ops.dialog
    qtbot.waitExposed(dialog)
    assert not wait_plan(dialog).refused
    assert dialog.ok_button.text() == "Point at base.qcow2 without copying"
    assert dialog.cancel_button.isDefault()
    QTest.keyClick(dialog, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not dialog.isVisible())
    assert window.jobs.records == []
    assert qemu_info(clone)["backing-filename"] == "../images/base.qcow2"


def test_enter_never_runs_the_undo_of_an_unsafe_rebase(
    qtbot, window, open_dir, wait_plan, make, tmp_path
):
    make.create("old.qcow2", "qcow2", "64M")
    make.create("new.qcow2", "qcow2", "64M")
    top = str(make.overlay("top.qcow2", "old.qcow2"))
    open_dir(tmp_path)
    window.selection.set(top)
    window.ops.rebase(str(tmp_path / "new.qcow2"), unsafe=True)
    dialog = window.ops.dialog
    assert not wait_plan(dialog).refused
    with qtbot.waitSignal(window.ready, timeout=30_000):
        dialog.accept()  # a click on the run button: it runs
    assert qemu_info(top)["backing-filename"] == "new.qcow2"

    window.selection.set(top)
    window.ops.undo_rebase()
    dialog = window.ops.dialog
    qtbot.waitExposed(dialog)
    plan = wait_plan(dialog)
    assert not plan.refused and plan.unsafe  # restoring the pointer copies nothing either
    assert dialog.cancel_button.isDefault() and not dialog.ok_button.isDefault()
    QTest.keyClick(dialog, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not dialog.isVisible())
    assert len(window.jobs.records) == 1
    assert qemu_info(top)["backing-filename"] == "new.qcow2"
