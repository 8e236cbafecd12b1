"""The Qt adapter: core jobs on the global QThreadPool, signals delivered in the GUI thread."""

from __future__ import annotations

import gc
import os
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
from opshelpers import big_chain  # noqa: E402
from PySide6.QtCore import QThread, QThreadPool  # noqa: E402

from imagegui.core.jobs import CancelToken, Job, ProgressFn  # noqa: E402
from imagegui.core.ops.guards import GuardRefused, refuse  # noqa: E402
from imagegui.core.ops.operations import OpResult, plan_flatten  # noqa: E402
from imagegui.gui import workers  # noqa: E402
from imagegui.gui.workers import JobHandle, start_job  # noqa: E402


@pytest.fixture(autouse=True)
def no_thread_left_running():
    yield
    assert QThreadPool.globalInstance().waitForDone(10_000), "a worker thread is still running"


def counting_job(progress: ProgressFn, cancel: CancelToken) -> str:
    for i in range(11):
        progress(i / 10)
    return "counted"


def waiting_job(progress: ProgressFn, cancel: CancelToken) -> str:
    """Reports 0 %, then blocks until cancelled (a long step that honours the token)."""
    progress(0.0)
    cancel.wait(30)
    cancel.raise_if_cancelled("the images were not touched")
    return "not cancelled?"


def test_progress_and_result_arrive_in_the_gui_thread(qtbot):
    gui_thread = QThread.currentThread()
    seen: list[tuple[float, bool]] = []
    handle = JobHandle(Job("count", counting_job))
    handle.signals.progress.connect(
        lambda f: seen.append((f, QThread.currentThread() is gui_thread))
    )
    with qtbot.waitSignal(handle.signals.finished, timeout=10_000) as blocker:
        handle.start(interval=0)
    assert blocker.args == ["counted"]
    assert [f for f, _ in seen] == [i / 10 for i in range(11)]
    assert all(in_gui for _, in_gui in seen)
    qtbot.waitUntil(lambda: handle.done, timeout=5_000)


def test_progress_is_throttled(qtbot):
    seen: list[float] = []
    handle = JobHandle(Job("count", counting_job))
    handle.signals.progress.connect(seen.append)
    with qtbot.waitSignal(handle.signals.finished, timeout=10_000):
        handle.start(interval=3600)
    assert seen == [0.0, 1.0]


def test_cancel_from_the_gui_thread(qtbot):
    handle = JobHandle(Job("wait", waiting_job))
    handle.signals.progress.connect(lambda _: handle.cancel())
    finished: list[object] = []
    handle.signals.finished.connect(finished.append)
    with qtbot.waitSignal(handle.signals.cancelled, timeout=10_000) as blocker:
        handle.start()
    assert blocker.args == ["cancelled; the images were not touched"]
    assert finished == []


def test_failure_carries_the_exception(qtbot):
    def refusing(progress: ProgressFn, cancel: CancelToken) -> None:
        raise GuardRefused([refuse("in-use", "image x is in use by PID 1 (qemu)")])

    failures: list[object] = []
    start_job(Job("refuse", refusing), failed=failures.append)
    qtbot.waitUntil(lambda: len(failures) == 1, timeout=10_000)
    (exc,) = failures
    assert isinstance(exc, GuardRefused) and "PID 1" in str(exc)


def test_dropped_handle_still_delivers(qtbot):
    results: list[object] = []
    start_job(Job("count", counting_job), finished=results.append)
    gc.collect()
    qtbot.waitUntil(lambda: results == ["counted"], timeout=10_000)
    qtbot.waitUntil(lambda: not workers._active, timeout=10_000)  # released afterwards


@pytest.mark.slow
def test_real_flatten_cancelled_through_the_pool(qtbot, tmp_path: Path):
    _, top = big_chain(tmp_path, mib=256)
    out = tmp_path / "flat.qcow2"
    handle = JobHandle(plan_flatten(str(top), str(out)).job())
    progress: list[float] = []

    def on_progress(fraction: float) -> None:
        progress.append(fraction)
        handle.cancel()

    handle.signals.progress.connect(on_progress)
    with qtbot.waitSignal(handle.signals.cancelled, timeout=30_000) as blocker:
        handle.start()
    assert "no file was created" in blocker.args[0]
    assert progress and progress[0] < 1.0
    assert sorted(os.listdir(tmp_path)) == ["base.qcow2", "top.qcow2"]


def test_real_flatten_finishes_with_result(qtbot, tmp_path: Path):
    _, top = big_chain(tmp_path, mib=4)
    out = tmp_path / "flat.qcow2"
    handle = JobHandle(plan_flatten(str(top), str(out)).job())
    with qtbot.waitSignal(handle.signals.finished, timeout=30_000) as blocker:
        handle.start()
    (result,) = blocker.args
    assert isinstance(result, OpResult) and result.changed == [str(out)]
    assert out.exists()
