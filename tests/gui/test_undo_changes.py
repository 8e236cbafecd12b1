"""The window's Undo names a new image, a convert, a snapshot taken and a disk grown ("Undo new
image NAME", "Undo snapshot NAME of IMAGE"), previews the undo and runs it."""

from __future__ import annotations

from conftest import qemu_img, qemu_info

from imagegui.core.ops.newimage import plan_new
from imagegui.core.ops.resize import plan_resize
from imagegui.core.ops.snapshot import plan_snapshot


def _plain(action) -> str:
    return action.text().replace("&", "").rstrip("…")


def _undo(qtbot, window, wait_plan):
    window.actions.undo_rebase.trigger()
    dialog = window.ops.dialog
    plan = wait_plan(dialog)
    assert not plan.refused, plan.describe()
    shown = (dialog.windowTitle(), dialog.intro.text())
    with qtbot.waitSignal(window.ready, timeout=30_000):
        dialog.accept()
    return shown


def test_undo_new_image_moves_it_to_the_trash(qtbot, window, open_dir, wait_plan, tmp_path):
    path = tmp_path / "data.qcow2"
    plan_new(str(path), 64 << 20).run()
    open_dir(tmp_path)
    undo = window.actions.undo_rebase
    qtbot.waitUntil(lambda: undo.isEnabled(), timeout=10_000)
    assert _plain(undo) == "Undo new image data.qcow2"
    assert "Trash" in undo.toolTip()
    title, _intro = _undo(qtbot, window, wait_plan)
    assert title == "Undo new image data.qcow2"
    assert not path.exists()
    qtbot.waitUntil(lambda: not undo.isEnabled(), timeout=10_000)
    assert "already undone" in undo.toolTip()


def test_undo_snapshot_and_grow_by_name(qtbot, window, open_dir, wait_plan, make, tmp_path):
    img = make.create("web06.qcow2")
    plan_resize(str(img), 128 << 20).run()
    plan_snapshot(str(img), "create", "before-upgrade").run()
    open_dir(tmp_path)
    undo = window.actions.undo_rebase
    qtbot.waitUntil(lambda: undo.isEnabled(), timeout=10_000)
    assert _plain(undo) == "Undo snapshot before-upgrade of web06.qcow2"
    _title, intro = _undo(qtbot, window, wait_plan)
    assert "before-upgrade" in intro
    assert "before-upgrade" not in qemu_img("snapshot", "-l", img).stdout
    # Undo then offers nothing (the last entry is an undo), as for every other change.
    qtbot.waitUntil(lambda: not undo.isEnabled(), timeout=10_000)
    # The grow is undone through the command line's plan too (the window shows the last only).
    from imagegui.core.ops import journal
    from imagegui.core.ops.change_undo import plan_undo_change

    plan_undo_change(journal.RESIZE_OP, str(img)).run()
    assert qemu_info(img)["virtual-size"] == 64 << 20


def test_a_snapshot_taken_in_the_window_is_said_with_undo_beside_it(
    qtbot, window, open_dir, wait_plan, make, tmp_path
):
    img = make.create("vm.qcow2")
    open_dir(tmp_path)
    window.selection.set(str(img))
    window.actions.take_snapshot.trigger()
    dialog = window.ops.dialog
    dialog.name.setText("before-upgrade")
    assert not wait_plan(dialog).refused
    with qtbot.waitSignal(window.ops.undoable, timeout=60_000):
        dialog.accept()
    status, undo = window.status, window.actions.undo_rebase
    assert "created snapshot 'before-upgrade'" in status.currentMessage()
    qtbot.waitUntil(lambda: _plain(undo) == "Undo snapshot before-upgrade of vm.qcow2")
    assert status.undo.isVisibleTo(window) and status.undo.isEnabled()
    status.undo.click()
    assert window.ops.dialog.windowTitle() == "Undo snapshot before-upgrade of vm.qcow2"
    window.ops.dialog.reject()
