"""A running operation is always visible: newest row on top of the Operations panel, and the
status bar shows it (name, progress, Cancel) while it runs, whichever panel is in front."""

from __future__ import annotations

import os

import pytest
from opshelpers import big_chain
from PySide6.QtCore import Qt


def _start_flatten(window, wait_plan, top) -> str:
    window.selection.set(str(top))
    window.actions.flatten.trigger()
    dialog = window.ops.dialog
    out = dialog.out_path
    assert not wait_plan(dialog).refused
    dialog.accept()
    return out


@pytest.mark.slow
def test_a_running_flatten_is_on_top_and_in_the_status_bar_and_cancels_from_there(
    qtbot, window, open_dir, wait_plan, tmp_path
):
    base, top = big_chain(tmp_path / "d", mib=256)
    open_dir(tmp_path / "d")
    indicator = window.status.job
    assert indicator.isHidden()
    # A few finished operations first: the running one must not end up below them.
    for _ in range(4):
        window.selection.set(str(base))
        with qtbot.waitSignal(window.jobs.jobFinished, timeout=30_000):
            window.actions.check.trigger()
        window.ops.last_box.close()
    assert indicator.isHidden()
    before = sorted(os.listdir(tmp_path / "d"))
    window.problems_dock.raise_()  # the Operations panel is behind another tab

    out = _start_flatten(window, wait_plan, top)
    record = window.jobs.records[-1]
    assert record.state == "running"
    layout = window.jobs._list
    rows = [layout.itemAt(i).widget() for i in range(layout.count())]
    running_at = rows.index(record.row)
    assert all(running_at < rows.index(r.row) for r in window.jobs.records[:-1])
    qtbot.waitUntil(lambda: not record.row.visibleRegion().isEmpty(), timeout=5000)

    assert indicator.isVisible()
    assert "Flatten top.qcow2" in indicator.label.text()
    assert "Flatten top.qcow2" in indicator.cancel.toolTip()
    qtbot.waitUntil(lambda: indicator.progress.maximum() == 1000, timeout=30_000)
    qtbot.waitUntil(lambda: indicator.progress.value() > 0, timeout=30_000)
    with qtbot.waitSignal(window.jobs.jobCancelled, timeout=30_000) as blocker:
        qtbot.mouseClick(indicator.cancel, Qt.MouseButton.LeftButton)
    assert "no file was created" in blocker.args[1]
    assert record.state == "cancelled"
    assert indicator.isHidden()
    assert not os.path.exists(out)
    assert sorted(os.listdir(tmp_path / "d")) == before


def _blocking_job(title: str):
    """A job that runs until its event is set or it is cancelled (no polling)."""
    import threading

    from imagegui.core.jobs import Job

    release = threading.Event()

    def run(progress, cancel):
        cancel.on_cancel(release.set)
        release.wait()
        cancel.raise_if_cancelled()

    return Job(title, run), release


def test_the_indicator_names_the_newest_of_two_running_jobs(qtbot, window):
    indicator = window.status.job
    first_job, release_first = _blocking_job("First job")
    second_job, _ = _blocking_job("Second job")
    first = window.jobs.start(first_job)
    second = window.jobs.start(second_job)
    assert indicator.isVisible()
    assert indicator.label.text() == "Second job (+1 more)"
    assert indicator.progress.maximum() == 0  # busy until it reports progress
    with qtbot.waitSignal(window.jobs.jobCancelled, timeout=10_000):
        qtbot.mouseClick(indicator.cancel, Qt.MouseButton.LeftButton)
    assert second.state == "cancelled"
    assert first.state == "running"
    assert indicator.label.text() == "First job"
    with qtbot.waitSignal(window.jobs.jobFinished, timeout=10_000):
        release_first.set()
    assert indicator.isHidden()
