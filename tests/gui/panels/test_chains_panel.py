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


@pytest.fixture
def two_chains(make, tmp_path):
    """Two bases, each with a clone that has a clone of its own."""
    for name in ("a", "b"):
        make.create(f"{name}-base.qcow2")
        make.overlay(f"{name}-mid.qcow2", f"{name}-base.qcow2")
        make.overlay(f"{name}-top.qcow2", f"{name}-mid.qcow2")
    return tmp_path


def _expanded(window) -> set[str]:
    """The rows the view shows expanded (with their children in sight), by node, asked of the
    view itself."""
    from PySide6.QtCore import QModelIndex

    tree, model = window.chains.tree, window.chains.model
    out, stack = set(), [QModelIndex()]
    while stack:
        parent = stack.pop()
        for row in range(model.rowCount(parent)):
            index = model.index(row, 0, parent)
            if model.rowCount(index) and tree.isExpanded(index):
                out.add(model.node_at(index))
                stack.append(index)
    return out


def _rescan_after_new_file(qtbot, window, make, name: str) -> None:
    make.create(name)
    with qtbot.waitSignal(window.ready, timeout=30_000):
        window.rescan()


@pytest.mark.parametrize("big", [False, True], ids=["small-list", "big-list"])
def test_rescan_keeps_what_the_user_expanded_and_collapsed(
    qtbot, window, open_dir, make, two_chains, monkeypatch, big
):
    """A rescan (a new snapshot, a new model) shows the chains expanded and collapsed as the
    user left them: a small list starts expanded, a big one collapsed (``EXPAND_ALL_LIMIT``)."""
    from imagegui.gui.panels import chains

    if big:
        monkeypatch.setattr(chains, "EXPAND_ALL_LIMIT", 0)
    window.settings.set_auto_rescan(False)  # only the rescans below
    open_dir(two_chains)
    tree, model = window.chains.tree, window.chains.model
    a_base, a_mid = str(two_chains / "a-base.qcow2"), str(two_chains / "a-mid.qcow2")
    b_base, b_mid = str(two_chains / "b-base.qcow2"), str(two_chains / "b-mid.qcow2")
    assert _expanded(window) == (set() if big else {a_base, a_mid, b_base, b_mid})
    if big:
        tree.expand(model.index_of(a_base))  # the user opens one chain, one level
    else:
        tree.collapse(model.index_of(b_base))  # the user closes one chain
    want = _expanded(window)
    assert want == ({a_base} if big else {a_base, a_mid})  # b-mid's row is hidden
    _rescan_after_new_file(qtbot, window, make, "c.qcow2")
    assert window.chains.model.index_of(str(two_chains / "c.qcow2")).isValid()
    assert _expanded(window) == want
    # Expanding more, and collapsing, after the rescan is followed as well.
    tree.expand(window.chains.model.index_of(b_base))
    tree.collapse(window.chains.model.index_of(a_base))
    want = _expanded(window)
    _rescan_after_new_file(qtbot, window, make, "d.qcow2")
    assert _expanded(window) == want


def test_rescan_after_a_filter_shows_rows_expanded_as_before(
    qtbot, window, open_dir, make, two_chains, monkeypatch
):
    """A filter shows its matches expanded; once cleared, a big list shows its chains
    collapsed again, and a rescan then expands nothing the user does not see expanded."""
    from imagegui.gui.panels import chains

    monkeypatch.setattr(chains, "EXPAND_ALL_LIMIT", 3)
    window.settings.set_auto_rescan(False)
    open_dir(two_chains)
    panel = window.chains
    with qtbot.waitSignal(panel.filterApplied, timeout=5000):
        panel.filter.setText("a-")
    assert _expanded(window) == {str(two_chains / "a-base.qcow2"), str(two_chains / "a-mid.qcow2")}
    with qtbot.waitSignal(panel.filterApplied, timeout=5000):
        panel.filter.clear()
    before = _expanded(window)
    assert str(two_chains / "b-base.qcow2") not in before
    _rescan_after_new_file(qtbot, window, make, "c.qcow2")
    assert _expanded(window) == before
