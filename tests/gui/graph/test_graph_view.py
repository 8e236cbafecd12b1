"""The graph as a user reads it: Fit shows every card with a legible name, the arrow keys follow
the drawing, the keyboard opens the card's menu, focus is visible, the wheel scrolls."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import qemu_img
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QMenu

from imagegui.core.chains.nodestate import State
from imagegui.gui import theme
from imagegui.gui.graph.cards import LOD_DETAIL, card_reason, compact_size

NAMES = ("centos9", "debian-12", "ubuntu-22.04-server", "win2022-datacenter", "alpine")


def build_lab(root: Path, count: int) -> list[str]:
    """A lab directory as people keep one: groups of a base, four clones and two snapshots on
    the first clone, made by qemu-img; returns the file names in creation order."""
    made: list[str] = []
    group = 0
    while len(made) < count:
        stem = f"{NAMES[group % len(NAMES)]}-{group:02d}"
        plan = [(f"{stem}-base.qcow2", None)]
        plan += [(f"{stem}-clone{c}.qcow2", f"{stem}-base.qcow2") for c in range(4)]
        plan += [(f"{stem}-clone0-snap0.qcow2", f"{stem}-clone0.qcow2")]
        plan += [(f"{stem}-clone0-snap1.qcow2", f"{stem}-clone0-snap0.qcow2")]
        for name, backing in plan[: count - len(made)]:
            args = ["create", "-q", "-f", "qcow2"]
            if backing:
                args += ["-b", backing, "-F", "qcow2", "-u"]
            qemu_img(*args, root / name, "64M")
            made.append(name)
        group += 1
    return made


@pytest.fixture(scope="module")
def labs(tmp_path_factory) -> dict[int, Path]:
    """Directories of 22, 100 and 120 images (the first N of one lab, hard-linked)."""
    full = tmp_path_factory.mktemp("lab120")
    names = build_lab(full, 120)
    out = {120: full}
    for n in (22, 100):
        sub = tmp_path_factory.mktemp(f"lab{n}")
        for name in names[:n]:
            os.link(full / name, sub / name)
        out[n] = sub
    return out


def at_1440x900(qtbot, window) -> None:
    window.resize(1440, 900)
    qtbot.waitUntil(lambda: window.size().width() == 1440)


def card_on_screen(view, node):
    return view.mapFromScene(view.chain_scene.node_rect(node)).boundingRect()


@pytest.mark.parametrize("count", [22, 120])
def test_fit_shows_every_card(qtbot, window, open_dir, labs, count):
    at_1440x900(qtbot, window)
    open_dir(labs[count])
    view = window.view
    window.actions.zoom_fit.trigger()
    inside = view.viewport().rect()
    scene = window.scene
    assert len(scene.shown_nodes()) == count
    clipped = [n for n in scene.shown_nodes() if not inside.contains(card_on_screen(view, n))]
    assert clipped == []
    assert not view.horizontalScrollBar().isVisible() and not view.verticalScrollBar().isVisible()


def test_names_are_legible_at_fit_for_100_images(qtbot, window, open_dir, labs):
    at_1440x900(qtbot, window)
    open_dir(labs[100])
    view, scene = window.view, window.scene
    window.actions.zoom_fit.trigger()
    scale = view.scale_factor
    assert all(layer.isVisible() for layer in scene.layers.values())  # names are painted
    px = 14 if scale >= LOD_DETAIL else compact_size(scale)
    assert px * scale >= 7.0, f"names {px * scale:.1f} px on screen at {scale:.0%}"
    for layer in scene.layers.values():
        for node, _ in layer.rects:
            name = os.path.basename(node)
            lines = layer.compact_lines(node, px)
            assert 1 <= len(lines) <= 2
            shown = "".join(lines)
            if "…" in shown:  # elided in the middle: both ends are still there
                head, tail = shown.split("…")
                assert name.startswith(head) and name.endswith(tail) and len(head) >= 5
            else:
                assert shown == name
    view.viewport().grab()  # and they paint


def test_names_stay_at_moderate_zoom(qtbot, window, open_dir, labs):
    open_dir(labs[22])
    view, scene = window.view, window.scene
    for scale in (0.45, 0.3, 0.25):
        view.set_scale(scale)
        assert all(layer.isVisible() for layer in scene.layers.values()), scale
        assert compact_size(scale) * scale >= 7.0


def test_arrow_keys_follow_the_drawing(qtbot, window, open_dir, make, tmp_path):
    make.create("base.qcow2", "qcow2", "1G")
    for name in ("a", "b", "c"):
        make.overlay(f"{name}.qcow2", "base.qcow2")
    make.overlay("a-top.qcow2", "a.qcow2")
    open_dir(tmp_path)
    view, scene = window.view, window.scene
    y = lambda n: scene.node_rect(n).y()  # noqa: E731
    p = lambda name: str(tmp_path / name)  # noqa: E731
    window.selection.set(p("base.qcow2"))
    view.setFocus()

    qtbot.keyClick(view, Qt.Key.Key_Right)  # the topmost overlay
    first = window.selection.node
    overlays = [p("a.qcow2"), p("b.qcow2"), p("c.qcow2")]
    assert first == min(overlays, key=y)
    qtbot.keyClick(view, Qt.Key.Key_Down)  # the card drawn just below
    second = window.selection.node
    assert second in overlays and y(second) > y(first)
    assert second == min((n for n in overlays if y(n) > y(first)), key=y)
    qtbot.keyClick(view, Qt.Key.Key_Down)
    third = window.selection.node
    assert y(third) > y(second)
    qtbot.keyClick(view, Qt.Key.Key_Down)  # the bottom: stays
    assert window.selection.node == third
    qtbot.keyClick(view, Qt.Key.Key_Up)
    assert window.selection.node == second
    qtbot.keyClick(view, Qt.Key.Key_Left)  # the backing file
    assert window.selection.node == p("base.qcow2")
    qtbot.keyClick(view, Qt.Key.Key_Left)  # nothing further left: stays
    assert window.selection.node == p("base.qcow2")
    assert window.chains.current_node() == p("base.qcow2")


@pytest.mark.parametrize("keys", ["shift+f10", "menu"])
def test_keyboard_opens_the_card_menu(qtbot, window, open_dir, make, tmp_path, keys):
    make.create("base.qcow2", "qcow2", "1G")
    top = str(make.overlay("top.qcow2", "base.qcow2"))
    open_dir(tmp_path)
    view = window.view
    window.selection.set(top)
    with qtbot.waitSignal(view.contextMenuRequested) as blocker:
        if keys == "menu":
            qtbot.keyClick(view, Qt.Key.Key_Menu)
        else:
            qtbot.keyClick(view, Qt.Key.Key_F10, Qt.KeyboardModifier.ShiftModifier)
    node, pos = blocker.args
    assert node == top
    card = card_on_screen(view, top)
    assert card.contains(view.viewport().mapFromGlobal(pos))  # at the card, not the mouse
    qtbot.waitUntil(lambda: isinstance(QApplication.activePopupWidget(), QMenu))
    menu = QApplication.activePopupWidget()
    assert window.actions.commit in menu.actions()
    menu.close()


def test_focus_is_visible(qtbot, window, open_dir, make, tmp_path):
    top = str(make.create("top.qcow2", "qcow2", "1G"))
    open_dir(tmp_path)
    view, scene = window.view, window.scene
    window.selection.set(top)
    window.chains.tree.setFocus()
    qtbot.waitUntil(lambda: not view.hasFocus())
    assert not scene.focus_ring.isVisible()
    view.setFocus()
    qtbot.waitUntil(view.hasFocus)
    ring = scene.focus_ring
    assert ring.isVisible() and ring.boundingRect().contains(scene.node_rect(top))
    image = view.viewport().grab().toImage()
    highlight = view.palette().color(view.palette().ColorRole.Highlight)
    assert image.pixelColor(0, image.height() // 2) == highlight  # the frame round the view
    window.chains.tree.setFocus()
    qtbot.waitUntil(lambda: not ring.isVisible())


def wheel(view, dy: int, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    pos = QPointF(view.viewport().rect().center())
    event = QWheelEvent(
        pos,
        QPointF(view.viewport().mapToGlobal(pos.toPoint())),
        QPoint(0, 0),
        QPoint(0, dy),
        Qt.MouseButton.NoButton,
        modifiers,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(view.viewport(), event)


def test_wheel_scrolls_and_ctrl_wheel_zooms(qtbot, window, open_dir, labs):
    open_dir(labs[22])
    view = window.view
    view.set_scale(1.0)
    bar = view.verticalScrollBar()
    bar.setValue(bar.maximum() // 2)
    before = bar.value()
    wheel(view, -120)  # plain wheel: scrolls down, same zoom
    assert view.scale_factor == 1.0 and bar.value() > before
    wheel(view, 120, Qt.KeyboardModifier.ControlModifier)  # Ctrl+wheel: zooms in
    assert view.scale_factor > 1.0
    window.show_preferences()  # the preference: the wheel zooms, Ctrl+wheel scrolls
    dialog = window.ops.dialog
    dialog.wheel_zooms.setChecked(True)
    dialog.accept()
    assert view.wheel_zooms and window.settings.wheel_zooms()
    scale = view.scale_factor
    wheel(view, -120)
    assert view.scale_factor < scale
    scale, before = view.scale_factor, bar.value()
    wheel(view, -120, Qt.KeyboardModifier.ControlModifier)
    assert view.scale_factor == scale and bar.value() > before


def test_a_broken_card_says_why_in_one_line(qtbot, window, open_dir, make, tmp_path):
    make.create("base.qcow2", "qcow2", "1G")
    mid = make.overlay("mid.qcow2", "base.qcow2")
    top = str(make.overlay("top.qcow2", "mid.qcow2"))
    above = str(make.overlay("above.qcow2", "top.qcow2"))
    healthy = str(make.overlay("fine.qcow2", "base.qcow2"))
    mid.unlink()  # the middle of the chain is deleted
    open_dir(tmp_path)
    scene = window.scene
    for node in (top, above):
        layer = scene.layers[window.session.snapshot.layout.component_of[node]]
        reason = card_reason(window.session.snapshot, node)
        assert reason and "\n" not in reason and "mid.qcow2" in reason, reason
        line1, line2, broken = layer.detail_lines(node)
        assert broken and line2.replace("…", "") and line2[-8:] == reason[-8:]
        name, why = layer.compact_lines(node, 20)
        assert name == os.path.basename(node) and why[-8:] == reason[-8:]
    assert "below" in card_reason(window.session.snapshot, above)
    assert card_reason(window.session.snapshot, healthy) is None
    window.view.set_scale(1.0)
    window.view.viewport().grab()  # paints the reason without a warning


def broken_lab(make, tmp_path) -> dict[str, str]:
    p = lambda name: str(tmp_path / name)  # noqa: E731
    make.create("base.qcow2", "qcow2", "1G")
    make.overlay("fine.qcow2", "base.qcow2")
    make.create("alone.raw", "raw", "1M")
    make.overlay("lost.qcow2", "gone.qcow2")
    make.create("b0.qcow2", "qcow2", "1G")
    b1 = make.overlay("b1.qcow2", "b0.qcow2")
    make.overlay("b2.qcow2", "b1.qcow2")
    make.overlay("b3.qcow2", "b2.qcow2")
    b1.unlink()  # a hole in the middle: b2 is broken, b3 unusable
    return {
        "healthy": [p("base.qcow2"), p("fine.qcow2"), p("alone.raw"), p("b0.qcow2")],
        "troubled": [p(f"{n}.qcow2") for n in ("lost", "gone", "b1", "b2", "b3")],
    }


def test_problems_only_hides_healthy_chains(qtbot, window, open_dir, make, tmp_path, settings):
    nodes = broken_lab(make, tmp_path)
    open_dir(tmp_path)
    scene, view, action = window.scene, window.view, window.actions.problems_only
    assert action.isEnabled() and not action.isChecked()
    assert set(nodes["healthy"]) <= set(scene.shown_nodes())
    with qtbot.waitSignal(window.ready):
        action.trigger()
    assert settings.problems_only()
    shown = set(scene.shown_nodes())
    assert not shown & set(nodes["healthy"])  # not dimmed: gone from the scene
    assert set(nodes["troubled"]) <= shown
    inside = view.viewport().rect()
    assert all(inside.contains(card_on_screen(view, n)) for n in shown)  # and fitted
    window.problems.nodeRequested.emit(nodes["healthy"][0])  # picked elsewhere: said why not here
    assert "Problems Only" in window.status.currentMessage()
    layout = scene.layout
    assert layout.width < window.session.snapshot.layout.width or (
        layout.height < window.session.snapshot.layout.height
    )  # packed without the holes
    with qtbot.waitSignal(window.ready):
        action.trigger()
    assert set(nodes["healthy"]) <= set(scene.shown_nodes())
    assert not settings.problems_only()


def test_problems_only_is_remembered(qtbot, settings, make, tmp_path):
    from imagegui.gui.main_window import MainWindow

    settings.set_problems_only(True)
    w = MainWindow(settings)
    w.ask_before_closing = False
    qtbot.addWidget(w)
    assert w.actions.problems_only.isChecked() and w.scene.problems_only
    w.session.stop()


def test_broken_cards_are_marked_zoomed_out(qtbot, window, open_dir, make, tmp_path):
    nodes = broken_lab(make, tmp_path)
    open_dir(tmp_path)
    scene, view = window.scene, window.view
    view.set_scale(0.02)  # 10,000 images fitted look like this: cards a few pixels wide
    markers = scene.markers
    assert markers is not None and markers.isVisible()
    assert markers.count() == len(nodes["troubled"])
    red = theme.current().card(State.ERROR).border

    def colour_at(node):
        view.centerOn(scene.node_rect(node).center())
        image = view.viewport().grab().toImage()
        return image.pixelColor(view.mapFromScene(scene.node_rect(node).center()))

    for node in nodes["troubled"]:
        assert colour_at(node) == red, node  # a dot, whatever the card's size
    view.set_scale(0.15)  # cards apart by more than a dot: only the troubled ones have one
    assert markers.isVisible()
    for node in nodes["troubled"]:
        assert colour_at(node) == red, node
    for node in nodes["healthy"]:
        assert colour_at(node) != red, node
    view.set_scale(1.0)
    assert not markers.isVisible()


def test_overview_shows_where_the_view_is_and_moves_it(qtbot, window, open_dir, make, tmp_path):
    nodes = broken_lab(make, tmp_path)
    open_dir(tmp_path)
    view, scene = window.view, window.scene
    minimap = view.minimap
    window.actions.zoom_fit.trigger()
    assert not minimap.isVisible()  # everything is in view: no overview needed
    view.set_scale(2.5)
    view.centerOn(scene.node_rect(nodes["healthy"][0]).center())
    qtbot.waitUntil(minimap.isVisible)
    assert view.viewport().geometry().contains(minimap.geometry())  # in the view's corner
    frame = minimap.frame_rect()
    assert 0 < frame.width() < minimap.width() or 0 < frame.height() < minimap.height()

    red = theme.current().card(State.ERROR).border
    image = minimap._pixmap.toImage()
    for node in nodes["troubled"]:  # trouble is marked on the overview
        centre = scene.node_rect(node).center()
        at = (centre - minimap._source.topLeft()) * minimap._scale
        assert image.pixelColor(at.toPoint()) == red, node

    target = scene.node_rect(nodes["troubled"][-1]).center()
    click = ((target - minimap._source.topLeft()) * minimap._scale).toPoint()
    qtbot.mouseClick(minimap, Qt.MouseButton.LeftButton, pos=click)
    centre = view.mapToScene(view.viewport().rect().center())
    assert abs(centre.x() - target.x()) < 40 and abs(centre.y() - target.y()) < 40


def test_overview_stays_out_of_a_small_window(qtbot, window, open_dir, make, tmp_path):
    """In a small window the overview would cover the card the user is looking at."""
    nodes = broken_lab(make, tmp_path)
    open_dir(tmp_path)
    view, scene, minimap = window.view, window.scene, window.view.minimap
    view.set_scale(2.5)
    view.centerOn(scene.node_rect(nodes["healthy"][0]).center())
    qtbot.waitUntil(minimap.isVisible)
    window.resize(800, 560)
    qtbot.waitUntil(lambda: view.viewport().width() < 500)
    view.centerOn(scene.node_rect(nodes["healthy"][-1]).center())  # scrolling re-places it
    area = view.viewport().width() * view.viewport().height()
    assert minimap.width() * minimap.height() > 0.12 * area
    assert not minimap.isVisible()
