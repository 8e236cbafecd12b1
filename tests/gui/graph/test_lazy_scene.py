"""A big graph's trees get their items only where the view looks (``ChainScene.region``): none
while the zoomed-out overview stands for the cards, those in and near the view once zoomed in,
more as the view scrolls, without a second ``built`` (which would move the view)."""

from __future__ import annotations

import pytest
from scantrees import qcow2_template

from imagegui.gui.graph import scene as scene_module
from imagegui.gui.graph.overview import FADE_FROM

TREES = 300


@pytest.fixture
def big(tmp_path, monkeypatch):
    """300 images, each its own tree (copies of one qemu-img header), and a scene that builds
    lazily past 20 trees."""
    monkeypatch.setattr(scene_module, "EAGER_TREES", 20)
    data = qcow2_template(None)
    for i in range(TREES):
        (tmp_path / f"disk{i:03}.qcow2").write_bytes(data)
    return tmp_path


def test_zoomed_out_nothing_is_built_and_zooming_in_builds_what_is_in_view(
    qtbot, window, open_dir, big
):
    window.resize(500, 400)  # the fitted graph is below FADE_FROM: the overview stands for it
    open_dir(big)
    scene, view = window.scene, window.view
    assert scene.lazy and view.scale_factor < FADE_FROM
    assert scene.trees == {} and scene.card_count == TREES
    assert len(scene.shown_nodes()) == TREES
    built = []
    scene.built.connect(lambda: built.append(True))

    first = scene.layout.components[0].root
    view.set_scale(1.0)
    view.centerOn(scene.node_rect(first).center())
    qtbot.waitUntil(lambda: set(scene.trees_in(view.wanted_region())) <= set(scene.trees))
    assert 0 < len(scene.trees) < TREES // 2  # the rest is far from the view
    assert scene.node_at(scene.node_rect(first).center()) == first

    last = scene.layout.components[-1].root
    index = scene.layout.component_of[last]
    assert index not in scene.trees
    window.selection.set(last)  # selected in the list: the view goes there
    view.show_node(last)
    qtbot.waitUntil(lambda: index in scene.trees)
    assert scene._ring.isVisible()
    assert scene._ring.boundingRect().contains(scene.node_rect(last))
    assert not built  # scrolled-to trees do not announce a new graph
    view.viewport().grab()  # paints what was built without a Qt warning

    count = len(scene.trees)
    view.set_scale(FADE_FROM / 2)  # the overview again: nothing more to build
    qtbot.wait(20)
    assert len(scene.trees) == count


def test_a_rescan_builds_changed_trees_only_in_view(qtbot, window, open_dir, big):
    window.resize(500, 400)
    open_dir(big)
    scene, view = window.scene, window.view
    view.set_scale(1.0)
    first = scene.layout.components[0].root
    view.centerOn(scene.node_rect(first).center())
    qtbot.waitUntil(lambda: scene.layout.component_of[first] in scene.trees)
    far = scene.layout.components[-1].root
    assert scene.layout.component_of[far] not in scene.trees
    with qtbot.waitSignal(window.ready, timeout=30_000):
        (big / "new.qcow2").write_bytes(qcow2_template(None))
        window.session.rescan()
    assert str(big / "new.qcow2") in scene.layout.component_of
    assert scene.layout.component_of[far] not in scene.trees  # still away from the view
    assert set(scene.trees_in(view.wanted_region())) <= set(scene.trees)
