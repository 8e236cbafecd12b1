"""Problems panel: a leftover temporary file's menu removes it (confirmed, Cancel the default);
other problems' menus select the image or copy its path."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QModelIndex, QPoint, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMenu

from imagegui.core.chains.diagnose import Kind


def leftover(path: Path, size: int = 200_000) -> Path:
    path.write_bytes(os.urandom(size))
    then = time.time() - 7200
    os.utime(path, (then, then))
    return path


def rows(panel) -> dict[str, QModelIndex]:
    """Every problem row by path, and each group row by ``group:KIND``."""
    model, out = panel.model, {}
    for g in range(model.rowCount()):
        group = model.index(g, 0)
        out[f"group:{model.group_kind(group)}"] = group
        for r in range(model.rowCount(group)):
            index = model.index(r, 0, group)
            out[model.problem_at(index).path] = index
    return out


def open_menu(qtbot, panel, index: QModelIndex, monkeypatch) -> list[str]:
    shown: list[QMenu] = []
    monkeypatch.setattr(QMenu, "popup", lambda menu, pos, *a: shown.append(menu))
    panel.tree.setCurrentIndex(index)
    panel.tree.setFocus()
    qtbot.keyClick(panel.tree, Qt.Key.Key_F10, Qt.KeyboardModifier.ShiftModifier)
    (menu,) = shown
    assert panel.menu is menu
    return [a.text() for a in menu.actions() if not a.isSeparator()]


def trigger(panel, text: str) -> None:
    (action,) = [a for a in panel.menu.actions() if a.text() == text]
    action.trigger()


def test_shift_f10_on_a_leftover_removes_it_after_a_confirmation(
    qtbot, window, open_dir, make, tmp_path, monkeypatch
):
    make.create("base.qcow2")
    partial = str(leftover(tmp_path / ".flat.qcow2.0badcafe.partial"))
    open_dir(tmp_path)
    panel = window.problems
    assert partial in rows(panel)
    texts = open_menu(qtbot, panel, rows(panel)[partial], monkeypatch)
    assert texts == ["Remove Leftover File…", "Copy Path"]
    with qtbot.waitSignal(window.ops.dialogOpened) as opened:
        trigger(panel, "Remove Leftover File…")
    dialog = opened.args[0]
    qtbot.waitUntil(lambda: dialog.plan is not None, timeout=10_000)
    preview = dialog.preview.toPlainText()
    assert f"removes {partial} (195 KiB, last written 2 h ago)" in preview
    assert "Will run" not in preview  # no program runs; the file is simply removed
    from gui.test_a11y import unnamed_controls

    assert unnamed_controls(dialog) == []
    assert dialog.cancel_button.isDefault() and not dialog.ok_button.isDefault()
    assert dialog.ok_button.isEnabled() and dialog.ok_button.text() == "Remove File"
    assert os.path.exists(partial)  # nothing happens before the confirmation
    dialog.accept()
    qtbot.waitUntil(lambda: partial not in rows(panel), timeout=30_000)
    assert not os.path.exists(partial)
    assert sorted(os.listdir(tmp_path)) == ["base.qcow2"]


def test_the_group_removes_all_and_keeps_a_file_a_process_holds(
    qtbot, window, open_dir, make, tmp_path, monkeypatch
):
    make.create("base.qcow2")
    a = str(leftover(tmp_path / ".a.qcow2.11111111.partial"))
    b = str(leftover(tmp_path / ".b.qcow2.22222222.partial"))
    open_dir(tmp_path)
    panel = window.problems
    texts = open_menu(qtbot, panel, rows(panel)[f"group:{Kind.LEFTOVER}"], monkeypatch)
    assert texts == ["Remove All 2 Leftover Files…"]
    with open(a, "rb") as f:  # a flatten that started writing it again, say
        holder = subprocess.Popen(["sleep", "60"], stdin=f)
    try:
        with qtbot.waitSignal(window.ops.dialogOpened) as opened:
            trigger(panel, "Remove All 2 Leftover Files…")
        dialog = opened.args[0]
        qtbot.waitUntil(lambda: dialog.plan is not None, timeout=10_000)
        preview = dialog.preview.toPlainText()
        assert f"removes {b} (" in preview
        assert f"{a} is open by PID {holder.pid} (sleep)" in preview
        assert dialog.ok_button.text() == "Remove File" and dialog.cancel_button.isDefault()
        dialog.accept()
        qtbot.waitUntil(lambda: not os.path.exists(b), timeout=30_000)
        qtbot.waitUntil(lambda: b not in rows(panel), timeout=30_000)
        assert os.path.exists(a)
    finally:
        holder.kill()
        holder.wait()


def test_other_problems_offer_select_image_and_copy_path(
    qtbot, window, open_dir, make, tmp_path, monkeypatch
):
    make.create("base.qcow2")
    top = str(make.overlay("top.qcow2", "base.qcow2"))
    os.unlink(tmp_path / "base.qcow2")
    open_dir(tmp_path)
    panel = window.problems
    texts = open_menu(qtbot, panel, rows(panel)[top], monkeypatch)
    assert texts == ["Select Image", "Copy Path"]
    trigger(panel, "Select Image")
    assert window.selection.node == top
    trigger(panel, "Copy Path")
    assert QGuiApplication.clipboard().text() == top


@pytest.mark.parametrize("where", ["row", "blank"])
def test_right_click_opens_the_same_menu(
    qtbot, window, open_dir, make, tmp_path, monkeypatch, where
):
    make.create("base.qcow2")
    partial = str(leftover(tmp_path / ".flat.qcow2.0badcafe.partial"))
    open_dir(tmp_path)
    panel = window.problems
    shown: list[QMenu] = []
    monkeypatch.setattr(QMenu, "popup", lambda menu, pos, *a: shown.append(menu))
    tree = panel.tree
    rect = tree.visualRect(rows(panel)[partial])
    pos = rect.center() if where == "row" else QPoint(5, tree.viewport().height() - 3)
    tree.customContextMenuRequested.emit(pos)
    if where == "row":
        (menu,) = shown
        assert [a.text() for a in menu.actions()][0] == "Remove Leftover File…"
    else:
        assert shown == []


def test_the_details_of_a_leftover_link_to_its_removal(qtbot, window, open_dir, make, tmp_path):
    from PySide6.QtCore import QUrl

    make.create("base.qcow2")
    partial = str(leftover(tmp_path / ".flat.qcow2.0badcafe.partial"))
    open_dir(tmp_path)
    panel = window.problems
    panel.tree.setCurrentIndex(rows(panel)[partial])
    panel.tree.setFocus()
    qtbot.keyClick(panel.tree, Qt.Key.Key_Return)  # Enter: show it, as for an image
    text = window.details.toPlainText()
    assert "Not an image" in text and "Remove leftover file…" in text
    assert "leftover temporary file" in text
    with qtbot.waitSignal(window.ops.dialogOpened) as opened:
        window.details.anchorClicked.emit(QUrl("action:remove-leftover"))
    dialog = opened.args[0]
    assert dialog.paths == (partial,)
    dialog.reject()
    assert os.path.exists(partial)
