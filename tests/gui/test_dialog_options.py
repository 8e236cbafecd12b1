"""The Resize and Snapshot dialogs offer what the command line does, in window terms: shrinking
(asked for, with its warning) and overriding a check that can be overridden (the CLI's force),
unticked by default, shown only when a check refused, and confirmed by typing the name. New
Image and Take Snapshot have their keyboard shortcuts."""

from __future__ import annotations

from conftest import qemu_img, qemu_info
from opshelpers import create, overlay
from PySide6.QtGui import QKeySequence


def test_resize_offers_the_override_only_when_a_check_can_be_overridden(
    qtbot, window, open_dir, wait_plan, tmp_path
):
    base = create(tmp_path / "base.qcow2", "64M")
    overlay(tmp_path / "child.qcow2", base)
    open_dir(tmp_path)
    window.selection.set(str(base))
    window.actions.resize.trigger()
    dialog = window.ops.dialog
    plan = wait_plan(dialog)
    assert plan.refused and not plan.force
    box = dialog.override
    assert box.isVisibleTo(dialog) and not box.isChecked()  # offered, never ticked for you
    assert box.text() == "Resize anyway: other images back onto it"
    assert box.accessibleName()
    assert "--force" not in box.text() + box.toolTip()  # window terms
    box.setChecked(True)
    plan = wait_plan(dialog)
    assert plan.force and not plan.refused
    assert dialog.verdict.text().startswith("Forced:")
    assert not dialog.ok_button.isEnabled()  # the name is typed first
    assert not dialog.ok_button.isDefault()  # Enter does not run an override
    dialog.confirm.setText("base.qcow2")
    assert dialog.ok_button.isEnabled()
    with qtbot.waitSignal(window.ready, timeout=60_000):
        dialog.accept()
    assert qemu_info(base)["virtual-size"] == 128 << 20


def test_resize_of_a_lone_image_shows_no_override_and_shrinking_is_not_the_default(
    window, open_dir, wait_plan, tmp_path
):
    img = create(tmp_path / "vm.qcow2", "64M")
    open_dir(tmp_path)
    window.selection.set(str(img))
    window.actions.resize.trigger()
    dialog = window.ops.dialog
    assert not wait_plan(dialog).refused
    assert not dialog.override.isVisibleTo(dialog)
    assert not dialog.shrink.isChecked() and dialog.shrink.accessibleName()
    assert "Undo shrinks the disk back" in dialog.preview.toPlainText()
    dialog.size.setText("32M")
    dialog.shrink.setChecked(True)
    plan = wait_plan(dialog)
    assert not plan.refused and "cannot be undone" in dialog.preview.toPlainText()
    assert dialog.cancel_button.isDefault()  # a shrink: Enter cancels
    dialog.reject()


def test_revert_on_a_base_offers_the_override(qtbot, window, open_dir, wait_plan, tmp_path):
    base = create(tmp_path / "base.qcow2", "64M")
    qemu_img("snapshot", "-c", "s1", base)
    overlay(tmp_path / "child.qcow2", base)
    open_dir(tmp_path)
    window.selection.set(str(base))
    window.ops.snapshot("apply", "s1")
    dialog = window.ops.dialog
    plan = wait_plan(dialog)
    assert plan.refused
    assert dialog.override.text() == "Revert anyway: other images back onto it"
    assert "cannot be undone" in dialog.preview.toPlainText()
    dialog.override.setChecked(True)
    plan = wait_plan(dialog)
    assert plan.force and not plan.refused and not dialog.ok_button.isEnabled()
    dialog.reject()


def test_new_image_and_take_snapshot_have_shortcuts(qtbot, window, open_dir, wait_plan, tmp_path):
    a = window.actions
    portable = QKeySequence.SequenceFormat.PortableText
    assert a.new_image.shortcut().toString(portable) == "Ctrl+Shift+N"
    assert a.take_snapshot.shortcut().toString(portable) == "Ctrl+T"
    seen: dict[str, str] = {}
    for action in a.all():
        for key in action.shortcuts():
            text = key.toString(portable)
            assert text not in seen, f"{text}: {seen.get(text)} and {action.text()}"
            seen[text] = action.text()
    raw = create(tmp_path / "disk.raw", "16M", fmt="raw")
    img = create(tmp_path / "vm.qcow2", "64M")
    open_dir(tmp_path)
    window.selection.set(str(raw))
    assert not a.take_snapshot.isEnabled()
    assert "only qcow2 images hold internal snapshots" in a.take_snapshot.toolTip()
    window.selection.set(str(img))
    assert a.take_snapshot.isEnabled()
    a.take_snapshot.trigger()
    dialog = window.ops.dialog
    assert dialog.windowTitle() == "Take Snapshot"
    assert not wait_plan(dialog).refused
    with qtbot.waitSignal(window.ready, timeout=60_000):
        dialog.accept()
    assert "snapshot-" in qemu_img("snapshot", "-l", img).stdout
