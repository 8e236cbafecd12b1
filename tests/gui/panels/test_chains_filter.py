"""The chains list's filter worked out on a worker: the same rows and dimmed cards as at once,
narrowing searches only the last matches, and a rescan keeps the filter applied."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, Qt

from imagegui.gui.graph import scene as scene_mod
from imagegui.gui.panels.chains_model import NAME, find_rows, narrows


def names(model, parent=None, depth=0):
    """The list's rows as (depth, name) in display order."""
    parent = parent or QModelIndex()
    out = []
    for r in range(model.rowCount(parent)):
        index = model.index(r, NAME, parent)
        out.append((depth, index.data()))
        out += names(model, index, depth + 1)
    return out


def chains(make):
    make.create("base.qcow2", "qcow2", "1G")
    make.overlay("mid.qcow2", "base.qcow2")
    make.overlay("midtop.qcow2", "mid.qcow2")
    make.overlay("side.qcow2", "base.qcow2")
    make.overlay("clone.qcow2", "gone.qcow2")
    make.create("big.raw", "raw", "4M")


def test_narrowing():
    assert narrows("mi", "mid")
    assert narrows("mid", "mid qcow2")
    assert narrows("mid q", "midtop qcow2")
    assert not narrows("mid", "mi")  # wider
    assert not narrows("", "mid")  # no filter: nothing to narrow
    assert not narrows("mid raw", "mid")


def test_a_chain_of_filters_gives_what_each_gives_alone(qtbot, window, open_dir, make, tmp_path):
    chains(make)
    open_dir(tmp_path)
    snap = window.session.snapshot
    previous = None
    sort = (NAME, Qt.SortOrder.DescendingOrder)
    for text in ("m", "mi", "mid", "midt", "mid", "mid qcow2", "missing", "", "raw", "Q"):
        chained = find_rows(snap, text, sort, previous)
        alone = find_rows(snap, text, sort)
        assert chained.matches == alone.matches, text
        assert chained.tables.kids == alone.tables.kids, text
        assert chained.tables.row == alone.tables.row, text
        previous = chained
    mids = {str(tmp_path / "mid.qcow2"), str(tmp_path / "midtop.qcow2")}
    assert find_rows(snap, "mid").matches == mids


def test_the_panel_filters_on_a_worker_as_the_model_does_at_once(
    qtbot, window, open_dir, make, tmp_path
):
    chains(make)
    open_dir(tmp_path)
    panel, model = window.chains, window.chains.model
    for text in ("mid", "missing", "mid qcow2", ""):
        with qtbot.waitSignal(panel.filterApplied, timeout=10_000):
            panel.filter.setText(text)
        shown, matches = names(model), model.matches
        model.set_filter("x-nothing")  # and back, on this thread
        model.set_filter(text)
        assert names(model) == shown, text
        assert model.matches == matches, text
    assert not panel.filtering


def test_cards_dimmed_on_a_worker_are_those_dimmed_at_once(
    qtbot, window, open_dir, make, tmp_path, monkeypatch
):
    chains(make)
    open_dir(tmp_path)
    scene, panel = window.scene, window.chains
    nodes = scene.shown_nodes()
    at_once = {}
    for text in ("mid", "error", "side", ""):
        with qtbot.waitSignal(panel.filterApplied, timeout=10_000):
            panel.filter.setText(text)
        assert not scene.dimming
        at_once[text] = {n for n in nodes if scene.dimmed(n)}
    assert at_once["mid"] == set(nodes) - {str(tmp_path / n) for n in ("mid.qcow2", "midtop.qcow2")}
    assert at_once[""] == set()
    # Past SYNC_CARDS the veils are made on a worker; one card a region, so a key redraws
    # only some regions and the others must stay right.
    monkeypatch.setattr(scene_mod, "SYNC_CARDS", 0)
    monkeypatch.setattr(scene_mod, "VEIL_CARDS", 1)
    scene.set_snapshot(scene.snapshot)
    for text in ("mid", "error", "side", ""):
        with qtbot.waitSignal(scene.matchesChanged, timeout=10_000):
            panel.filter.setText(text)
        assert {n for n in nodes if scene.dimmed(n)} == at_once[text], text
        if text:
            assert scene.matched_trees == {
                scene.layout.component_of[n] for n in panel.model.matches
            }


def test_the_filter_still_applies_after_a_rescan(qtbot, window, open_dir, make, tmp_path):
    chains(make)
    open_dir(tmp_path)
    panel, scene = window.chains, window.scene
    with qtbot.waitSignal(panel.filterApplied, timeout=10_000):
        panel.filter.setText("mid")
    make.overlay("mid2.qcow2", "base.qcow2")
    make.overlay("other.qcow2", "side.qcow2")
    with qtbot.waitSignal(window.ready, timeout=30_000):
        window.rescan()
    new = str(tmp_path / "mid2.qcow2")
    qtbot.waitUntil(lambda: panel.model.index_of(new).isValid() and not panel.filtering)
    assert names(panel.model) == [
        (0, "base.qcow2"),
        (1, "mid.qcow2"),
        (2, "midtop.qcow2"),
        (1, "mid2.qcow2"),
    ]
    qtbot.waitUntil(lambda: not scene.dimming and scene.matches == panel.model.matches)
    assert not scene.dimmed(new)
    assert scene.dimmed(str(tmp_path / "other.qcow2"))
    assert scene.dimmed(str(tmp_path / "base.qcow2"))
    assert not scene.dimmed(str(tmp_path / "midtop.qcow2"))


def test_a_filter_that_shows_every_row_keeps_the_rows_as_they_are(
    qtbot, window, open_dir, make, tmp_path
):
    """A filter every image matches (and clearing it again) shows the same rows: the list is
    not rebuilt (at 100,000 images that re-layout stalled the window for ~200 ms) and keeps
    what the user expanded and collapsed, while the graph still hears the matches."""
    make.create("base.qcow2", "qcow2", "1G")
    make.overlay("mid.qcow2", "base.qcow2")
    make.overlay("side.qcow2", "base.qcow2")
    make.create("other.qcow2", "qcow2", "1G")
    make.overlay("other-top.qcow2", "other.qcow2")
    open_dir(tmp_path)
    panel, model = window.chains, window.chains.model
    everything = set(window.session.snapshot.graph.scan.images)
    base = str(tmp_path / "base.qcow2")
    panel.tree.collapse(model.index_of(base))
    resets = []
    model.modelAboutToBeReset.connect(lambda: resets.append(1))
    with qtbot.waitSignal(panel.filterApplied, timeout=5000) as heard:
        panel.filter.setText("qcow2")  # every image here is one
    assert heard.args[0] == everything
    with qtbot.waitSignal(panel.filterApplied, timeout=5000) as heard:
        panel.filter.clear()
    assert heard.args[0] is None
    assert resets == []
    assert not panel.tree.isExpanded(model.index_of(base))
    # A filter that hides rows still rebuilds them.
    with qtbot.waitSignal(panel.filterApplied, timeout=5000):
        panel.filter.setText("mid")
    assert resets and model.visible_count() < len(everything)
