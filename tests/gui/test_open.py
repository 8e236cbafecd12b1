"""Opening a directory: the list, the graph, the title, problems, and the settings remembered."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, Qt, QThreadPool

from imagegui.gui.panels.chains_model import DSIZE, FORMAT, NAME, STATE, VSIZE


def rows(model, parent=None, depth=0):
    """The model as (depth, name, format, virtual size, state) in display order."""
    parent = parent or QModelIndex()
    out = []
    for r in range(model.rowCount(parent)):
        index = model.index(r, 0, parent)
        cells = [model.index(r, c, parent).data() for c in (NAME, FORMAT, VSIZE, STATE)]
        out.append((depth, *cells))
        out += rows(model, index, depth + 1)
    return out


def test_opening_a_directory_fills_the_model(qtbot, window, open_dir, make, tmp_path):
    make.create("base.qcow2", "qcow2", "1G")
    make.overlay("mid.qcow2", "base.qcow2")
    make.overlay("top.qcow2", "mid.qcow2")
    make.overlay("sibling.qcow2", "base.qcow2")
    make.create("alone.raw", "raw", "1M")
    make.overlay("clone.qcow2", "gone.qcow2")
    open_dir(tmp_path)

    model = window.chains.model
    assert rows(model) == [
        (0, "alone.raw", "raw", "1 MiB", "ok"),
        (0, "base.qcow2", "qcow2", "1 GiB", "ok"),
        (1, "mid.qcow2", "qcow2", "64 MiB", "ok"),
        (2, "top.qcow2", "qcow2", "64 MiB", "ok"),
        (1, "sibling.qcow2", "qcow2", "64 MiB", "ok"),
        (0, "gone.qcow2", "missing", "", "missing"),
        (1, "clone.qcow2", "qcow2", "64 MiB", "error"),
    ]
    # The rows wrap the scan's own records: the path role leads back to them.
    index = model.index_of(str(tmp_path / "top.qcow2"))
    assert index.data(Qt.ItemDataRole.UserRole + 1) == str(tmp_path / "top.qcow2")
    assert model.index(0, DSIZE).data().endswith("B")
    assert window.windowTitle() == f"{tmp_path.name} — 6 images, 1 problem — imagegui"
    assert window.status.summary.text() == "6 images · 1 error · 0 warnings · 1 unusable"
    # One card per node (six images and the missing placeholder) and a problems entry.
    assert len(window.scene.shown_nodes()) == 7
    assert window.problems.model.problem_count() == 1
    assert window.settings.recent_dirs() == [str(tmp_path)]


def test_filter_and_sort(qtbot, window, open_dir, make, tmp_path):
    make.create("base.qcow2", "qcow2", "1G")
    make.overlay("mid.qcow2", "base.qcow2")
    make.overlay("clone.qcow2", "gone.qcow2")
    make.create("big.raw", "raw", "4M")
    open_dir(tmp_path)
    model = window.chains.model

    model.set_filter("missing")  # a problem kind: the broken clone, shown under its placeholder
    assert [r[1] for r in rows(model)] == ["gone.qcow2", "clone.qcow2"]
    model.set_filter("backing file")  # a problem's title (Missing backing file), as shown
    assert [r[1] for r in rows(model)] == ["gone.qcow2", "clone.qcow2"]
    model.set_filter("mid")  # a name: shown inside its chain
    assert [r[1] for r in rows(model)] == ["base.qcow2", "mid.qcow2"]
    model.set_filter("")

    model.sort(VSIZE, Qt.SortOrder.DescendingOrder)
    assert [r[1] for r in rows(model) if r[0] == 0] == ["base.qcow2", "big.raw", "gone.qcow2"]
    model.sort(STATE, Qt.SortOrder.AscendingOrder)  # trouble first
    assert rows(model)[0][1] == "gone.qcow2"


def test_rescan_after_a_file_appears_keeps_the_selection(qtbot, window, open_dir, make, tmp_path):
    make.create("base.qcow2", "qcow2", "1G")
    open_dir(tmp_path)
    base = str(tmp_path / "base.qcow2")
    window.selection.set(base)
    make.overlay("new.qcow2", "base.qcow2")
    with qtbot.waitSignal(window.ready, timeout=30_000):
        window.actions.rescan.trigger()  # F5
    assert window.scene.shown(str(tmp_path / "new.qcow2"))
    assert window.selection.node == base
    assert window.chains.current_node() == base


def test_directory_changes_rescan_automatically(qtbot, window, open_dir, make, tmp_path):
    make.create("base.qcow2", "qcow2", "1G")
    open_dir(tmp_path)
    with qtbot.waitSignal(window.ready, timeout=30_000):
        make.overlay("later.qcow2", "base.qcow2")  # QFileSystemWatcher, then the debounce
    assert str(tmp_path / "later.qcow2") in window.session.snapshot.graph.nodes


def test_a_missing_directory_is_reported(qtbot, window, open_dir, tmp_path):
    with qtbot.waitSignal(window.session.scanFailed, timeout=10_000) as blocker:
        window.open_directory(str(tmp_path / "nope"))
    assert "nope" in blocker.args[1]
    assert window.windowTitle() == "imagegui"
    assert window.ops.last_box is None


def test_opening_a_file_selects_it(qtbot, window, open_dir, make, tmp_path):
    make.create("base.qcow2", "qcow2", "1G")
    top = make.overlay("top.qcow2", "base.qcow2")
    open_dir(top)
    assert window.session.root == str(tmp_path)
    assert window.selection.node == str(top)
    assert window.chains.current_node() == str(top)


def test_filter_dims_the_other_cards(qtbot, window, open_dir, make, tmp_path):
    make.create("base.qcow2", "qcow2", "1G")
    lost = str(make.overlay("lost.qcow2", "gone.qcow2"))
    open_dir(tmp_path)
    with qtbot.waitSignal(window.chains.filterApplied, timeout=5_000):
        window.chains.filter.setText("error")
    scene = window.scene
    assert not scene.dimmed(lost)
    assert scene.dimmed(str(tmp_path / "base.qcow2"))
    with qtbot.waitSignal(window.chains.filterApplied, timeout=5_000):
        window.chains.filter.clear()
    assert not any(scene.dimmed(node) for node in scene.shown_nodes())


def test_opening_another_directory_while_one_scans_shows_only_the_second(
    qtbot, window, make, tmp_path
):
    first, second = tmp_path / "first", tmp_path / "second"
    make.create("first/a.qcow2")
    make.create("second/b.qcow2")
    roots: list[str] = []
    window.session.snapshotReady.connect(lambda snap: roots.append(snap.root))
    with qtbot.waitSignal(window.ready, timeout=30_000):
        window.open_directory(str(first))
        window.open_directory(str(second))  # before the first scan's result is delivered
    assert QThreadPool.globalInstance().waitForDone(30_000)
    qtbot.waitUntil(lambda: not window.session.scanning, timeout=10_000)
    assert roots == [str(second)]
    assert window.session.root == str(second)


def test_a_scan_reports_its_file_count_and_stages_on_the_way(qtbot, window, make, tmp_path):
    make.create("base.qcow2")
    make.overlay("top.qcow2", "base.qcow2")
    counts: list[int] = []
    stages: list[str] = []
    window.session.scanProgress.connect(counts.append)
    window.session.scanStage.connect(stages.append)
    with qtbot.waitSignal(window.ready, timeout=30_000):
        window.open_directory(str(tmp_path))
    assert counts and counts[-1] == window.session.snapshot.graph.scan.files_seen
    assert stages == ["Building the chain graph", "Laying out"]
    assert window.status.scan_label.isHidden()
