"""The layer bar above the details: what each layer of the selected image's chain gives its
guest, from the space report the window reads after each scan; and that report's figures in the
Space view's totals and picture."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QAccessible
from PySide6.QtWidgets import QLabel

from imagegui.core.units import human_size
from imagegui.gui.panels.layerbar import LayerBar
from imagegui.gui.snapshot import make_scan_job
from imagegui.gui.spacejob import make_space_job
from tests.opshelpers import qemu_io

M = 1 << 20


@pytest.fixture
def layered(make):
    """base: 8 MiB at 0; mid: 2 MiB at 8 MiB; top: 2 MiB at 0 (hiding 2 MiB of base's).
    The guest of top reads 6 MiB from base, 2 from mid, 2 from top. empty.qcow2: an overlay
    of base with nothing in it (reclaimable). solo.qcow2's 1 MiB is all overwritten by its only
    overlay, solo-top.qcow2 (shadowed)."""
    base = make.create("base.qcow2", "qcow2", "64M")
    qemu_io(base, "write -P 1 0 8M")
    mid = make.overlay("mid.qcow2", "base.qcow2")
    qemu_io(mid, "write -P 2 8M 2M")
    top = make.overlay("top.qcow2", "mid.qcow2")
    qemu_io(top, "write -P 3 0 2M")
    make.overlay("empty.qcow2", "base.qcow2")
    solo = make.create("solo.qcow2", "qcow2", "16M")
    qemu_io(solo, "write -P 5 0 1M")
    qemu_io(make.overlay("solo-top.qcow2", "solo.qcow2"), "write -P 6 0 1M")
    return make.root


def open_with_report(qtbot, window, open_dir, root):
    open_dir(root)
    qtbot.waitUntil(lambda: window.session.space_report is not None, timeout=60_000)
    return window.session.space_report


def test_bar_shows_each_layer_in_proportion(qtbot, window, open_dir, layered):
    open_with_report(qtbot, window, open_dir, layered)
    p = lambda name: str(layered / name)  # noqa: E731
    window.selection.set(p("top.qcow2"))
    panel = window.layers
    assert panel.isVisible()
    (bar,) = panel.bars
    assert [s.path for s in bar.bar.segments] == [p("base.qcow2"), p("mid.qcow2"), p("top.qcow2")]
    assert [s.share for s in bar.bar.segments] == [6 * M, 2 * M, 2 * M]
    assert [round(s.fraction, 6) for s in bar.bar.segments] == [0.6, 0.2, 0.2]
    assert "top.qcow2's disk is made of" in panel.title.text()
    assert human_size(10 * M) in panel.title.text() and "3 layers" in panel.title.text()
    widths = [r.width() for _, r in bar.segment_rects()]
    assert widths[0] / sum(widths) == pytest.approx(0.6, abs=0.01)
    assert widths[1] == pytest.approx(widths[2], abs=1)
    rects = [r for _, r in bar.segment_rects()]
    assert all(
        a.right() <= b.left() + 1e-6 for a, b in zip(rects, rects[1:], strict=False)
    )  # base first
    # Named for a screen reader, every share in the description; a tooltip per segment.
    QAccessible.setActive(True)
    iface = QAccessible.queryAccessibleInterface(bar)
    assert iface.role() == QAccessible.Role.Canvas
    assert iface.text(QAccessible.Text.Name) == "Layers of top.qcow2's disk"
    description = iface.text(QAccessible.Text.Description)
    assert "base.qcow2 60 % (6 MiB)" in description and "mid.qcow2 20 % (2 MiB)" in description
    assert "60 % of top.qcow2's guest data comes from it" in bar.tooltip(p("base.qcow2"))
    # A click on a segment selects that layer everywhere.
    base_rect = bar.segment_rects()[0][1]
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=base_rect.center().toPoint())
    assert window.selection.node == p("base.qcow2")
    assert window.scene.selected == p("base.qcow2")


def test_a_base_shows_the_chains_it_is_part_of(qtbot, window, open_dir, layered):
    open_with_report(qtbot, window, open_dir, layered)
    base = str(layered / "base.qcow2")
    window.selection.set(base)
    panel = window.layers
    assert "base.qcow2 gives the disks above it" in panel.title.text()
    tops = sorted(b.bar.top for b in panel.bars)
    assert tops == [str(layered / "empty.qcow2"), str(layered / "top.qcow2")]
    for bar in panel.bars:
        assert bar.selected == base
        assert bar.bar.segments[0].path == base
    empty = next(b for b in panel.bars if b.bar.top.endswith("empty.qcow2"))
    assert [s.fraction for s in empty.bar.segments] == [1.0, 0.0]  # all of it from the base


def test_space_totals_and_picture_carry_the_report(qtbot, window, open_dir, layered):
    window.show_view(window.space)
    report = open_with_report(qtbot, window, open_dir, layered)
    text = window.space.totals.text()
    assert f"{human_size(report.guest_data)}</b> guest data" in text
    assert f"{human_size(report.shadowed)}</b> shadowed" in text
    assert "Reclaimable" in text and "1 empty overlay" in text
    view = window.space.map
    assert str(layered / "empty.qcow2") in view.marked  # hatched
    assert report.shadowed == M
    solo = str(layered / "solo.qcow2")
    qtbot.waitUntil(lambda: view.tile_of(solo) is not None)
    assert "Guest data: 1 MiB · shadowed: 1 MiB" in view.tooltip(solo)
    assert "Reclaimable" in view.tooltip(str(layered / "empty.qcow2"))


def test_no_report_no_bar(qtbot, window, open_dir, layered):
    """Before the report is read (a new scan resets it) the bar is hidden, never stale."""
    open_with_report(qtbot, window, open_dir, layered)
    top = str(layered / "top.qcow2")
    window.selection.set(top)
    assert window.layers.isVisible()
    window.layers.set_report(None)
    assert not window.layers.isVisible() and window.layers.bars == []


def test_rescan_reads_only_the_maps_of_changed_files(layered):
    snap = make_scan_job(str(layered)).run()
    first = make_space_job(snap, {}).run()
    assert first.read == 6 and set(first.maps) == set(snap.graph.scan.images)
    again = make_space_job(make_scan_job(str(layered)).run(), first.maps).run()
    assert again.read == 0
    assert again.report.images == first.report.images
    qemu_io(layered / "top.qcow2", "write -P 4 16M 1M")  # one file changes
    changed = make_space_job(make_scan_job(str(layered)).run(), again.maps).run()
    assert changed.read == 1
    top = changed.report.images[str(layered / "top.qcow2")]
    assert top.guest_data == 3 * M


def test_equal_maps_are_kept_once(layered, make):
    """Every image's map is kept while the scan is shown: equal ones (empty overlays of one
    size, the usual case in a big tree) are one object."""
    make.overlay("empty2.qcow2", "base.qcow2")
    maps = make_space_job(make_scan_job(str(layered)).run(), {}).run().maps
    one, two = maps[str(layered / "empty.qcow2")][1], maps[str(layered / "empty2.qcow2")][1]
    assert one == two and one is two
    assert maps[str(layered / "top.qcow2")][1] is not one
    # Still one after a rescan that reads a new one.
    make.overlay("empty3.qcow2", "base.qcow2")
    again = make_space_job(make_scan_job(str(layered)).run(), maps).run().maps
    assert again[str(layered / "empty3.qcow2")][1] is one


def test_layer_bar_hairline_for_an_empty_layer(qtbot, layered):
    snap = make_scan_job(str(layered)).run()
    report = make_space_job(snap, {}).run().report
    from imagegui.gui.panels.layerbar import bars_for

    (bar,), more = bars_for(report, snap, str(layered / "empty.qcow2"))
    assert more == 0
    widget = LayerBar(bar, None)
    qtbot.addWidget(widget)
    widget.resize(300, widget.height())
    (_, base), (_, empty) = widget.segment_rects()
    assert empty.width() >= 2 and base.right() <= 300
    assert widget.path_at(QPointF(empty.center())) == str(layered / "empty.qcow2")


def test_a_chain_without_data_says_so_instead_of_a_bar(qtbot, window, open_dir, make):
    make.create("blank.qcow2", "qcow2", "64M")
    top = str(make.overlay("blank-top.qcow2", "blank.qcow2"))
    open_with_report(qtbot, window, open_dir, make.root)
    window.selection.set(top)
    panel = window.layers
    assert panel.isVisible() and panel.bars == []
    texts = [w.text() for w in panel.findChildren(QLabel) if w.isVisible()]
    assert any("whole disk reads as zeroes" in t for t in texts)
