"""The zoomed-out overview: each tree one block with its count and worst state, standing in for
the cards below a legible zoom; its tooltip, a click that zooms in, and the way back."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QPoint, QPointF, QRectF, Qt
from PySide6.QtGui import QHelpEvent
from PySide6.QtWidgets import QApplication, QToolTip

from imagegui.core.chains.nodestate import State
from imagegui.gui import theme
from imagegui.gui.graph import overview as overview_mod
from imagegui.gui.graph.cards import LOD_NAME
from imagegui.gui.graph.overview import FADE_FROM, block_styles, tree_tooltip


def lab(make, tmp_path) -> dict[str, str]:
    """A healthy tree of four images and a tree broken in its middle (b1 deleted)."""
    make.create("base.qcow2", "qcow2", "1G")
    make.overlay("a.qcow2", "base.qcow2")
    make.overlay("b.qcow2", "base.qcow2")
    make.overlay("a1.qcow2", "a.qcow2")
    make.create("b0.qcow2", "qcow2", "1G")
    gone = make.overlay("b1.qcow2", "b0.qcow2")
    make.overlay("b2.qcow2", "b1.qcow2")
    make.overlay("b3.qcow2", "b2.qcow2")
    gone.unlink()
    return {"healthy": str(tmp_path / "base.qcow2"), "broken": str(tmp_path / "b1.qcow2")}


def tree_of(window, root):
    overview = window.view.overview
    return next(t for t in overview.current().trees if t.root == root)


def block_centre(view, tree) -> QPoint:
    return view.mapFromScene(QPointF(tree.x + tree.w / 2, tree.y + tree.h / 2))


def test_zoomed_out_the_overview_stands_in_for_the_cards(qtbot, window, open_dir, make, tmp_path):
    roots = lab(make, tmp_path)
    open_dir(tmp_path)
    view, scene, overview = window.view, window.scene, window.view.overview
    view.set_scale(1.0)
    assert not overview.shown and scene.cards_root.isVisible()

    view.set_scale(FADE_FROM / 2)
    assert overview.shown and overview.only
    assert overview.layer.isVisible() and overview.labels.isVisible()
    assert not scene.cards_root.isVisible()  # no card box, edge or card layer is painted
    assert not any(layer.isVisibleTo(None) for layer in scene.layers.values())
    assert scene.node_at(scene.node_rect(roots["healthy"]).center()) is None

    healthy, broken = tree_of(window, roots["healthy"]), tree_of(window, roots["broken"])
    assert (healthy.images, healthy.worst) == (4, State.OK)
    assert (broken.images, broken.worst) == (2, State.ERROR) and broken.broken

    view.centerOn(QPointF(broken.x + broken.w / 2, broken.y + broken.h / 2))
    image = view.viewport().grab().toImage()
    styles = block_styles()
    for tree in (healthy, broken):  # each block in its worst state's colour
        assert (
            image.pixelColor(block_centre(view, tree)).rgb()
            == styles[tree.worst].brush.color().rgb()
        )
    assert broken.index in {i for i, _ in overview.labels.labelled}  # trouble is labelled

    view.set_scale((FADE_FROM + LOD_NAME) / 2)  # the cards come back under fading blocks
    assert overview.shown and not overview.only and scene.cards_root.isVisible()
    assert 0 < overview.layer.fade < 1
    view.set_scale(LOD_NAME * 1.5)
    assert not overview.shown and not overview.layer.isVisible()
    assert all(layer.isVisible() for layer in scene.layers.values())
    assert scene.node_at(scene.node_rect(roots["healthy"]).center()) == roots["healthy"]


def test_a_block_names_its_base_count_and_problems(qtbot, window, open_dir, make, tmp_path):
    roots = lab(make, tmp_path)
    open_dir(tmp_path)
    view = window.view
    view.set_scale(FADE_FROM / 2)
    broken = tree_of(window, roots["broken"])
    text = tree_tooltip(broken)
    assert "<b>b1.qcow2</b>" in text and "2 images" in text and "worst: error" in text
    assert "missing backing file: b1.qcow2" in text
    assert "2 images qemu cannot open" in text
    assert "qemu-img" not in text and "--" not in text  # window terms

    at = block_centre(view, broken)
    event = QHelpEvent(QEvent.Type.ToolTip, at, view.viewport().mapToGlobal(at))
    QApplication.sendEvent(view.viewport(), event)
    qtbot.waitUntil(QToolTip.isVisible)
    assert "b1.qcow2" in QToolTip.text() and "2 images" in QToolTip.text()
    QToolTip.hideText()


def test_clicking_a_block_selects_its_base_and_zooms_in(qtbot, window, open_dir, make, tmp_path):
    roots = lab(make, tmp_path)
    open_dir(tmp_path)
    view = window.view
    view.set_scale(FADE_FROM / 2)
    healthy = tree_of(window, roots["healthy"])
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=block_centre(view, healthy))
    assert window.selection.node == roots["healthy"]
    assert view.scale_factor >= LOD_NAME and not view.overview.shown
    card = view.mapFromScene(window.scene.node_rect(roots["healthy"])).boundingRect()
    assert view.viewport().rect().contains(card)  # the base is in view, legible


def test_the_blocks_follow_the_palette(qtbot, window, open_dir, make, tmp_path):
    lab(make, tmp_path)
    open_dir(tmp_path)
    app = QApplication.instance()
    layer = window.view.overview.layer
    try:
        theme.apply_appearance(app, theme.LIGHT)
        qtbot.waitUntil(lambda: not theme.current().dark)
        light = layer.styles[State.OK].brush.color()
        theme.apply_appearance(app, theme.DARK)
        qtbot.waitUntil(lambda: theme.current().dark)
        qtbot.waitUntil(lambda: layer.styles[State.OK].brush.color() != light)
        dark = layer.styles[State.OK].brush.color()
        assert theme.luminance(dark) < theme.luminance(light)
    finally:
        theme.apply_appearance(app, theme.SYSTEM)


def test_problems_only_gets_its_own_overview(qtbot, window, open_dir, make, tmp_path):
    roots = lab(make, tmp_path)
    open_dir(tmp_path)
    view, scene = window.view, window.scene
    view.set_scale(FADE_FROM / 2)
    assert {roots["healthy"], roots["broken"]} <= {t.root for t in view.overview.current().trees}
    with qtbot.waitSignal(window.ready):
        window.actions.problems_only.trigger()
        view.set_scale(FADE_FROM / 3)  # zoomed while the scene is rebuilt: the old layer is gone
        assert not view.overview.shown or not scene.building
    shown = {t.root for t in view.overview.current().trees}
    assert roots["broken"] in shown and roots["healthy"] not in shown
    assert view.overview.only and not scene.cards_root.isVisible()
    view.viewport().grab()


def test_the_filter_fades_trees_without_a_match(qtbot, window, open_dir, make, tmp_path):
    roots = lab(make, tmp_path)
    open_dir(tmp_path)
    view = window.view
    view.set_scale(FADE_FROM / 2)
    healthy, broken = tree_of(window, roots["healthy"]), tree_of(window, roots["broken"])
    full = block_styles()[State.OK].brush.color().rgb()
    with qtbot.waitSignal(window.chains.filterApplied):
        window.chains.filter.setText("b2.qcow2")
    assert view.overview.layer.matched() == {broken.index}
    image = view.viewport().grab().toImage()
    assert image.pixelColor(block_centre(view, healthy)).rgb() != full  # faded
    assert {i for i, _ in view.overview.labels.labelled} <= {broken.index}
    with qtbot.waitSignal(window.chains.filterApplied):
        window.chains.filter.setText("")
    assert view.overview.layer.matched() is None
    image = view.viewport().grab().toImage()
    assert image.pixelColor(block_centre(view, healthy)).rgb() == full


def test_zoomed_out_arrow_keys_move_between_blocks_and_enter_zooms_in(
    qtbot, window, open_dir, make, tmp_path
):
    roots = lab(make, tmp_path)
    open_dir(tmp_path)
    view, overview = window.view, window.view.overview
    view.set_scale(FADE_FROM / 2)
    view.setFocus()
    trees = overview.current().trees
    assert len(trees) == 3  # base's, b0 alone, and b2-b3 above the missing b1
    window.selection.set(roots["healthy"])
    seen = {roots["healthy"]}
    centre = {t.root: (t.x + t.w / 2, t.y + t.h / 2) for t in trees}
    for key, axis, sign in (
        (Qt.Key.Key_Right, 0, 1),
        (Qt.Key.Key_Left, 0, -1),
        (Qt.Key.Key_Down, 1, 1),
        (Qt.Key.Key_Up, 1, -1),
    ) * 2:
        before = window.selection.node
        qtbot.keyClick(view, key)
        after = window.selection.node
        assert after in centre  # a tree's base, never a card inside it
        if after != before:  # it went that way
            assert sign * (centre[after][axis] - centre[before][axis]) > 0, key
        seen.add(after)
    assert seen == set(centre)  # every block is reached
    assert view.scale_factor == FADE_FROM / 2  # moving between blocks keeps the zoom
    # The current tree is ringed: the ring's colour a few pixels left of its block (the
    # card's own rings are within a pixel or two of it at this zoom).
    tree = tree_of(window, window.selection.node)
    image = view.viewport().grab().toImage()
    left = view.mapFromScene(QPointF(tree.x, tree.y + tree.h / 2))
    ring = theme.current().selection.rgb()
    gap = int(overview_mod.RING)
    assert any(image.pixelColor(left.x() - d, left.y()).rgb() == ring for d in (gap, gap + 1))

    qtbot.keyClick(view, Qt.Key.Key_Return)
    assert view.scale_factor >= LOD_NAME and not overview.shown
    assert (
        view.mapToScene(view.viewport().rect())
        .boundingRect()
        .intersects(window.scene.node_rect(tree.root))
    )
    # Zoomed in, the arrows follow the cards again (Right: the topmost overlay).
    window.selection.set(roots["healthy"])
    qtbot.keyClick(view, Qt.Key.Key_Right)
    assert window.selection.node in {str(tmp_path / "a.qcow2"), str(tmp_path / "b.qcow2")}


def test_zoomed_out_the_broken_chains_are_named_in_a_list(qtbot, window, open_dir, make, tmp_path):
    roots = lab(make, tmp_path)
    open_dir(tmp_path)
    view = window.view
    trouble = view.trouble
    view.set_scale(1.0)
    assert not trouble.isVisible()  # the cards say it themselves
    view.set_scale(FADE_FROM / 2)
    assert trouble.isVisible() and trouble.list.accessibleName() == "Broken chains"
    assert trouble.roots() == [roots["broken"]]  # not the healthy tree, nor b0 alone
    assert "b1.qcow2" in trouble.list.item(0).text()
    assert "Broken chains: 1" in trouble.title.text()
    view.viewport().repaint()  # no label is put under the list
    covered = QRectF(trouble.geometry())
    assert not any(rect.intersects(covered) for _, rect in view.overview.labels.labelled)
    with qtbot.waitSignal(window.chains.filterApplied, timeout=10_000):
        window.chains.filter.setText("a1.qcow2")  # only the healthy tree matches
    assert not trouble.isVisible()
    with qtbot.waitSignal(window.chains.filterApplied, timeout=10_000):
        window.chains.filter.clear()
    assert trouble.isVisible()
    trouble.list.setFocus()
    trouble.list.setCurrentRow(0)
    qtbot.keyClick(trouble.list, Qt.Key.Key_Return)  # choosing it zooms in on the tree
    assert window.selection.node == roots["broken"]
    assert view.scale_factor >= LOD_NAME and not trouble.isVisible()


def test_a_tiny_tree_is_drawn_as_a_symbol_in_its_state(qtbot, window, open_dir, make, tmp_path):
    make.create("base.qcow2", "qcow2", "1G")
    make.overlay("a.qcow2", "base.qcow2")
    make.overlay("a1.qcow2", "a.qcow2")
    make.overlay("a2.qcow2", "a1.qcow2")
    make.create("alone.qcow2", "qcow2", "1G")
    open_dir(tmp_path)
    view = window.view
    alone = tree_of(window, str(tmp_path / "alone.qcow2"))  # one image: a block of one card
    assert alone.nodes == 1
    view.set_scale(0.01)  # the block 2 pixels wide, under one tall: a smudge without the symbol
    assert alone.w * view.scale_factor < overview_mod.SYMBOL
    view.centerOn(QPointF(alone.x + alone.w / 2, alone.y + alone.h / 2))
    image = view.viewport().grab().toImage()
    centre = block_centre(view, alone)
    fill = block_styles()[alone.worst].brush.color().rgb()
    for dy in (-1, 0, 1):  # a square a few pixels tall, in the colour of its worst state
        assert image.pixelColor(centre.x(), centre.y() + dy).rgb() == fill, dy
