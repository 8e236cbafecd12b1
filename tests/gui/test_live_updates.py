"""Live updates: the window watches the open folder (inotify) and shows a change without a
manual rescan, keeping the selection, the zoom and the scroll position; the status bar says
what is watched, and why not everything when the system's limit is reached."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from conftest import qemu_img

from imagegui.core.read.rescan import ScanState
from imagegui.core.read.watch import Changes, WatchStatus
from imagegui.gui.panels.status import watch_text
from imagegui.gui.session import PERIODIC_MIN_MS


def wait_watching(qtbot, window) -> None:
    qtbot.waitUntil(lambda: window.session.live.status is not None, timeout=10_000)


def test_a_new_overlay_shows_up_by_itself_and_the_selection_stays(
    qtbot, window, open_dir, make, tmp_path
):
    make.create("base.qcow2", "qcow2", "1G")
    (tmp_path / "sub").mkdir()
    open_dir(tmp_path)
    wait_watching(qtbot, window)
    assert window.status.watching.text() == "Watching 2 folders"
    assert window.status.watching.isVisible()
    base = str(tmp_path / "base.qcow2")
    window.selection.set(base)
    with qtbot.waitSignal(window.ready, timeout=30_000):
        make.overlay("sub/new.qcow2", "../base.qcow2")  # a real qemu-img create
    new = str(tmp_path / "sub" / "new.qcow2")
    assert new in window.session.snapshot.graph.nodes
    assert window.scene.shown(new)
    assert window.session.live_update
    assert window.session.scan_changed is not None and new in window.session.scan_changed
    assert window.selection.node == base
    assert window.chains.current_node() == base


def test_a_live_update_reads_only_what_changed(
    qtbot, window, open_dir, make, tmp_path, monkeypatch
):
    # Files made a moment before a scan are read again once (their stamps may not have ticked
    # yet: ``ScanState.racy_ns``); this test's files are that young, so trust their stamps.
    monkeypatch.setattr(ScanState, "racy_ns", 0)
    for d in range(3):
        make.create(f"d{d}/base.qcow2", "qcow2", "1G")
        for i in range(4):
            make.overlay(f"d{d}/clone{i}.qcow2", "base.qcow2")
    open_dir(tmp_path)
    wait_watching(qtbot, window)
    assert window.session._memory.state.counts.read == 15
    with qtbot.waitSignal(window.ready, timeout=30_000):
        make.overlay("d1/new.qcow2", "clone1.qcow2")
    assert str(tmp_path / "d1" / "new.qcow2") in window.session.snapshot.graph.nodes
    counts = window.session._memory.state.counts
    assert counts.read == 1  # the new overlay; the 15 others kept from the last scan
    assert counts.listed <= 2  # its folder (and the root at most)


def test_a_live_update_keeps_the_zoom_and_the_scroll_position(
    qtbot, window, open_dir, make, tmp_path
):
    make.create("base.qcow2", "qcow2", "1G")
    for i in range(6):
        make.overlay(f"clone{i}.qcow2", "base.qcow2")
    open_dir(tmp_path)
    wait_watching(qtbot, window)
    window.selection.set(str(tmp_path / "clone5.qcow2"))
    window.view.set_scale(2.5)
    bar = window.view.verticalScrollBar()
    assert bar.maximum() > 0
    bar.setValue(bar.maximum() // 3)

    def middle():
        return window.view.mapToScene(window.view.viewport().rect().center())

    before = middle()
    with qtbot.waitSignal(window.ready, timeout=30_000):
        make.overlay("late.qcow2", "clone0.qcow2")
    assert window.scene.shown(str(tmp_path / "late.qcow2"))
    assert window.view.scale_factor == 2.5
    after = middle()  # the same point of the graph in the middle (to a pixel's rounding)
    assert abs(after.x() - before.x()) <= 1 and abs(after.y() - before.y()) <= 1
    assert window.selection.node == str(tmp_path / "clone5.qcow2")


def test_a_manual_rescan_looks_at_everything(qtbot, window, open_dir, make, tmp_path):
    make.create("base.qcow2")
    open_dir(tmp_path)
    wait_watching(qtbot, window)
    with qtbot.waitSignal(window.ready, timeout=30_000):
        window.actions.rescan.trigger()
    assert window.session.scan_changed is None
    assert not window.session.live_update


def test_a_rescan_that_finds_nothing_new_keeps_the_graph_drawn(
    qtbot, window, open_dir, make, tmp_path
):
    make.create("base.qcow2", "qcow2", "1G")
    make.overlay("clone.qcow2", "base.qcow2")
    open_dir(tmp_path)
    wait_watching(qtbot, window)
    clone = str(tmp_path / "clone.qcow2")
    window.selection.set(clone)
    shown = window.session.snapshot
    sent: list[object] = []
    window.session.snapshotReady.connect(sent.append)
    with qtbot.waitSignals([window.session.scanUnchanged, window.ready], timeout=30_000):
        window.actions.rescan.trigger()  # everything looked at, nothing changed
    assert sent == []
    assert window.session.snapshot is shown
    assert window.status.progress.isHidden()
    assert window.selection.node == clone
    with qtbot.waitSignal(window.ready, timeout=30_000):
        make.overlay("new.qcow2", "clone.qcow2")  # a real change still shows
    assert len(sent) == 1 and sent[0] is window.session.snapshot is not shown
    assert sent[0].graph.updated_nodes is not None  # updated from the graph shown, not rebuilt
    assert str(tmp_path / "new.qcow2") in window.session.snapshot.graph.nodes
    assert window.selection.node == clone
    assert window.chains.current_node() == clone


def test_the_folder_removed_stops_live_updates_without_a_dialog(
    qtbot, window, open_dir, make, tmp_path
):
    root = tmp_path / "root"
    make.create("root/base.qcow2")
    open_dir(root)
    wait_watching(qtbot, window)
    shutil.rmtree(root)
    qtbot.waitUntil(lambda: window.status.watching.text() == "Live updates stopped", timeout=10_000)
    assert "removed" in window.status.watching.toolTip()
    assert window.ops.last_box is None
    assert not window.session.scanning


def test_auto_rescan_off_says_live_updates_are_off(qtbot, window, open_dir, make, tmp_path):
    make.create("base.qcow2")
    window.settings.set_auto_rescan(False)
    open_dir(tmp_path)
    wait_watching(qtbot, window)
    assert window.status.watching.text() == "Live updates off"
    assert "Preferences" in window.status.watching.toolTip()


def test_watch_limit_falls_back_to_periodic_rescans(qtbot, window, open_dir, make, tmp_path):
    make.create("base.qcow2")
    open_dir(tmp_path)
    wait_watching(qtbot, window)
    session = window.session
    assert not session._periodic.isActive()  # everything watched: no periodic rescan
    limited = WatchStatus(folders=8192, unwatched=1809, limit=8192, limited=True)
    session.live.status = limited
    session._on_watch_status(limited)
    assert session._periodic.isActive()
    assert session._periodic.interval() >= PERIODIC_MIN_MS
    assert window.status.watching.text() == "Watching 8,192 of 10,001 folders"
    window.settings.set_auto_rescan(False)
    session.settings_changed()
    assert not session._periodic.isActive()


def test_imagegui_s_own_files_changing_start_no_rescan(qtbot, window, open_dir, make, tmp_path):
    """Settings, log and journal live in folders a scan of the home folder includes: each
    rescan writes them, so their changes must not start one (it would never end)."""
    make.create("base.qcow2")
    open_dir(tmp_path)
    session = window.session
    own = window.settings.q.fileName()
    session._on_files_changed(Changes(frozenset({own, own + ".lck"})))
    assert not session._debounce.isActive()
    image = str(tmp_path / "base.qcow2")
    session._on_files_changed(Changes(frozenset({own, image})))
    assert session._debounce.isActive()
    assert session.changed is not None and session.changed == {image}


def test_watch_texts_say_the_limit_and_how_to_raise_it():
    text, tip = watch_text(WatchStatus(folders=100, unwatched=5, limit=100, limited=True), True)
    assert text == "Watching 100 of 105 folders"
    assert "only 100 folder watches" in tip and "fs.inotify.max_user_watches" in tip
    assert "/etc/sysctl.d/" in tip
    text, tip = watch_text(WatchStatus(failure="the system allows no more inotify instances"), True)
    assert text == "Live updates off" and "no more inotify instances" in tip
    assert watch_text(WatchStatus(folders=1), True)[0] == "Watching 1 folder"
    assert "VM starting or stopping" in watch_text(WatchStatus(folders=1), True)[1]
    text, tip = watch_text(WatchStatus(folders=3, outside=2), True)
    assert text == "Watching 3 folders"
    assert "backing files in 2 other folders" in tip
    assert watch_text(None, True) == ("", "")


def test_a_change_right_after_the_first_scan_is_not_missed(
    qtbot, window, open_dir, make, tmp_path, monkeypatch
):
    """A file changed after the first scan read it and before the watch was in place used to
    stay unseen until some other event: the watch now starts before the walk. The seam is the
    first scan itself: its walk ends, then (still on the worker) an overlay is rebased in place
    (no directory entry changes) and a new one is made, then the window goes on."""
    make.create("base.qcow2")
    make.create("other.qcow2")
    make.overlay("top.qcow2", "base.qcow2")
    full = ScanState.from_full
    done: list[bool] = []

    def walk_then_change(root, *args, **kwargs):
        state = full(root, *args, **kwargs)
        if not done:
            done.append(True)
            qemu_img(
                "rebase",
                "-u",
                "-f",
                "qcow2",
                "-b",
                "other.qcow2",
                "-F",
                "qcow2",
                tmp_path / "top.qcow2",
            )
            make.overlay("late.qcow2", "base.qcow2")
        return state

    monkeypatch.setattr(ScanState, "from_full", staticmethod(walk_then_change))
    open_dir(tmp_path)
    assert done
    top, late = str(tmp_path / "top.qcow2"), str(tmp_path / "late.qcow2")
    qtbot.waitUntil(
        lambda: (
            late in window.session.snapshot.graph.nodes
            and window.session.snapshot.graph.scan.images[top].backing_file == "other.qcow2"
        ),
        timeout=15_000,
    )
    assert window.scene.shown(late)


def test_a_folder_that_fails_to_open_leaves_the_shown_one_watched(
    qtbot, window, open_dir, make, tmp_path
):
    """The first scan of a folder watches it before walking; when that scan fails (the folder
    is gone), the folder still shown is watched again, and what changed meanwhile is looked at."""
    make.create("shown/base.qcow2")
    open_dir(tmp_path / "shown")
    wait_watching(qtbot, window)
    session = window.session
    memory = session._memory
    with qtbot.waitSignal(session.scanFailed, timeout=30_000):
        session.open(str(tmp_path / "missing"))
    assert session.live.root == str(tmp_path / "shown")
    assert session._memory is memory  # the shown folder's rescans still read what changed
    # Watched again, so a live rescan looks at what changed meanwhile; it may end (and the
    # window say ready) before or after the new overlay is made: wait for the overlay itself.
    make.overlay("shown/new.qcow2", "base.qcow2")
    new = str(tmp_path / "shown" / "new.qcow2")
    qtbot.waitUntil(lambda: new in session.snapshot.graph.nodes, timeout=30_000)


def test_a_change_to_a_base_in_another_folder_shows_up_by_itself(
    qtbot, window, open_dir, make, tmp_path, tmp_path_factory
):
    """The base lives outside the open folder: its folder is watched (for that file only)."""
    other = tmp_path_factory.mktemp("bases")
    base = other / "base.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", base, "64M")
    make.overlay("top.qcow2", str(base))
    open_dir(tmp_path)
    wait_watching(qtbot, window)
    scan = window.session.snapshot.graph.scan
    assert scan.external[str(base)].virtual_size == 64 << 20
    qtbot.waitUntil(lambda: window.session.live.status.outside == 1, timeout=10_000)
    with qtbot.waitSignal(window.ready, timeout=30_000):
        qemu_img("resize", "-q", base, "128M")
    assert window.session.snapshot.graph.scan.external[str(base)].virtual_size == 128 << 20
    assert window.session.live_update


@pytest.mark.slow
def test_a_vm_started_on_an_image_shows_it_in_use_by_itself(
    qtbot, window, open_dir, make, tmp_path
):
    """A VM that opens an image and writes nothing sends no file event: the lock table is
    polled (``core.read.watch``), and the window shows the image in use, then free again."""
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        pytest.skip("qemu-system-x86_64 is not installed")
    base = str(make.create("base.qcow2"))
    top = str(make.overlay("top.qcow2", "base.qcow2"))
    open_dir(tmp_path)
    wait_watching(qtbot, window)
    assert not window.session.snapshot.status[top].in_use
    window.selection.set(top)
    argv = [qemu, "-machine", "pc,accel=tcg", "-m", "64", "-nodefaults", "-display", "none"]
    argv += ["-S", "-drive", f"file={top},format=qcow2,if=virtio"]
    vm = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        qtbot.waitUntil(
            lambda: (
                window.session.snapshot.status[top].in_use
                and window.session.snapshot.status[base].in_use
            ),
            timeout=30_000,
        )
        assert window.session.snapshot.status[top].writer
        assert not window.session.snapshot.status[base].writer  # a backing file: read only
        assert window.session.live_update
        assert window.selection.node == top
    finally:
        vm.kill()
        vm.wait()
    qtbot.waitUntil(lambda: not window.session.snapshot.status[top].in_use, timeout=30_000)


def test_a_folder_of_images_moved_into_the_tree_shows_up(
    qtbot, window, open_dir, make, tmp_path, tmp_path_factory
):
    """A folder moved in brings files no event names one by one (its watch is added after the
    move): the folder's own event makes the rescan look through all of it, subfolders too."""
    make.create("root/base.qcow2")
    open_dir(tmp_path / "root")
    wait_watching(qtbot, window)
    outside = tmp_path_factory.mktemp("staging")
    qemu_img("create", "-q", "-f", "qcow2", outside / "vm1.qcow2", "64M")
    (outside / "deeper").mkdir()
    qemu_img(
        "create",
        "-q",
        "-f",
        "qcow2",
        "-b",
        "../vm1.qcow2",
        "-F",
        "qcow2",
        outside / "deeper" / "vm1-snap.qcow2",
    )
    with qtbot.waitSignal(window.ready, timeout=30_000):
        outside.rename(tmp_path / "root" / "moved")
    moved = tmp_path / "root" / "moved"
    graph = window.session.snapshot.graph
    assert str(moved / "vm1.qcow2") in graph.nodes
    assert str(moved / "deeper" / "vm1-snap.qcow2") in graph.nodes
    assert graph.scan.images[str(moved / "deeper" / "vm1-snap.qcow2")].backing_path == str(
        moved / "vm1.qcow2"
    )
    # The moved folder's subfolders are watched now: a file made there is seen by itself.
    with qtbot.waitSignal(window.ready, timeout=30_000):
        make.overlay("root/moved/deeper/later.qcow2", "vm1-snap.qcow2")
    assert str(moved / "deeper" / "later.qcow2") in window.session.snapshot.graph.nodes


@pytest.fixture
def qemu_io_holding():
    """``qemu_io_holding(path)``: a real qemu-io that opens ``path`` (writing nothing) and stops
    itself while it holds QEMU's locks, awaited with waitpid; killed at the end."""
    qemu_io = shutil.which("qemu-io")
    if qemu_io is None:
        pytest.fail("qemu-io is not installed (Debian: qemu-utils)")
    procs: list[subprocess.Popen] = []

    def run(path) -> subprocess.Popen:
        argv = [qemu_io, "-f", "qcow2", "-c", "sigraise 19", str(path)]
        procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL))
        _, status = os.waitpid(procs[-1].pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status)
        return procs[-1]

    yield run
    for proc in procs:
        proc.kill()
        proc.wait()


def test_a_manual_rescan_sees_an_image_opened_without_a_write(
    qtbot, window, open_dir, make, tmp_path, qemu_io_holding, monkeypatch
):
    """Rescan looks at every stamp, and an image opened by a VM since has none changed: the
    lock table tells which images to read again."""
    monkeypatch.setattr(ScanState, "racy_ns", 0)  # young files are read again anyway
    window.settings.set_auto_rescan(False)  # only the manual rescan may show it
    make.create("base.qcow2")
    top = str(make.overlay("top.qcow2", "base.qcow2"))
    open_dir(tmp_path)
    assert not window.session.snapshot.status[top].in_use
    qemu_io_holding(top)
    with qtbot.waitSignal(window.ready, timeout=30_000):
        window.actions.rescan.trigger()
    assert window.session.snapshot.status[top].in_use
    assert window.session.snapshot.status[str(tmp_path / "base.qcow2")].in_use
