"""The Folders panel: the scanned folder's tree with image counts (empty folders too), reached
from the View menu and its shortcut, with its own menu: New Folder…, Move Selected Images Here…,
Select Its Images."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QInputDialog


@pytest.fixture
def shown(qtbot, window, open_dir):
    def run(path) -> None:
        with qtbot.waitSignal(window.folders.treeShown, timeout=30_000):
            open_dir(path)
        window.show_folders_panel()

    return run


def _row_texts(panel, path) -> tuple[str, str]:
    index = panel.index_of(str(path))
    return index.data(), index.siblingAtColumn(1).data()


def test_the_tree_counts_images_and_lists_empty_folders(window, shown, make, tmp_path):
    make.create("base.qcow2")
    make.overlay("vms/web.qcow2", "../base.qcow2")
    make.create("vms/old/db.qcow2")
    (tmp_path / "empty").mkdir()
    shown(tmp_path)
    panel = window.folders
    assert _row_texts(panel, tmp_path / "vms") == ("vms", "2")
    assert _row_texts(panel, tmp_path / "vms" / "old") == ("old", "1")
    assert _row_texts(panel, tmp_path / "empty") == ("empty", "")
    assert panel.index_of(str(tmp_path)).siblingAtColumn(1).data() == "3"
    vms = panel.index_of(str(tmp_path / "vms"))
    assert vms.data(Qt.ItemDataRole.AccessibleTextRole) == (
        "vms: 1 image, 2 images with the folders in it"
    )
    assert "1 image in it, 2 with the folders in it" in vms.data(Qt.ItemDataRole.ToolTipRole)
    assert panel.tree.accessibleName() == "Folders"


def test_the_view_menu_shortcut_brings_the_panel_forward_with_the_focus(
    qtbot, window, shown, make, tmp_path
):
    make.create("a.qcow2")
    shown(tmp_path)
    action = window.show_folders
    view_menu = next(
        m.menu() for m in window.menuBar().actions() if m.text().replace("&", "") == "View"
    )
    assert action in view_menu.actions() and action.isChecked()
    assert action.shortcut() == QKeySequence("Ctrl+Shift+E")
    dock = window.folders_dock
    window.details_dock.raise_()
    qtbot.waitUntil(lambda: dock.visibleRegion().isEmpty())  # behind Details
    assert action.isChecked() and not dock.isHidden()
    window.activateWindow()
    keys = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    qtbot.keyClick(window, Qt.Key.Key_E, keys)
    qtbot.waitUntil(lambda: not dock.visibleRegion().isEmpty())
    qtbot.waitUntil(lambda: window.folders.tree.hasFocus())
    qtbot.keyClick(window.folders.tree, Qt.Key.Key_E, keys)  # again, from the panel: hidden
    qtbot.waitUntil(lambda: dock.isHidden())
    assert not action.isChecked()
    action.trigger()
    qtbot.waitUntil(lambda: dock.isVisible() and window.folders.tree.hasFocus())
    assert action.isChecked()


def test_new_folder_is_made_on_a_worker_and_shown_selected(qtbot, window, shown, make, tmp_path):
    make.create("a.qcow2")
    shown(tmp_path)
    panel = window.folders
    with qtbot.waitSignal(window.ops.dialogOpened) as opened:
        panel.newFolderRequested.emit(str(tmp_path))
    dialog = opened.args[0]
    assert isinstance(dialog, QInputDialog) and dialog.windowTitle() == "New Folder"
    dialog.setTextValue("store")
    with qtbot.waitSignal(panel.treeShown, timeout=30_000):
        dialog.accept()
    assert (tmp_path / "store").is_dir()
    assert panel.current_folder() == str(tmp_path / "store")
    # A name taken is said, nothing is made or overwritten.
    with qtbot.waitSignal(window.ops.message, timeout=10_000) as said:
        window.move_ops.make_folder(str(tmp_path), "store")
    assert said.args[0].startswith("No folder made:") and "exists" in said.args[0]
    with qtbot.waitSignal(window.ops.message) as said:
        window.move_ops.make_folder(str(tmp_path), "a/b")
    assert "cannot contain" in said.args[0]


def test_the_menu_moves_the_selection_here_and_enter_selects_the_folders_images(
    qtbot, window, shown, wait_plan, make, tmp_path
):
    a = make.create("vms/a.qcow2")
    b = make.create("vms/b.qcow2")
    c = make.create("c.qcow2")
    (tmp_path / "store").mkdir()
    shown(tmp_path)
    panel = window.folders
    vms = panel.index_of(str(tmp_path / "vms"))
    panel.tree.setCurrentIndex(vms)
    panel.tree.setFocus()
    qtbot.keyClick(panel.tree, Qt.Key.Key_Return)
    assert set(window.chains.selected_nodes()) == {str(a), str(b)}
    assert window.selection.node == str(a)
    store = panel.index_of(str(tmp_path / "store"))
    panel.tree.setCurrentIndex(store)
    qtbot.keyClick(panel.tree, Qt.Key.Key_F10, Qt.KeyboardModifier.ShiftModifier)
    menu = panel.last_menu
    texts = [x.text().replace("&", "") for x in menu.actions() if not x.isSeparator()]
    assert texts == ["Move Selected Images Here…", "Select Its Images", "New Folder…"]
    assert not menu.actions()[1].isEnabled()  # no image directly in store
    with qtbot.waitSignal(window.ops.dialogOpened) as opened:
        menu.actions()[0].trigger()
    menu.close()
    dialog = opened.args[0]
    assert dialog.windowTitle() == "Move 2 images"
    assert not wait_plan(dialog).refused
    with qtbot.waitSignal(window.ready, timeout=30_000):
        dialog.accept()
    assert (tmp_path / "store" / "a.qcow2").exists() and (tmp_path / "store" / "b.qcow2").exists()
    assert c.exists()
