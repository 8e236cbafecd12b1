"""The graph scene: one card per node, level of detail, the selection ring, tooltips."""

from __future__ import annotations

import sys
import threading

from PySide6.QtCore import QObject
from shiboken6 import isValid

from imagegui.core.read.scan import scan_directory
from imagegui.gui import qtfix
from imagegui.gui import snapshot as scene_module_snapshot
from imagegui.gui.graph import scene as scene_module
from imagegui.gui.graph.cards import LOD_NAME
from imagegui.gui.panels.chains_model import tooltip
from imagegui.gui.snapshot import build_snapshot


def test_cards_edges_and_level_of_detail(qtbot, window, open_dir, make, tmp_path):
    make.create("base.qcow2", "qcow2", "1G")
    top = str(make.overlay("top.qcow2", "base.qcow2"))
    make.overlay("lost.qcow2", "gone.qcow2")
    open_dir(tmp_path)
    scene, view = window.scene, window.view
    assert set(scene.shown_nodes()) == set(window.session.snapshot.graph.nodes)
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


def test_a_rescan_keeps_the_trees_that_did_not_change(qtbot, window, open_dir, make, tmp_path):
    make.create("a.qcow2", "qcow2", "1G")
    make.overlay("a1.qcow2", "a.qcow2")
    make.create("b.qcow2", "qcow2", "1G")
    b1 = str(make.overlay("b1.qcow2", "b.qcow2"))
    make.create("c.qcow2", "qcow2", "1G")
    open_dir(tmp_path)
    scene, view = window.scene, window.view
    a, b, c = (str(tmp_path / f"{n}.qcow2") for n in "abc")
    window.selection.set(b1)
    view.set_scale(0.7)
    view.centerOn(scene.node_rect(b1).center())
    scroll = (view.horizontalScrollBar().value(), view.verticalScrollBar().value())
    layout = scene.layout
    before = {root: scene.trees[layout.component_of[root]] for root in (a, b, c)}
    items = {root: list(tree.items()) for root, tree in before.items()}

    new = str(make.overlay("a2.qcow2", "a.qcow2"))  # one new overlay in tree a
    with qtbot.waitSignal(window.ready, timeout=30_000):
        window.rescan()

    assert scene.layout is not layout and scene.shown(new)
    after = {root: scene.trees[scene.layout.component_of[root]] for root in (a, b, c)}
    for root in (b, c):  # unchanged: the very same items, in the scene, where the layout says
        assert after[root] is before[root]
        assert list(after[root].items()) == items[root]
        assert all(item.scene() is scene for item in items[root])
        assert scene.node_at(scene.node_rect(root).center()) == root
        layer = after[root].layer
        assert layer.index == scene.layout.component_of[root]
        assert layer.mapToScene(layer.rects[0][1].topLeft()) == scene.node_rect(root).topLeft()
    assert after[a] is not before[a]  # changed: drawn again, the old items gone
    assert not any(isValid(item) for item in items[a])
    assert scene.node_at(scene.node_rect(new).center()) == new
    assert window.selection.node == b1 and scene.selected == b1
    assert scene._ring.isVisible() and scene._ring.boundingRect().contains(scene.node_rect(b1))
    assert view.scale_factor == 0.7
    assert (view.horizontalScrollBar().value(), view.verticalScrollBar().value()) == scroll


def test_a_snapshot_applied_while_another_is_applied_ends_as_the_last(
    qtbot, window, open_dir, make, tmp_path, monkeypatch
):
    """Live updates can come faster than 100,000 cards are placed: each new snapshot keeps
    what is already placed and unchanged, and only the last one is announced and drawn."""
    for name in "abcd":
        make.create(f"{name}.qcow2", "qcow2", "1G")
    open_dir(tmp_path)
    scene = window.scene
    kept = scene.trees[scene.layout.component_of[str(tmp_path / "d.qcow2")]]
    monkeypatch.setattr(scene_module, "BATCH_MS", 0.0)  # one tree per event-loop turn
    make.overlay("a1.qcow2", "a.qcow2")
    first = build_snapshot(scan_directory(str(tmp_path)), None)
    b1 = str(make.overlay("b1.qcow2", "b.qcow2"))
    second = build_snapshot(scan_directory(str(tmp_path)), None)
    built: list[object] = []
    scene.built.connect(lambda: built.append(scene.snapshot))
    scene.apply_snapshot(first)
    assert scene.building  # still placing the trees of the first
    scene.apply_snapshot(second)
    qtbot.waitUntil(lambda: not scene.building)
    assert built == [second]
    assert set(scene.shown_nodes()) == set(second.graph.nodes)
    assert scene.trees[scene.layout.component_of[str(tmp_path / "d.qcow2")]] is kept
    for node in second.graph.nodes:  # every card where the last layout has it, and drawn there
        rect = scene.node_rect(node)
        assert scene.node_at(rect.center()) == node
        assert scene.box_item(node).sceneBoundingRect().contains(rect)
    for tree in scene.trees.values():
        for node, rect in tree.layer.rects:
            assert tree.layer.mapRectToScene(rect) == scene.node_rect(node)
    assert scene.node_rect(b1) is not None


def test_alike_chains_share_their_paths_drawn_where_each_tree_is(
    qtbot, window, open_dir, make, tmp_path
):
    """A tree's paths are in its own coordinates, so straight chains whose cards are in the same
    states share one set; each box and edge is still drawn where its card is (filtered too)."""
    for name in ("b1", "b2", "b3"):
        make.create(f"{name}.qcow2", "qcow2", "1G")
    make.overlay("o1.qcow2", "b1.qcow2")
    make.overlay("o2.qcow2", "b2.qcow2")
    make.overlay("x.qcow2", "b3.qcow2")
    make.overlay("y.qcow2", "b3.qcow2")
    make.overlay("lost.qcow2", "gone.qcow2")
    p = lambda name: str(tmp_path / f"{name}.qcow2")  # noqa: E731
    snap = build_snapshot(scan_directory(str(tmp_path)), None)
    of = snap.layout.component_of
    assert snap.paths[of[p("b1")]] is snap.paths[of[p("b2")]]  # alike chains: one set
    assert snap.paths[of[p("lost")]] is not snap.paths[of[p("b1")]]  # other states
    assert snap.paths[of[p("b3")]] is not snap.paths[of[p("b1")]]  # a branching tree

    open_dir(tmp_path)
    scene = window.scene

    def drawn_where_the_layout_says() -> None:
        for node in scene.snapshot.graph.nodes:
            item = scene.box_item(node)
            inside = scene.node_rect(node).adjusted(1, 1, -1, -1)  # (its edges are on the path)
            assert item.mapToScene(item.path()).contains(inside), node
        for over, back in [(p("o1"), p("b1")), (p("o2"), p("b2")), (p("x"), p("b3"))]:
            tree = scene.trees[scene.layout.component_of[back]]
            item = dict(tree.paths)["edges"]
            line = item.mapToScene(item.path()).boundingRect()
            o, b = scene.node_rect(over), scene.node_rect(back)
            assert line.right() == o.left()  # from the overlay's left side ...
            assert line.left() == b.right() + scene_module_snapshot.ARROW  # ... to the arrow

    drawn_where_the_layout_says()
    scene.set_matches({p("o1"), p("x")})  # the others dimmed: their boxes drawn again
    assert scene.dimmed(p("o2")) and not scene.dimmed(p("o1"))
    drawn_where_the_layout_says()
    make.create("a0.qcow2", "qcow2", "1G")  # sorts first: every other tree moves down
    with qtbot.waitSignal(window.ready, timeout=30_000):
        window.rescan()
    assert scene.shown(p("a0"))
    drawn_where_the_layout_says()


def test_tree_signatures_are_worked_out_on_the_worker_only_for_a_rescan(
    qtbot, window, open_dir, make, tmp_path, monkeypatch
):
    """The first scan draws without working out what a rescan compares; a rescan's job works
    out both snapshots' tree signatures, so the GUI thread only compares them."""
    on_gui: list[bool] = []
    real = scene_module_snapshot.tree_signature

    def spy(snap, nodes):
        on_gui.append(threading.current_thread() is threading.main_thread())
        return real(snap, nodes)

    monkeypatch.setattr(scene_module_snapshot, "tree_signature", spy)
    make.create("a.qcow2", "qcow2", "1G")
    make.overlay("a1.qcow2", "a.qcow2")
    make.create("b.qcow2", "qcow2", "1G")
    open_dir(tmp_path)
    assert on_gui == []  # nothing to compare with: none worked out
    scene = window.scene
    a = str(tmp_path / "a.qcow2")
    kept = scene.trees[scene.layout.component_of[a]]
    b1 = str(make.overlay("b1.qcow2", "b.qcow2"))
    with qtbot.waitSignal(window.ready, timeout=30_000):
        window.rescan()
    assert scene.shown(b1)
    assert len(on_gui) == 4 and not any(on_gui)  # two trees, two snapshots, on the worker
    assert scene.trees[scene.layout.component_of[a]] is kept  # and they did their job


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
