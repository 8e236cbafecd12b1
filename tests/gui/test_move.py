"""Moving and renaming in the window: Undo after a move offers the move as one change and puts
back names and pointers."""

from __future__ import annotations

import os

from conftest import qemu_img, qemu_info
from opshelpers import qemu_io

from imagegui.core.chains.graph import ChainGraph
from imagegui.core.read.scan import scan_directory


def _plain(action) -> str:
    return action.text().replace("&", "").rstrip("…")


def problems(root) -> list[str]:
    return [f"{p.kind} {p.path}" for p in ChainGraph(scan_directory(str(root))).problems]


def test_undo_after_a_move_restores_names_and_pointers(
    qtbot, window, open_dir, wait_plan, make, tmp_path
):
    from imagegui.core.ops.move import plan_move

    base = make.create("base.qcow2")
    web = make.overlay("web.qcow2", "base.qcow2")
    (tmp_path / "store").mkdir()
    plan_move([str(base)], str(tmp_path / "store")).run()
    assert qemu_info(web)["backing-filename"] == "store/base.qcow2"
    open_dir(tmp_path)
    undo = window.actions.undo_rebase
    qtbot.waitUntil(lambda: undo.isEnabled(), timeout=10_000)
    assert _plain(undo) == "Undo move of base.qcow2"  # not "Undo rebase of web.qcow2"
    undo.trigger()
    dialog = window.ops.dialog
    assert dialog.windowTitle() == "Undo move of base.qcow2"
    plan = wait_plan(dialog)
    assert not plan.refused, plan.describe()
    assert dialog.ok_button.isDefault()  # nothing is overwritten: Undo is the default
    with qtbot.waitSignal(window.ready, timeout=30_000):
        dialog.accept()
    assert base.exists() and not (tmp_path / "store" / "base.qcow2").exists()
    assert qemu_info(web)["backing-filename"] == "base.qcow2"
    assert problems(tmp_path) == []
    assert qemu_img("check", str(web)).returncode == 0
    qtbot.waitUntil(lambda: window.selection.node == str(base), timeout=10_000)
    assert not undo.isEnabled() and "the last move (base.qcow2) was already undone" in (
        undo.toolTip()
    )


def test_f2_renames_a_base_in_place_and_its_overlay_reads_the_same(
    qtbot, window, open_dir, wait_plan, make, tmp_path
):
    from PySide6.QtCore import Qt

    base = make.create("base.qcow2")
    qemu_io(base, "write -P 0x5a 0 1M")
    web = make.overlay("web.qcow2", "base.qcow2")
    ref = tmp_path / "ref"
    ref.mkdir()
    qemu_img("convert", "-O", "qcow2", str(web), str(ref / "web.qcow2"))
    open_dir(tmp_path)
    window.selection.set(str(base))
    window.view.setFocus()
    qtbot.keyClick(window.view, Qt.Key.Key_F2)
    dialog = window.ops.dialog
    assert dialog.windowTitle() == "Rename base.qcow2"
    assert dialog.name.selectedText() == "base"  # the extension is kept out of the selection
    assert dialog.name.accessibleName() == "New name"
    dialog.name.setText("golden.qcow2")
    plan = wait_plan(dialog)
    assert not plan.refused, plan.describe()
    html = dialog.preview.toHtml()
    assert "web.qcow2" in html and "golden.qcow2" in html  # the overlay re-pointed is shown
    assert "1 overlay re-pointed (web.qcow2)" in dialog.verdict.text()
    assert dialog.ok_button.isDefault() and dialog.ok_button.text() == "Rename"
    with qtbot.waitSignal(window.ready, timeout=30_000):
        dialog.accept()
    golden = tmp_path / "golden.qcow2"
    assert golden.exists() and not base.exists()
    assert qemu_info(web)["backing-filename"] == "golden.qcow2"
    qtbot.waitUntil(lambda: window.selection.node == str(golden), timeout=10_000)
    assert window.session.snapshot is not None
    assert window.session.snapshot.graph.problems == []
    assert qemu_img("compare", str(web), str(ref / "web.qcow2")).returncode == 0
    # Undo names the rename and puts it back.
    qtbot.waitUntil(lambda: window.actions.undo_rebase.isEnabled(), timeout=10_000)
    assert _plain(window.actions.undo_rebase) == "Undo move of base.qcow2"


def test_rename_refuses_a_name_taken_and_says_why(qtbot, window, open_dir, wait_plan, make):
    base = make.create("base.qcow2")
    make.create("other.qcow2")
    open_dir(base.parent)
    window.selection.set(str(base))
    window.actions.rename.trigger()
    dialog = window.ops.dialog
    dialog.name.setText("other.qcow2")
    plan = wait_plan(dialog)
    assert plan.refused and "already exists" in dialog.verdict.text()
    assert not dialog.ok_button.isEnabled()
    dialog.name.setText("a/b.qcow2")
    assert wait_plan(dialog) is None and "Move To Folder" in dialog.verdict.text()
    dialog.reject()


def test_move_to_folder_moves_several_selected_images(
    qtbot, window, open_dir, wait_plan, make, tmp_path
):
    base = make.create("base.qcow2")
    web = make.overlay("web.qcow2", "base.qcow2")
    db = make.create("db.qcow2")
    store = tmp_path / "store"
    store.mkdir()
    open_dir(tmp_path)
    window.selection.set(str(base))
    window.chains.toggle(str(db))  # Ctrl+click: two rows selected
    first = window.chains.selected_nodes()[0]
    assert set(window.chains.selected_nodes()) == {str(base), str(db)}
    window.move_ops.choose_folder = lambda start: str(store)
    image_menu = next(
        m.menu() for m in window.menuBar().actions() if m.text().replace("&", "") == "Image"
    )
    assert window.actions.move_to in image_menu.actions()
    assert window.actions.rename in image_menu.actions()
    window.actions.move_to.trigger()
    dialog = window.ops.dialog
    assert dialog.windowTitle() == "Move 2 images"
    assert dialog.folder.edit.accessibleName() == "Destination folder"
    plan = wait_plan(dialog)
    assert not plan.refused, plan.describe()
    with qtbot.waitSignal(window.ready, timeout=30_000):
        dialog.accept()
    assert (store / "base.qcow2").exists() and (store / "db.qcow2").exists()
    assert not base.exists() and not db.exists()
    assert qemu_info(web)["backing-filename"] == "store/base.qcow2"
    moved = str(store / os.path.basename(first))
    qtbot.waitUntil(lambda: window.selection.node == moved, timeout=10_000)
    assert window.session.snapshot.graph.problems == []


def test_a_rename_is_said_with_undo_beside_it(qtbot, window, open_dir, wait_plan, make, tmp_path):
    base = make.create("base.qcow2")
    make.overlay("web.qcow2", "base.qcow2")
    open_dir(tmp_path)
    window.selection.set(str(base))
    window.move_ops.rename()
    dialog = window.ops.dialog
    dialog.name.setText("golden.qcow2")
    assert not wait_plan(dialog).refused
    with qtbot.waitSignal(window.ops.undoable, timeout=60_000):
        dialog.accept()
    status = window.status
    assert "golden.qcow2" in status.currentMessage()
    qtbot.waitUntil(lambda: _plain(window.actions.undo_rebase) == "Undo move of base.qcow2")
    assert status.undo.isVisibleTo(window) and status.undo.isEnabled()
