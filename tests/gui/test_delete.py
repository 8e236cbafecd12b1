"""Delete in the window: the Delete key and the image menu's Move to Trash… / Delete With
Overlays… show the plan first (Cancel the default), refuse a base with overlays naming them, move
the file to the Trash, rescan, say so with Undo beside it; Restore puts it back."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from PySide6.QtCore import Qt

from imagegui.core.units import human_size


def digest(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def press_delete(qtbot, window, node: str):
    """Selects ``node`` in the graph and presses Delete there; returns the dialog it opens."""
    window.selection.set(node)
    window.activateWindow()  # as after a dialog closes (offscreen does not do it by itself)
    qtbot.waitUntil(window.isActiveWindow, timeout=5_000)
    window.view.setFocus()
    with qtbot.waitSignal(window.ops.dialogOpened, timeout=5_000) as opened:
        qtbot.keyClick(window.view.viewport(), Qt.Key.Key_Delete)
    return opened.args[0]


def test_delete_key_on_an_orphan_moves_it_to_the_trash_after_the_plan(
    qtbot, window, open_dir, wait_plan, make, tmp_path, trash_home
):
    make.create("base.qcow2")
    make.overlay("top.qcow2", "base.qcow2")
    orphan = str(make.create("orphan.qcow2"))
    before = digest(orphan)
    on_disk = os.lstat(orphan).st_blocks * 512
    open_dir(tmp_path)
    dialog = press_delete(qtbot, window, orphan)
    assert dialog.windowTitle() == "Move orphan.qcow2 to the Trash"
    plan = wait_plan(dialog)
    assert plan is not None and not plan.refused
    preview = dialog.preview.toPlainText()
    assert f"moves {orphan} ({human_size(on_disk)} on disk) to the Trash" in preview
    assert "Will run" not in preview and not dialog.copy_button.isVisible()
    assert (
        dialog.verdict.text()
        == f"Ready: 1 image ({human_size(on_disk)}) will be moved to the Trash."
    )
    # Enter must not delete: Cancel is the default button.
    assert dialog.cancel_button.isDefault() and not dialog.ok_button.isDefault()
    assert dialog.ok_button.isEnabled() and dialog.ok_button.text() == "Move to Trash"
    from gui.test_a11y import unnamed_controls

    assert unnamed_controls(dialog) == []
    assert os.path.exists(orphan)  # nothing happens before the confirmation
    with qtbot.waitSignal(window.ready, timeout=30_000):
        dialog.accept()
    assert not os.path.exists(orphan)
    trashed = trash_home / "Trash" / "files" / "orphan.qcow2"
    assert digest(trashed) == before
    assert (trash_home / "Trash" / "info" / "orphan.qcow2.trashinfo").is_file()
    assert orphan not in window.session.snapshot.graph.nodes
    message = window.status.currentMessage()
    assert message.startswith("Moved orphan.qcow2 (") and message.endswith(") to the Trash")
    qtbot.waitUntil(lambda: window.status.undo.isVisible(), timeout=10_000)


def test_delete_of_a_base_with_overlays_is_refused_naming_them(
    qtbot, window, open_dir, wait_plan, make, tmp_path, trash_home
):
    base = str(make.create("base.qcow2"))
    top1 = str(make.overlay("top1.qcow2", "base.qcow2"))
    top2 = str(make.overlay("top2.qcow2", "base.qcow2"))
    open_dir(tmp_path)
    dialog = press_delete(qtbot, window, base)
    plan = wait_plan(dialog)
    assert plan.refused
    verdict = dialog.verdict.text()
    assert verdict.startswith("Refused: ")
    assert top1 in verdict and top2 in verdict
    assert "use Delete With Overlays… to delete them all together" in verdict  # not a flag
    assert dialog.ok_button.text() == "Move to Trash"
    assert "--" not in verdict and "--" not in dialog.preview.toPlainText()
    assert not dialog.ok_button.isEnabled()
    dialog.accept()  # refused: nothing runs
    assert dialog.isVisible()
    dialog.reject()
    assert sorted(os.listdir(tmp_path)) == ["base.qcow2", "top1.qcow2", "top2.qcow2"]
    assert not (trash_home / "Trash" / "files").exists() or not os.listdir(
        trash_home / "Trash" / "files"
    )


def test_delete_with_overlays_lists_everything_then_restore_puts_it_all_back(
    qtbot, window, open_dir, wait_plan, make, tmp_path, trash_home
):
    base = str(make.create("base.qcow2"))
    mid = str(make.overlay("mid.qcow2", "base.qcow2"))
    top = str(make.overlay("top.qcow2", "mid.qcow2"))
    keep = str(make.create("keep.qcow2"))
    digests = {p: digest(p) for p in (base, mid, top)}
    open_dir(tmp_path)
    window.selection.set(base)
    action = window.actions.trash_with_overlays
    assert action.isEnabled()
    window.selection.set(keep)
    assert not action.isEnabled()  # nothing depends on it: Move to Trash is the way
    assert "no overlay depends on keep.qcow2" in action.toolTip()
    window.selection.set(base)
    with qtbot.waitSignal(window.ops.dialogOpened) as opened:
        action.trigger()
    dialog = opened.args[0]
    assert dialog.windowTitle() == "Delete base.qcow2 With Its Overlays"
    assert "the 2 overlays that depend on it" in dialog.intro.text()
    plan = wait_plan(dialog)
    assert not plan.refused
    preview = dialog.preview.toPlainText()
    for path in (base, mid, top):
        assert f"moves {path} (" in preview
    # The tops go first.
    assert preview.index(top) < preview.index(mid) < preview.index(f"moves {base}")
    assert dialog.ok_button.text() == "Move 3 Images to Trash"
    assert dialog.cancel_button.isDefault()
    with qtbot.waitSignal(window.ready, timeout=30_000):
        dialog.accept()
    assert sorted(os.listdir(tmp_path)) == ["keep.qcow2"]
    assert window.status.currentMessage().startswith("Moved 3 images (")

    # Undo names the restore, and puts all three back, byte-identical, into the graph.
    undo = window.actions.undo_rebase
    qtbot.waitUntil(lambda: "Restore" in undo.text(), timeout=10_000)
    assert undo.isEnabled()
    assert undo.text().replace("&", "") == "Restore base.qcow2 and 2 other files…"
    with qtbot.waitSignal(window.ops.dialogOpened) as opened:
        undo.trigger()
    restore = opened.args[0]
    assert restore.windowTitle() == "Restore base.qcow2 and 2 other files"
    plan = wait_plan(restore)
    assert not plan.refused
    from gui.test_a11y import unnamed_controls

    assert unnamed_controls(restore) == []
    with qtbot.waitSignal(window.ready, timeout=30_000):
        restore.accept()
    assert {p: digest(p) for p in (base, mid, top)} == digests
    nodes = window.session.snapshot.graph.nodes
    assert all(p in nodes for p in (base, mid, top))
    assert window.status.currentMessage() == "Restored 3 files from the Trash"
    qtbot.waitUntil(lambda: not undo.isEnabled(), timeout=10_000)
    assert "already restored" in undo.toolTip()


def test_the_status_bar_undo_restores_what_was_just_moved(
    qtbot, window, open_dir, wait_plan, make, tmp_path, trash_home
):
    orphan = str(make.create("orphan.qcow2"))
    make.create("other.qcow2")
    before = digest(orphan)
    open_dir(tmp_path)
    dialog = press_delete(qtbot, window, orphan)
    wait_plan(dialog)
    with qtbot.waitSignal(window.ready, timeout=30_000):
        dialog.accept()
    button = window.status.undo
    qtbot.waitUntil(lambda: button.isVisible() and button.isEnabled(), timeout=10_000)
    assert "orphan.qcow2" in button.toolTip()
    with qtbot.waitSignal(window.ops.dialogOpened) as opened:
        button.click()
    restore = opened.args[0]
    assert restore.windowTitle() == "Restore orphan.qcow2"
    assert restore.cancel_button.isDefault() is False  # putting a file back is the safe way
    wait_plan(restore)
    with qtbot.waitSignal(window.ready, timeout=30_000):
        restore.accept()
    assert digest(orphan) == before
    assert window.selection.node == orphan  # the restored image is shown


def test_delete_key_in_the_filter_box_edits_the_text(
    qtbot, window, open_dir, make, tmp_path, trash_home
):
    orphan = str(make.create("orphan.qcow2"))
    open_dir(tmp_path)
    window.selection.set(orphan)
    box = window.chains.filter
    box.setFocus()
    box.setText("orph")
    box.setCursorPosition(0)
    qtbot.keyClick(box, Qt.Key.Key_Delete)
    assert box.text() == "rph"
    assert window.ops.dialog is None
    assert os.path.exists(orphan)


def test_delete_is_offered_on_images_only(qtbot, window, open_dir, make, tmp_path, trash_home):
    make.create("base.qcow2")
    top = str(make.overlay("top.qcow2", "base.qcow2"))
    os.unlink(tmp_path / "base.qcow2")
    open_dir(tmp_path)
    missing = str(tmp_path / "base.qcow2")
    window.selection.set(missing)
    assert not window.actions.trash.isEnabled()
    assert "does not exist" in window.actions.trash.toolTip()
    window.selection.set(top)  # a broken chain is no reason to keep a file
    assert window.actions.trash.isEnabled()
    assert window.actions.trash in window.actions.image_menu()
    assert window.actions.trash.shortcut().toString() == "Del"


def test_shift_delete_deletes_for_good_only_once_the_name_is_typed(
    qtbot, window, open_dir, wait_plan, make, tmp_path, trash_home
):
    orphan = str(make.create("orphan.qcow2"))
    make.create("other.qcow2")
    open_dir(tmp_path)
    window.selection.set(orphan)
    window.view.setFocus()
    with qtbot.waitSignal(window.ops.dialogOpened) as opened:
        qtbot.keyClick(window.view.viewport(), Qt.Key.Key_Delete, Qt.KeyboardModifier.ShiftModifier)
    dialog = opened.args[0]
    assert dialog.windowTitle() == "Delete orphan.qcow2 Permanently"
    assert "cannot be restored" in dialog.intro.text()
    plan = wait_plan(dialog)
    assert not plan.refused and plan.permanent
    assert f"deletes {orphan} (" in dialog.preview.toPlainText()
    assert dialog.cancel_button.isDefault()
    assert dialog.ok_button.text() == "Delete Permanently"
    assert not dialog.ok_button.isEnabled()  # the name first
    dialog.accept()
    assert os.path.exists(orphan)
    qtbot.keyClicks(dialog.confirm, "orphan.qcow2")
    assert dialog.ok_button.isEnabled()
    from gui.test_a11y import unnamed_controls

    assert unnamed_controls(dialog) == []
    with qtbot.waitSignal(window.ready, timeout=30_000):
        dialog.accept()
    assert not os.path.exists(orphan)
    assert not (trash_home / "Trash" / "files" / "orphan.qcow2").exists()
    message = window.status.currentMessage()
    assert message.startswith("Deleted orphan.qcow2 (") and message.endswith(") permanently")
    assert not window.status.undo.isVisible()  # nothing to restore


def test_several_rows_of_the_list_go_to_the_trash_together(
    qtbot, window, open_dir, wait_plan, make, tmp_path, trash_home
):
    a = str(make.create("a.qcow2"))
    b = str(make.create("b.qcow2"))
    c = str(make.create("c.qcow2"))
    open_dir(tmp_path)
    tree = window.chains.tree
    model = window.chains.model

    def click(node: str, modifier=Qt.KeyboardModifier.NoModifier) -> None:
        rect = tree.visualRect(model.index_of(node))
        qtbot.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, modifier, rect.center())

    click(a)
    click(c, Qt.KeyboardModifier.ControlModifier)
    assert window.selection.node == c  # the current image: what Details shows
    assert window.chains.selected_nodes() == [c, a]
    with qtbot.waitSignal(window.ops.dialogOpened) as opened:
        qtbot.keyClick(tree, Qt.Key.Key_Delete)
    dialog = opened.args[0]
    assert dialog.windowTitle() == "Move 2 Images to the Trash"
    plan = wait_plan(dialog)
    assert sorted(i.path for i in plan.items) == [a, c]
    assert dialog.ok_button.text() == "Move 2 Images to Trash"
    with qtbot.waitSignal(window.ready, timeout=30_000):
        dialog.accept()
    assert sorted(os.listdir(tmp_path)) == ["b.qcow2"]
    assert window.status.currentMessage().startswith("Moved 2 images (")
    # A click on a card selects that image alone again.
    window.selection.set(b)
    assert window.chains.selected_nodes() == [b]


def test_restore_from_trash_lists_every_delete_still_in_the_trash(
    qtbot, window, open_dir, wait_plan, make, tmp_path, trash_home
):
    a = str(make.create("a.qcow2"))
    b = str(make.create("b.qcow2"))
    make.create("c.qcow2")
    open_dir(tmp_path)
    menu = window.trash_ops.restore_menu
    qtbot.waitUntil(lambda: not window.trash_ops._reading.running, timeout=10_000)
    assert not menu.menuAction().isEnabled()
    for path in (a, b):
        dialog = press_delete(qtbot, window, path)
        wait_plan(dialog)
        with qtbot.waitSignal(window.ready, timeout=30_000):
            dialog.accept()
    qtbot.waitUntil(lambda: len(menu.actions()) == 2, timeout=10_000)
    texts = [act.text() for act in menu.actions()]
    assert texts[0].startswith("b.qcow2 (") and texts[1].startswith("a.qcow2 (")  # newest first
    # Emptied from the Trash by hand: no longer offered (after a rescan).
    os.unlink(trash_home / "Trash" / "files" / "b.qcow2")
    with qtbot.waitSignal(window.ready, timeout=30_000):
        window.rescan()
    qtbot.waitUntil(lambda: len(menu.actions()) == 1, timeout=10_000)
    with qtbot.waitSignal(window.ops.dialogOpened) as opened:
        menu.actions()[0].trigger()
    restore = opened.args[0]
    assert restore.windowTitle() == "Restore a.qcow2"
    wait_plan(restore)
    with qtbot.waitSignal(window.ready, timeout=30_000):
        restore.accept()
    assert os.path.exists(a) and not os.path.exists(b)
    qtbot.waitUntil(lambda: not menu.menuAction().isEnabled(), timeout=10_000)


def test_ctrl_click_on_cards_selects_several_and_delete_takes_them_all(
    qtbot, window, open_dir, wait_plan, make, tmp_path, trash_home
):
    a = str(make.create("a.qcow2"))
    b = str(make.create("b.qcow2"))
    c = str(make.create("c.qcow2"))
    open_dir(tmp_path)
    view, scene = window.view, window.scene

    def click(node: str, modifier=Qt.KeyboardModifier.NoModifier) -> None:
        view.show_node(node)
        point = view.mapFromScene(scene.node_rect(node).center())
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, modifier, point)

    click(a)
    click(b, Qt.KeyboardModifier.ControlModifier)
    assert window.selection.node == b
    assert window.chains.selected_nodes() == [b, a]  # the list shows the same two
    assert scene.also_selected == {a, b}
    ring = scene._also_ring
    assert ring.isVisible() and ring.boundingRect().contains(scene.node_rect(a))
    click(c)  # a plain click: that card alone
    assert window.chains.selected_nodes() == [c] and not scene._also_ring.isVisible()
    click(a, Qt.KeyboardModifier.ControlModifier)
    with qtbot.waitSignal(window.ops.dialogOpened) as opened:
        qtbot.keyClick(view.viewport(), Qt.Key.Key_Delete)
    dialog = opened.args[0]
    plan = wait_plan(dialog)
    assert sorted(i.path for i in plan.items) == [a, c]
    dialog.reject()
    assert sorted(os.listdir(tmp_path)) == ["a.qcow2", "b.qcow2", "c.qcow2"]


def test_a_base_chosen_with_all_its_overlays_goes_with_them(
    qtbot, window, open_dir, wait_plan, make, tmp_path, trash_home
):
    base = str(make.create("base.qcow2"))
    top = str(make.overlay("top.qcow2", "base.qcow2"))
    other = str(make.overlay("other.qcow2", "base.qcow2"))
    open_dir(tmp_path)
    window.selection.set(base)
    window.chains.toggle(top)
    assert sorted(window.chains.selected_nodes()) == [base, top]
    window.actions.trash.trigger()  # other.qcow2 is not chosen: refused, naming it
    dialog = window.ops.dialog
    plan = wait_plan(dialog)
    assert plan.refused and other in dialog.verdict.text()
    dialog.reject()
    window.chains.toggle(other)
    window.actions.trash.trigger()
    dialog = window.ops.dialog
    assert dialog.windowTitle() == "Move 3 Images to the Trash"
    plan = wait_plan(dialog)
    assert not plan.refused
    assert [i.path for i in plan.items][-1] == base  # the overlays first
    with qtbot.waitSignal(window.ready, timeout=30_000):
        dialog.accept()
    assert os.listdir(tmp_path) == []
