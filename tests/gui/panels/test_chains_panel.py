"""The chains list: which image a row is (Folder column, middle elision, full path), and the
keyboard (a visible current row, the context menu from the Menu key and Shift+F10)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor, QImage, QPalette
from PySide6.QtWidgets import QMenu

from imagegui.gui import resources, theme
from imagegui.gui.panels.chains_model import FOLDER, NAME, folder_of


@pytest.fixture
def twins(make, tmp_path):
    """Two ``centos9-base.qcow2`` in different folders, each with a clone, and one at the root."""
    make.create("lab/a/centos9-base.qcow2")
    make.create("lab/b/centos9-base.qcow2")
    make.overlay("vm1.qcow2", "lab/a/centos9-base.qcow2")
    make.overlay("lab/b/vm2.qcow2", "centos9-base.qcow2")
    return tmp_path


def _rows(model, parent=None):
    from PySide6.QtCore import QModelIndex

    parent = parent or QModelIndex()
    for row in range(model.rowCount(parent)):
        index = model.index(row, 0, parent)
        yield index
        yield from _rows(model, index)


def _cells(window) -> dict[str, tuple[str, str]]:
    model = window.chains.model
    return {model.node_at(i): (i.data(), i.siblingAtColumn(FOLDER).data()) for i in _rows(model)}


def test_folder_column_tells_twins_apart(window, open_dir, twins):
    open_dir(twins)
    cells = _cells(window)
    a, b = str(twins / "lab/a/centos9-base.qcow2"), str(twins / "lab/b/centos9-base.qcow2")
    assert window.chains.model.headerData(FOLDER, Qt.Orientation.Horizontal) == "Folder"
    assert cells[a] == ("centos9-base.qcow2", "lab/a")
    assert cells[b] == ("centos9-base.qcow2", "lab/b")
    assert cells[str(twins / "vm1.qcow2")] == ("vm1.qcow2", ".")
    assert cells[str(twins / "lab/b/vm2.qcow2")] == ("vm2.qcow2", "lab/b")
    # Every row is told apart by what it shows, not only by its tooltip.
    assert len(set(cells.values())) == len(cells)
    model = window.chains.model
    assert a in model.data(model.index_of(a), Qt.ItemDataRole.ToolTipRole)
    assert window.chains.tree.textElideMode() == Qt.TextElideMode.ElideMiddle


def test_folder_sorts_and_filters(qtbot, window, open_dir, twins):
    open_dir(twins)
    chains = window.chains
    chains.tree.sortByColumn(FOLDER, Qt.SortOrder.DescendingOrder)
    model = chains.model
    tops = [model.index(r, FOLDER).data() for r in range(model.rowCount())]
    assert tops == ["lab/b", "lab/a"]
    chains.tree.sortByColumn(FOLDER, Qt.SortOrder.AscendingOrder)
    assert [model.index(r, FOLDER).data() for r in range(model.rowCount())] == ["lab/a", "lab/b"]
    with qtbot.waitSignal(chains.filterApplied, timeout=5000):
        chains.filter.setText("lab/b")
    assert model.matches == {
        str(twins / "lab/b/centos9-base.qcow2"),
        str(twins / "lab/b/vm2.qcow2"),
    }


def test_folder_of_outside_the_root_and_protocols():
    assert folder_of("/r/x.qcow2", "/r") == "."
    assert folder_of("/r/a/b/x.qcow2", "/r") == "a/b"
    assert folder_of("/other/x.qcow2", "/r") == "../other"
    assert folder_of("/r2/x.qcow2", "/r") == "../r2"  # a prefix of the name is not a parent
    assert folder_of("nbd://host/export", "/r") == ""


@pytest.mark.parametrize(
    ("key", "modifier"),
    [(Qt.Key.Key_F10, Qt.KeyboardModifier.ShiftModifier), (Qt.Key.Key_Menu, None)],
)
def test_menu_keys_open_the_current_rows_menu(
    qtbot, window, open_dir, twins, monkeypatch, key, modifier
):
    open_dir(twins)
    shown: list[tuple[QMenu, QPoint]] = []
    monkeypatch.setattr(QMenu, "popup", lambda menu, pos, *a: shown.append((menu, pos)))
    tree = window.chains.tree
    target = str(twins / "lab/b/vm2.qcow2")
    window.selection.set(target)
    tree.setFocus()
    if modifier is None:
        qtbot.keyClick(tree, key)
    else:
        qtbot.keyClick(tree, key, modifier)
    (menu, pos), *more = shown
    assert not more
    texts = [a.text() for a in menu.actions() if not a.isSeparator()]
    assert "Co&mmit…" in texts
    assert window.selection.node == target
    # The menu opens at the current row, not at the mouse.
    row = tree.visualRect(window.chains.model.index_of(target))
    assert tree.viewport().mapFromGlobal(pos).y() == row.bottom()


def _frame_share(tree, index, colour: QColor) -> float:
    """The share of the row's top and bottom edge lines painted ``colour``."""
    image: QImage = tree.viewport().grab().toImage()
    rect = tree.visualRect(index.siblingAtColumn(NAME))
    xs = range(6, tree.viewport().width() - 6)
    ys = (rect.top(), rect.bottom())
    hits = sum(1 for y in ys for x in xs if QColor(image.pixel(x, y)) == colour)
    return hits / (len(xs) * len(ys))


@pytest.mark.parametrize("mode", [theme.LIGHT, theme.DARK])
def test_the_current_row_is_framed_while_the_list_has_focus(
    qtbot, qapp, window, open_dir, twins, mode
):
    theme.apply_appearance(qapp, mode)
    theme.install(qapp, resources.stylesheet())
    try:
        open_dir(twins)
        tree = window.chains.tree
        target = str(twins / "lab/a/centos9-base.qcow2")
        window.selection.set(target)
        index = window.chains.model.index_of(target)
        window.activateWindow()
        tree.setFocus()
        qtbot.waitUntil(tree.hasFocus)
        # The frame is in the palette's text colour: it stands out from the rows around it and
        # from the selected row's highlight.
        pal = tree.palette()
        ink = pal.color(QPalette.ColorGroup.Active, QPalette.ColorRole.Text)
        fill = pal.color(QPalette.ColorGroup.Active, QPalette.ColorRole.Highlight)
        base = pal.color(QPalette.ColorGroup.Active, QPalette.ColorRole.Base)
        assert theme.contrast(ink, base) >= theme.MIN_CONTRAST
        assert theme.contrast(ink, fill) >= 2
        assert _frame_share(tree, index, ink) > 0.9
        window.chains.filter.setFocus()
        qtbot.waitUntil(lambda: not tree.hasFocus())
        assert _frame_share(tree, index, ink) < 0.1
    finally:
        theme.apply_appearance(qapp, theme.SYSTEM)
        theme.uninstall(qapp)
