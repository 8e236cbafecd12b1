"""One current image for the graph, the list, the details and the actions."""

from __future__ import annotations

from PySide6.QtCore import QItemSelectionModel, Qt


def click_node(qtbot, window, node, button=Qt.MouseButton.LeftButton):
    view = window.view
    view.show_node(node)
    rect = window.scene.node_rect(node)
    pos = view.mapFromScene(rect.center())
    qtbot.mouseClick(view.viewport(), button, pos=pos)


def test_selecting_in_the_graph_selects_in_the_list_and_back(
    qtbot, window, open_dir, make, tmp_path
):
    make.create("base.qcow2", "qcow2", "1G")
    top = str(make.overlay("top.qcow2", "base.qcow2"))
    other = str(make.create("other.raw", "raw", "1M"))
    open_dir(tmp_path)

    click_node(qtbot, window, top)  # a real click on the card
    assert window.selection.node == top
    assert window.scene.selected == top
    assert window.chains.current_node() == top
    assert window.chains.tree.selectionModel().isSelected(window.chains.model.index_of(top))
    assert "top.qcow2" in window.details.toPlainText()
    assert window.actions.commit.isEnabled()

    index = window.chains.model.index_of(other)  # and back: the user picks a row
    window.chains.tree.selectionModel().setCurrentIndex(
        index, QItemSelectionModel.SelectionFlag.ClearAndSelect
    )
    assert window.selection.node == other
    assert window.scene.selected == other
    assert not window.actions.commit.isEnabled()  # a raw image without a backing file


def test_keyboard_walks_the_chain(qtbot, window, open_dir, make, tmp_path):
    base = str(make.create("base.qcow2", "qcow2", "1G"))
    mid = str(make.overlay("mid.qcow2", "base.qcow2"))
    top = str(make.overlay("top.qcow2", "mid.qcow2"))
    open_dir(tmp_path)
    click_node(qtbot, window, top)
    window.view.setFocus()
    qtbot.keyClick(window.view, Qt.Key.Key_Left)  # to the backing file
    assert window.selection.node == mid
    qtbot.keyClick(window.view, Qt.Key.Key_Left)
    assert window.chains.current_node() == base
    qtbot.keyClick(window.view, Qt.Key.Key_Right)  # to its first overlay
    assert window.selection.node == mid


def test_problem_double_click_selects_the_image(qtbot, window, open_dir, make, tmp_path):
    clone = str(make.overlay("clone.qcow2", "gone.qcow2"))
    open_dir(tmp_path)
    panel = window.problems
    group = panel.model.index(0, 0)
    assert "Missing backing file" in group.data()
    problem = panel.model.index(0, 0, group)
    panel.tree.doubleClicked.emit(problem)
    assert window.selection.node == clone


def test_tooltip_and_zoom(qtbot, window, open_dir, make, tmp_path):
    make.create("base.qcow2", "qcow2", "1G")
    open_dir(tmp_path)
    view = window.view
    window.actions.zoom_reset.trigger()
    assert view.scale_factor == 1.0
    window.actions.zoom_in.trigger()
    assert view.scale_factor > 1.0
    window.actions.zoom_fit.trigger()
    assert view.scale_factor <= 1.0
    assert window.status.zoom.text().endswith("%")
