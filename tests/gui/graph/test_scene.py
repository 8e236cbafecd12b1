"""The graph scene: one card per node, level of detail, the selection ring, tooltips."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject

from imagegui.gui import qtfix
from imagegui.gui.graph.cards import LOD_NAME
from imagegui.gui.panels.chains_model import tooltip


def test_cards_edges_and_level_of_detail(qtbot, window, open_dir, make, tmp_path):
    make.create("base.qcow2", "qcow2", "1G")
    top = str(make.overlay("top.qcow2", "base.qcow2"))
    make.overlay("lost.qcow2", "gone.qcow2")
    open_dir(tmp_path)
    scene, view = window.scene, window.view
    assert set(scene.items_by_node) == set(window.session.snapshot.graph.nodes)
    assert scene.node_at(scene.node_rect(top).center()) == top

    view.set_scale(LOD_NAME / 4)  # zoomed out: only the C++ boxes paint
    assert not any(layer.isVisible() for layer in scene.layers.values())
    view.set_scale(1.0)
    assert all(layer.isVisible() for layer in scene.layers.values())

    window.selection.set(top)
    ring = scene._ring
    assert ring.isVisible() and ring.boundingRect().contains(scene.node_rect(top))
    window.selection.set(None)
    assert not ring.isVisible()

    text = tooltip(window.session.snapshot, str(tmp_path / "lost.qcow2"))
    assert str(tmp_path / "lost.qcow2") in text and "not found" in text
    view.viewport().grab()  # paints at full detail without a Qt warning


def test_pyside_none_refcount_guard():
    """PySide6 6.12.0 on Python < 3.12 drops a reference to None on every void call."""
    if qtfix.applied:
        obj = QObject()
        before = sys.getrefcount(None)
        for _ in range(50_000):
            obj.setObjectName("x")
        assert sys.getrefcount(None) > 1 << 40  # the headroom is still there
        assert before - sys.getrefcount(None) <= 50_000
    else:
        assert sys.version_info >= (3, 12) or not qtfix.leaks_none()
