"""Drag and drop of cards and list rows onto a folder of the Folders panel: a drop opens the
same Move preview as Move To Folder…, and only the preview's Move moves anything."""

from __future__ import annotations

import os

import pytest
from conftest import qemu_img, qemu_info
from opshelpers import qemu_io
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from imagegui.gui import dnd
from imagegui.gui.dialogs.move_dialog import MoveDialog


def send_drop(view, index, mime: QMimeData) -> tuple[bool, bool]:
    """Enters, moves over and drops ``mime`` on the row ``index`` of the folder tree, as Qt
    delivers a drag; (was the move accepted, was the drop accepted)."""
    pos = view.visualRect(index).center()
    action, button, mods = (
        Qt.DropAction.MoveAction,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(view.viewport(), QDragEnterEvent(pos, action, mime, button, mods))
    move = QDragMoveEvent(pos, action, mime, button, mods)
    QApplication.sendEvent(view.viewport(), move)
    drop = QDropEvent(QPointF(pos), action, mime, button, mods)
    QApplication.sendEvent(view.viewport(), drop)
    return move.isAccepted(), drop.isAccepted()


@pytest.fixture
def shown(qtbot, window, open_dir):
    """``shown(path)``: opens ``path`` and waits for the Folders panel's tree of it."""

    def run(path) -> None:
        with qtbot.waitSignal(window.folders.treeShown, timeout=30_000):
            open_dir(path)
        window.show_folders_panel()  # a drag raises it (see the test below)

    return run


def test_a_card_dropped_on_a_subfolder_opens_the_move_preview_and_moves_it(
    qtbot, window, shown, wait_plan, make, tmp_path
):
    base = make.create("base.qcow2")
    qemu_io(base, "write -P 0x5a 0 1M")
    web = make.overlay("web.qcow2", "base.qcow2")
    db = make.overlay("db.qcow2", str(base))  # absolute: stays absolute
    (tmp_path / "store").mkdir()  # empty: listed all the same
    ref = tmp_path / "ref.qcow2"
    qemu_img("convert", "-O", "qcow2", str(web), str(ref))
    shown(tmp_path)
    folders = window.folders
    store = folders.index_of(str(tmp_path / "store"))
    assert store.isValid() and folders.model.rowCount(folders.index_of(str(tmp_path))) == 1
    window.selection.set(str(base))
    paths = window.view.drag_paths(str(base))
    assert paths == [str(base)]
    mime = dnd.make_drag(window.view, paths).mimeData()
    assert not mime.hasUrls()  # never offered to a file manager as files to move
    with qtbot.waitSignal(window.ops.dialogOpened, timeout=10_000) as opened:
        moved, dropped = send_drop(folders.tree, store, mime)
    assert moved and dropped
    dialog = opened.args[0]
    assert isinstance(dialog, MoveDialog) and dialog.folder.path() == str(tmp_path / "store")
    assert base.exists()  # nothing moved before the preview is accepted
    plan = wait_plan(dialog)
    assert not plan.refused, plan.describe()
    html = dialog.preview.toHtml()
    assert "web.qcow2" in html and "db.qcow2" in html  # the overlays re-pointed are listed
    assert "2 overlays re-pointed" in dialog.verdict.text()
    with qtbot.waitSignal(window.ready, timeout=30_000):
        dialog.accept()
    new = tmp_path / "store" / "base.qcow2"
    assert new.exists() and not base.exists()
    assert qemu_info(web)["backing-filename"] == "store/base.qcow2"
    assert qemu_info(db)["backing-filename"] == str(new)
    qtbot.waitUntil(lambda: window.selection.node == str(new), timeout=10_000)
    assert window.session.snapshot.graph.problems == []
    assert qemu_img("compare", str(web), str(ref)).returncode == 0
    qtbot.waitUntil(lambda: folders.folders.folders[str(tmp_path / "store")].images == 1)


def test_two_list_rows_dropped_on_a_folder_move_both(
    qtbot, window, shown, wait_plan, make, tmp_path
):
    base = make.create("base.qcow2")
    web = make.overlay("web.qcow2", "base.qcow2")
    db = make.create("db.qcow2")
    (tmp_path / "vms").mkdir()
    make.create("vms/other.qcow2")
    shown(tmp_path)
    window.selection.set(str(db))
    window.chains.toggle(str(base))  # Ctrl+click: two rows
    assert set(window.chains.drag_paths()) == {str(base), str(db)}
    mime = dnd.make_drag(window.chains.tree, window.chains.drag_paths()).mimeData()
    folders = window.folders
    with qtbot.waitSignal(window.ops.dialogOpened, timeout=10_000) as opened:
        send_drop(folders.tree, folders.index_of(str(tmp_path / "vms")), mime)
    dialog = opened.args[0]
    assert dialog.windowTitle() == "Move 2 images"
    plan = wait_plan(dialog)
    assert not plan.refused, plan.describe()
    with qtbot.waitSignal(window.ready, timeout=30_000):
        dialog.accept()
    assert (tmp_path / "vms" / "base.qcow2").exists() and (tmp_path / "vms" / "db.qcow2").exists()
    assert qemu_info(web)["backing-filename"] == "vms/base.qcow2"
    qtbot.waitUntil(lambda: window.session.snapshot.graph.problems == [], timeout=10_000)
    qtbot.waitUntil(
        lambda: folders.folders.folders[str(tmp_path / "vms")].images == 3, timeout=10_000
    )


def test_a_drop_on_the_folder_the_image_is_in_does_nothing_and_says_so(
    qtbot, window, shown, make, tmp_path
):
    base = make.create("vms/base.qcow2")
    other = make.create("other.qcow2")
    shown(tmp_path)
    folders = window.folders
    mime = dnd.image_mime([str(base)])
    opened = []
    window.ops.dialogOpened.connect(opened.append)
    with qtbot.waitSignal(folders.message, timeout=5_000) as said:
        moved, dropped = send_drop(folders.tree, folders.index_of(str(tmp_path / "vms")), mime)
    assert not moved and not dropped
    assert said.args[0] == "base.qcow2 is in vms already"
    assert not folders.tree.drop_target.isValid()  # no folder highlighted for it
    # The menu's way (Move Selected Images Here…) says it too, and opens nothing.
    with qtbot.waitSignal(window.ops.message, timeout=5_000) as told:
        window.move_ops.move_into([str(base)], str(tmp_path / "vms"))
    assert "already" in told.args[0]
    # With another image, only that one is moved (a move onto itself is none).
    with qtbot.waitSignal(window.ops.dialogOpened, timeout=5_000) as shown_dialog:
        window.move_ops.move_into([str(base), str(other)], str(tmp_path / "vms"))
    assert shown_dialog.args[0].paths == [str(other)]
    shown_dialog.args[0].reject()
    opened.clear()
    qtbot.wait(50)  # the drop's own posted emission, had one been made
    assert opened == [] and base.exists()


def test_foreign_drags_are_refused(qtbot, window, shown, make, tmp_path):
    base = make.create("base.qcow2")
    (tmp_path / "vms").mkdir()
    shown(tmp_path)
    folders = window.folders
    target = folders.index_of(str(tmp_path / "vms"))
    files = QMimeData()  # a file manager's drag of the file
    files.setUrls([QUrl.fromLocalFile(str(base))])
    forged = QMimeData()  # our type, but not this window's mark
    forged.setData(dnd.IMAGES_MIME, b'{"token": "1-x", "paths": ["%s"]}' % str(base).encode())
    opened = []
    window.ops.dialogOpened.connect(opened.append)
    for mime in (files, forged):
        assert send_drop(folders.tree, target, mime) == (False, False)
    qtbot.wait(50)
    assert opened == [] and base.exists() and not (tmp_path / "vms" / "base.qcow2").exists()
    assert dnd.dragged_paths(forged) is None and dnd.dragged_paths(files) is None


def test_the_drag_pixmap_names_what_is_dragged(qtbot, window):
    assert dnd.drag_label(["/a/web.qcow2"]) == "web.qcow2"
    assert dnd.drag_label(["/a/x", "/a/y", "/a/z"]) == "3 images"
    drag = dnd.make_drag(window, ["/a/x", "/a/y", "/a/z"])
    assert not drag.pixmap().isNull() and drag.pixmap().width() > 40
    assert dnd.dragged_paths(drag.mimeData()) == ["/a/x", "/a/y", "/a/z"]


def test_cards_drag_the_ctrl_selected_group_only_when_pressed_on_one_of_them(
    qtbot, window, shown, make, tmp_path
):
    base = make.create("base.qcow2")
    web = make.overlay("web.qcow2", "base.qcow2")
    db = make.create("db.qcow2")
    make.overlay("gone.qcow2", "missing.qcow2")
    shown(tmp_path)
    window.selection.set(str(base))
    window.chains.toggle(str(db))
    qtbot.waitUntil(lambda: window.scene.also_selected == {str(base), str(db)})
    view = window.view
    assert sorted(view.drag_paths(str(db))) == sorted([str(db), str(base)])
    assert view.drag_paths(str(db))[0] == str(db)
    assert view.drag_paths(str(web)) == [str(web)]
    assert view.drag_paths(str(tmp_path / "missing.qcow2")) == []  # not a file: not dragged
    assert os.path.exists(base)


def test_a_drag_brings_the_folders_panel_to_the_front_and_puts_details_back(
    qtbot, window, make, tmp_path
):
    folders, details = window.folders_dock, window.details_dock
    assert folders in window.tabifiedDockWidgets(details)  # a tab beside Details
    qtbot.waitUntil(lambda: not details.visibleRegion().isEmpty())
    assert folders.visibleRegion().isEmpty()
    dnd.news().started.emit(["/a.qcow2"])
    qtbot.waitUntil(lambda: not folders.visibleRegion().isEmpty())
    dnd.news().ended.emit()
    qtbot.waitUntil(lambda: not details.visibleRegion().isEmpty())
    assert folders.visibleRegion().isEmpty()


def _card_point(window, node):
    view = window.view
    return view.mapFromScene(window.scene.node_rect(node).center())


def test_pressing_and_moving_a_card_drags_the_selected_cards(qtbot, window, shown, make, tmp_path):
    from PySide6.QtCore import QPoint
    from PySide6.QtTest import QTest

    base = make.create("base.qcow2")
    make.overlay("web.qcow2", "base.qcow2")
    db = make.create("db.qcow2")
    shown(tmp_path)
    window.view.zoom_reset()
    window.selection.set(str(base))
    window.chains.toggle(str(db))
    qtbot.waitUntil(lambda: window.scene.also_selected == {str(base), str(db)})
    window.view.show_node(str(db))
    port = window.view.viewport()
    at = _card_point(window, str(db))
    left = Qt.MouseButton.LeftButton
    QTest.mousePress(port, left, Qt.KeyboardModifier.NoModifier, at)
    # Pressing one of several selected cards keeps them all selected (for the drag).
    assert set(window.chains.selected_nodes()) == {str(base), str(db)}
    with qtbot.waitSignal(dnd.news().started, timeout=5_000) as started:
        QTest.mouseMove(port, at + QPoint(QApplication.startDragDistance() + 12, 4))
    assert started.args[0] == [str(db), str(base)]
    QTest.mouseRelease(port, left, Qt.KeyboardModifier.NoModifier, at)
    # A plain click (no move) on one of them makes it the one selected, as before.
    QTest.mouseClick(port, left, Qt.KeyboardModifier.NoModifier, _card_point(window, str(base)))
    qtbot.waitUntil(lambda: window.chains.selected_nodes() == [str(base)])


def test_pressing_and_moving_selected_rows_drags_them(qtbot, window, shown, make, tmp_path):
    from PySide6.QtCore import QPoint
    from PySide6.QtTest import QTest

    a = make.create("a.qcow2")
    b = make.create("b.qcow2")
    shown(tmp_path)
    window.selection.set(str(a))
    window.chains.toggle(str(b))
    tree = window.chains.tree
    at = tree.visualRect(window.chains.model.index_of(str(b))).center()
    left = Qt.MouseButton.LeftButton
    QTest.mousePress(tree.viewport(), left, Qt.KeyboardModifier.NoModifier, at)
    with qtbot.waitSignal(dnd.news().started, timeout=5_000) as started:
        for step in (4, 10, 20, 30):
            QTest.mouseMove(tree.viewport(), at + QPoint(step, step))
    assert sorted(started.args[0]) == sorted([str(a), str(b)])
    QTest.mouseRelease(tree.viewport(), left, Qt.KeyboardModifier.NoModifier, at)
