"""Stopping a scan: a big folder opened by mistake (a home directory, a whole NFS export) takes
minutes to walk, and the window must not hold the user to it. File ▸ Stop Scanning (Esc, or the
Stop button beside the scan's progress) ends it; what was shown before stays shown, and watched;
nothing of the stopped folder is kept."""

from __future__ import annotations

import threading

from PySide6.QtCore import Qt

from imagegui.core.read.rescan import ScanState
from imagegui.core.read.watch import TreeWatcher


def wait_watching(qtbot, window, root) -> None:
    live = window.session.live
    qtbot.waitUntil(lambda: live.root == str(root) and live.status is not None, timeout=10_000)


def hold_walks(monkeypatch) -> threading.Event:
    """Every scan from now on (full or a rescan) waits, before its walk, until the returned
    event is set: a scan the test can stop while it runs, whatever the machine's speed (the job
    then asks whether it was stopped, as a long walk does every few files)."""
    gate = threading.Event()
    full, again = ScanState.from_full, ScanState.rescan

    def held_full(root, progress=None, **kwargs):
        gate.wait(30)
        return full(root, progress, **kwargs)

    def held_rescan(self, changed=None, progress=None):
        gate.wait(30)
        return again(self, changed, progress)

    monkeypatch.setattr(ScanState, "from_full", staticmethod(held_full))
    monkeypatch.setattr(ScanState, "rescan", held_rescan)
    return gate


def test_stopping_the_open_of_another_folder_keeps_the_shown_one_shown_and_watched(
    qtbot, window, open_dir, make, tmp_path, monkeypatch
):
    make.create("shown/base.qcow2")
    make.create("big/other.qcow2")
    open_dir(tmp_path / "shown")
    wait_watching(qtbot, window, tmp_path / "shown")
    shown = window.session.snapshot
    memory = window.session._memory  # what the shown folder's scan read
    actions = window.actions
    assert not actions.stop_scan.isEnabled()
    button = window.toolbar.widgetForAction(actions.stop_scan)  # beside Rescan
    assert button is not None and not button.isEnabled()
    gate = hold_walks(monkeypatch)
    window.open_directory(str(tmp_path / "big"))
    assert actions.stop_scan.isEnabled() and button.isEnabled()
    assert window.status.stop.isVisible()
    # Its first scan watches it before walking (and stops watching the shown one).
    qtbot.waitUntil(lambda: window.session.live.root == str(tmp_path / "big"), timeout=10_000)
    starts: list[str] = []
    window.session.scanStarted.connect(starts.append)
    with qtbot.waitSignal(window.session.scanCancelled, timeout=30_000):
        actions.stop_scan.trigger()
        gate.set()
    assert not actions.stop_scan.isEnabled()
    assert not window.status.stop.isVisible() and not window.status.progress.isVisible()
    assert "Stopped scanning" in window.status.currentMessage()
    assert window.session.snapshot is shown
    assert window.session.root == str(tmp_path / "shown")
    assert window.session.live.root == str(tmp_path / "shown")
    assert window.session._memory is memory  # its rescans still read only what changed
    # Watched again from now: what changed meanwhile is looked at by a live rescan, which
    # leaves the message readable.
    qtbot.waitUntil(lambda: bool(starts) and not window.session.scanning, timeout=30_000)
    assert starts == [str(tmp_path / "shown")]
    assert "Stopped scanning" in window.status.currentMessage()
    assert str(tmp_path / "big" / "other.qcow2") not in window.session.snapshot.graph.nodes
    # The shown folder is watched again: its changes show up by themselves. (Not awaited as
    # ``window.ready``: the live rescan above may still be drawing, and says ready when done.)
    make.overlay("shown/new.qcow2", "base.qcow2")
    new = str(tmp_path / "shown" / "new.qcow2")
    qtbot.waitUntil(lambda: new in window.session.snapshot.graph.nodes, timeout=30_000)


def test_a_stop_while_the_folder_is_still_being_watched_ends_at_once(
    qtbot, window, make, tmp_path, monkeypatch
):
    """The first scan of a folder waits until every directory under it is watched (a huge tree
    takes a while); Stop ends that wait instead of sitting it out."""
    make.create("big/other.qcow2")
    entered = threading.Event()
    real = TreeWatcher.add_tree

    def endless(self, top):
        if top != str(tmp_path / "big"):
            return real(self, top)
        entered.set()
        self._stop.wait()  # a tree that never ends: only a stop ends the set-up

    monkeypatch.setattr(TreeWatcher, "add_tree", endless)
    window.open_directory(str(tmp_path / "big"))
    qtbot.waitUntil(entered.is_set, timeout=10_000)
    stop = window.welcome.stop  # nothing shown yet: the page in view offers Stop too
    assert stop.isVisible() and stop.text() == "Stop Scanning"
    with qtbot.waitSignal(window.session.scanCancelled, timeout=10_000):
        qtbot.mouseClick(stop, Qt.MouseButton.LeftButton)
    assert not stop.isVisible()
    assert window.session.snapshot is None
    assert window.session.live.root is None  # nothing shown: nothing watched
    assert window.welcome.isVisible()
    assert "Stopped scanning" in window.welcome.status.text()


def test_esc_stops_a_scan_but_still_clears_the_filter_first(
    qtbot, window, open_dir, make, tmp_path, monkeypatch
):
    make.create("base.qcow2")
    open_dir(tmp_path)
    window.chains.filter.setFocus()
    qtbot.keyClicks(window.chains.filter, "base")
    qtbot.keyClick(window.chains.filter, Qt.Key.Key_Escape)
    assert window.chains.filter.text() == ""  # Esc in the filter clears it, scan or not
    gate = hold_walks(monkeypatch)
    window.rescan()
    assert window.session.scanning
    qtbot.keyClick(window.chains.filter, "x")
    qtbot.keyClick(window.chains.filter, Qt.Key.Key_Escape)
    assert window.chains.filter.text() == "" and window.session.scanning
    with qtbot.waitSignal(window.session.scanCancelled, timeout=30_000):
        qtbot.keyClick(window.chains.filter, Qt.Key.Key_Escape)  # an empty filter: Esc stops
        gate.set()
    assert window.session.snapshot is not None  # a stopped rescan leaves the graph shown
    assert "as it was at the last scan" in window.status.currentMessage()  # and says so
    assert str(tmp_path / "base.qcow2") in window.session.snapshot.graph.nodes
