"""The Space view: one rectangle per image, as large as what it and its overlays hold, nested in
its base, coloured by state; a click selects the image in the whole window."""

from __future__ import annotations

import os

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QAccessible, QColor

from imagegui.core.chains.nodestate import State
from imagegui.core.units import human_size
from imagegui.gui import a11y, theme
from imagegui.gui.panels import treemap
from tests.gui.test_theme import appearance as appearance  # a fixture, shared
from tests.opshelpers import qemu_io


@pytest.fixture
def chains(make):
    """base (8 MiB of data) <- web (4 MiB) <- web-top, base <- ci (empty); lone.raw (2 MiB);
    lost.qcow2 over a missing base."""
    base = make.create("base.qcow2", "qcow2", "64M")
    qemu_io(base, "write -P 1 0 8M")
    web = make.overlay("web.qcow2", "base.qcow2")
    qemu_io(web, "write -P 2 0 4M")
    make.overlay("web-top.qcow2", "web.qcow2")
    make.overlay("ci.qcow2", "base.qcow2")
    lone = make.create("lone.raw", "raw", "8M")
    qemu_io(lone, "write -P 3 0 2M", fmt="raw")
    make.overlay("lost.qcow2", "gone.qcow2")
    return make.root


def open_space(qtbot, window, open_dir, root):
    """Opens ``root`` with the Space view in front and waits until its picture is painted."""
    window.show_view(window.space)
    view = window.space.map
    with qtbot.waitSignal(view.drawn, timeout=30_000):
        open_dir(root)
    return view


def centre_of(view, node) -> QPoint:
    """A point inside ``node``'s own rectangle and in none of its children's: its name band."""
    tile = view.tile_of(node)
    assert tile is not None and tile.w > 0 and tile.h > 0
    x, y = (
        tile.x + tile.w / 2,
        tile.y + (4 if tile.end > view.picture.index[node] + 1 else tile.h / 2),
    )
    assert view.node_at(QPointF(x, y)) == node
    return QPointF(x, y).toPoint()


def test_one_rectangle_per_image_sized_by_disk_use_and_nested(qtbot, window, open_dir, chains):
    view = open_space(qtbot, window, open_dir, chains)
    snap = window.session.snapshot
    tiles = {t.path: t for t in view.tiles}
    images = set(snap.graph.scan.images)
    assert images <= set(tiles) and set(tiles) == set(snap.graph.nodes)  # + the missing base
    assert len(view.tiles) == len(snap.graph.nodes)
    for path in images:  # every image is drawn: a rectangle of some area
        assert tiles[path].w > 0 and tiles[path].h > 0, path
    p = lambda name: str(chains / name)  # noqa: E731
    base, web, top = tiles[p("base.qcow2")], tiles[p("web.qcow2")], tiles[p("web-top.qcow2")]
    for inner, outer in ((web, base), (top, web), (tiles[p("ci.qcow2")], base)):
        assert outer.x <= inner.x and inner.x + inner.w <= outer.x + outer.w + 1e-6
        assert outer.y < inner.y and inner.y + inner.h <= outer.y + outer.h + 1e-6
    assert tiles[p("lost.qcow2")].parent == view.picture.index[p("gone.qcow2")]
    size = {n: i.actual_size for n, i in snap.graph.scan.images.items()}
    assert base.total == sum(
        size[p(n)] for n in ("base.qcow2", "web.qcow2", "web-top.qcow2", "ci.qcow2")
    )
    # The bases share the picture in proportion to their chains' bytes.
    lone = tiles[p("lone.raw")]
    assert (base.w * base.h) / (lone.w * lone.h) == pytest.approx(base.total / lone.total, rel=1e-6)
    assert (base.w * base.h) > 3 * (lone.w * lone.h)  # 8 + 4 MiB of data against 2 MiB
    assert view.picture.width == view.width() and view.picture.height == view.height()
    totals = window.space.totals.text()
    assert human_size(sum(size.values())) in totals and "6 images" in totals


def test_click_selects_everywhere_and_selection_is_ringed(qtbot, window, open_dir, chains):
    view = open_space(qtbot, window, open_dir, chains)
    web = str(chains / "web.qcow2")
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=centre_of(view, web))
    assert window.selection.node == web
    assert window.scene.selected == web
    assert window.chains.current_node() == web
    assert "web.qcow2" in window.details.toPlainText()
    assert view.selected == web
    # The ring is painted in the selection colour on the rectangle's edge.
    image = view.grab().toImage()
    tile = view.tile_of(web)
    edge = image.pixelColor(int(tile.x + tile.w / 2), int(tile.y + 1))
    assert theme.contrast(edge, theme.current().selection) < 1.3
    # And the other way: selecting in the list moves the ring.
    lone = str(chains / "lone.raw")
    window.selection.set(lone)
    assert view.selected == lone
    # A double-click shows the details; Left goes to the backing file, Right to the overlay.
    qtbot.mouseDClick(view, Qt.MouseButton.LeftButton, pos=centre_of(view, web))
    assert window.details_dock.isVisible()
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Left)
    assert window.selection.node == str(chains / "base.qcow2")
    qtbot.keyClick(view, Qt.Key.Key_Right)
    assert window.selection.node == web  # the largest overlay of the base


def test_colours_follow_state_and_palette(qtbot, window, open_dir, chains, appearance):
    """The fills are the graph's hues (a broken image reads red), on both palettes, and a
    name painted on a rectangle is readable."""
    for mode in (theme.LIGHT, theme.DARK):
        t = appearance(mode)
        view = open_space(qtbot, window, open_dir, chains)
        qtbot.waitUntil(lambda v=view: v._painted_for is v.picture)
        image = view.grab().toImage()
        snap = window.session.snapshot
        for path in (str(chains / "lone.raw"), str(chains / "lost.qcow2")):
            tile = view.tile_of(path)
            state = snap.status[path].state
            fill = image.pixelColor(int(tile.x + tile.w - 3), int(tile.y + tile.h - 3))
            style = treemap.styles()[(min(tile.depth, treemap.DEPTH_SHADES - 1), str(state))]
            assert theme.contrast(fill, style.brush.color()) < 1.02, (mode, path)
            assert theme.contrast(style.text, style.brush.color()) >= theme.MIN_CONTRAST
            hue = t.card(state).border
            assert theme.contrast(fill, theme.mix(t.base, hue, 0.3)) < 1.6  # its state's hue
        assert snap.status[str(chains / "lost.qcow2")].state is State.ERROR
        assert (theme.luminance(QColor(image.pixelColor(2, 2))) < 0.2) == t.dark
        window.show_view(window.view)  # the next round opens it again


def test_tooltip_names_the_image_and_its_bytes(qtbot, window, open_dir, chains):
    view = open_space(qtbot, window, open_dir, chains)
    base = str(chains / "base.qcow2")
    tile = view.tile_of(base)
    text = view.tooltip(base)
    assert "base.qcow2" in text and f"On disk: {human_size(tile.own)}" in text
    assert f"With its 3 overlays: {human_size(tile.total)}" in text
    lost = view.tooltip(str(chains / "lost.qcow2"))
    assert "qemu cannot open it" in lost


def test_space_view_is_a_named_canvas_and_reachable_from_the_menu(qtbot, window, open_dir, chains):
    view = open_space(qtbot, window, open_dir, chains)
    QAccessible.setActive(True)
    iface = QAccessible.queryAccessibleInterface(view)
    assert iface.role() == QAccessible.Role.Canvas
    assert iface.text(QAccessible.Text.Name) == "Disk space by image"
    web = str(chains / "web.qcow2")
    window.selection.set(web)
    assert view.accessibleDescription() == a11y.selection_description(window.session.snapshot, web)
    window.actions.show_graph.trigger()
    assert window.views.currentWidget() is window.view
    assert window.actions.show_graph.isChecked() and not window.actions.show_space.isChecked()
    assert window.settings.view() == "graph"
    window.actions.show_space.trigger()
    assert window.views.currentWidget() is window.space
    assert window.settings.view() == "space"
    assert window.actions.show_space.shortcut().toString() == "Ctrl+Shift+S"


def test_resizing_lays_out_again_for_the_new_size(qtbot, window, open_dir, chains):
    view = open_space(qtbot, window, open_dir, chains)
    old = (view.picture.width, view.picture.height)
    with qtbot.waitSignal(view.laidOut, timeout=30_000):
        window.resize(window.width() - 200, window.height() - 100)
    qtbot.waitUntil(
        lambda: (view.picture.width, view.picture.height) == (view.width(), view.height())
    )
    assert (view.picture.width, view.picture.height) != old
    right = max(t.x + t.w for t in view.tiles)
    assert right == pytest.approx(view.width())


def test_an_image_holding_nothing_on_disk(qtbot, window, open_dir, make, tmp_path):
    empty = tmp_path / "empty.raw"  # a sparse raw disk never written: 0 bytes allocated
    empty.write_bytes(b"")
    os.truncate(empty, 1 << 20)
    assert empty.stat().st_blocks == 0
    make.create("some.qcow2")
    view = open_space(qtbot, window, open_dir, tmp_path)
    tile = view.tile_of(str(empty))
    assert tile is not None and tile.w * tile.h == 0  # present, not drawn
    assert view.node_at(QPointF(tile.x, tile.y)) != str(empty)


@pytest.mark.parametrize("where", ["at once", "on a worker", "once shown"])
def test_the_list_filter_dims_the_others(qtbot, window, open_dir, chains, monkeypatch, where):
    if where == "on a worker":  # as past SYNC_TILES tiles
        monkeypatch.setattr(treemap, "SYNC_TILES", 0)
    view = open_space(qtbot, window, open_dir, chains)
    if where == "once shown":  # filtered while the graph was shown instead
        window.actions.show_space.setChecked(False)
    with qtbot.waitSignal(window.chains.filterApplied, timeout=10_000):
        window.chains.filter.setText("lone")
    if where == "once shown":
        window.actions.show_space.setChecked(True)
    qtbot.waitUntil(lambda: not view._dim_slot.running)
    lone, base = str(chains / "lone.raw"), str(chains / "base.qcow2")
    assert view.matches is not None and lone in view.matches and base not in view.matches
    image = view.grab().toImage()
    snap = window.session.snapshot
    for path, dimmed in ((lone, False), (base, True)):
        tile = view.tile_of(path)
        state = str(snap.status[path].state) + (treemap.DIM if dimmed else "")
        expected = treemap.styles()[(min(tile.depth, treemap.DEPTH_SHADES - 1), state)]
        # A leaf's own area at its corner; the base's in its name band, right of the name.
        x, y = (tile.x + tile.w - 6, tile.y + 4) if dimmed else (tile.x + 5, tile.y + tile.h - 5)
        colour = image.pixelColor(int(x), int(y))
        assert theme.contrast(colour, expected.brush.color()) < 1.02, path
    with qtbot.waitSignal(window.chains.filterApplied, timeout=10_000):
        window.chains.filter.clear()
    assert view.matches is None


def test_the_totals_are_redrawn_once_per_percent_of_progress(qtbot, window, open_dir, chains):
    """The space report's progress comes per image: at 100,000 images redrawing the totals
    (which add up every image) for each one kept the window busy."""
    open_dir(chains)
    panel = window.space
    panel.set_snapshot(window.session.snapshot)  # as if its report were being read again
    redrawn: list[str] = []
    panel.totals.setText = redrawn.append  # type: ignore[method-assign]
    for i in range(200):
        panel.set_progress(0.5 + i / 100_000)  # 200 images, all within 50 %
    assert len(redrawn) == 1 and "50 %" in redrawn[0]
    panel.set_progress(0.51)
    assert len(redrawn) == 2 and "51 %" in redrawn[1]
    assert (
        human_size(sum(i.actual_size for i in window.session.snapshot.graph.scan.images.values()))
        in redrawn[1]
    )
