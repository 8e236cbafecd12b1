"""The Qt adapter: core jobs on the global QThreadPool, signals delivered in the GUI thread, and
the task slot that runs one job at a time for its owner."""

from __future__ import annotations

import os
import threading
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
from opshelpers import big_chain  # noqa: E402
from PySide6.QtCore import QObject, QThread, QThreadPool  # noqa: E402
from shiboken6 import delete  # noqa: E402

from imagegui.core.jobs import CancelToken, Job, ProgressFn  # noqa: E402
from imagegui.core.ops.flatten import plan_flatten  # noqa: E402
from imagegui.core.ops.plan import (  # noqa: E402
    GuardRefused,
    OpResult,  # noqa: E402
    refuse,
)
from imagegui.gui import workers  # noqa: E402
from imagegui.gui.workers import JobHandle, TaskSlot  # noqa: E402


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

    owner = QObject()
    failures: list[object] = []
    TaskSlot(owner, on_failed=failures.append).start(Job("refuse", refusing))
    qtbot.waitUntil(lambda: len(failures) == 1, timeout=10_000)
    (exc,) = failures
    assert isinstance(exc, GuardRefused) and "PID 1" in str(exc)


class Owner(QObject):
    """What a panel or dialog is to its slot: it records every outcome it hears of."""

    def __init__(self):
        super().__init__()
        self.heard: list[tuple[str, object]] = []
        self.slot = TaskSlot(
            self,
            on_done=lambda r: self.heard.append(("done", r)),
            on_failed=lambda e: self.heard.append(("failed", e)),
            on_cancelled=lambda m: self.heard.append(("cancelled", m)),
            on_progress=lambda f: self.heard.append(("progress", f)),
        )


def gated_job(title: str, result: str) -> tuple[Job[str], threading.Event]:
    """A job that ignores its token and returns ``result`` once its gate opens: the worst case
    for staleness (a superseded job that still finishes)."""
    gate = threading.Event()

    def run(progress: ProgressFn, cancel: CancelToken) -> str:
        gate.wait(30)
        return result

    return Job(title, run), gate


def test_a_second_start_cancels_the_first_and_only_the_second_reaches_the_owner(qtbot):
    owner = Owner()
    first_job, first_gate = gated_job("first", "first result")
    second_job, second_gate = gated_job("second", "second result")
    first = owner.slot.start(first_job)
    second = owner.slot.start(second_job)
    assert first.token.cancelled and not second.token.cancelled
    assert owner.slot.handle is second
    first_gate.set()  # the superseded job finishes anyway and reports its result
    qtbot.waitUntil(lambda: first.done, timeout=10_000)
    assert owner.heard == []
    assert owner.slot.running
    second_gate.set()
    qtbot.waitUntil(lambda: owner.heard != [], timeout=10_000)
    assert owner.heard == [("done", "second result")]
    assert not owner.slot.running


def test_a_result_already_queued_when_the_next_job_starts_is_dropped(qtbot):
    """The first job has finished and its result waits in the GUI thread's queue when the second
    starts: it must not be delivered."""
    owner = Owner()
    owner.slot.start(Job("quick", counting_job))
    # The pool thread has run the job and posted its signals; no event is processed meanwhile.
    assert QThreadPool.globalInstance().waitForDone(10_000)
    second_job, second_gate = gated_job("second", "second result")
    owner.slot.start(second_job)
    second_gate.set()
    qtbot.waitUntil(lambda: ("done", "second result") in owner.heard, timeout=10_000)
    assert owner.heard == [("done", "second result")]


def test_cancel_reports_how_the_job_ended_discard_does_not(qtbot):
    owner = Owner()
    owner.slot.start(Job("wait", waiting_job))
    qtbot.waitUntil(lambda: ("progress", 0.0) in owner.heard, timeout=10_000)
    owner.slot.cancel()
    qtbot.waitUntil(lambda: len(owner.heard) == 2, timeout=10_000)
    assert owner.heard[1] == ("cancelled", "cancelled; the images were not touched")

    owner.heard.clear()
    handle = owner.slot.start(Job("wait", waiting_job))
    owner.slot.discard()
    assert handle.token.cancelled and not owner.slot.running
    qtbot.waitUntil(lambda: handle.done, timeout=10_000)
    assert owner.heard == []


def test_news_of_the_current_job_arrives_a_superseded_jobs_does_not(qtbot):
    owner = QObject()
    news: list[object] = []
    done: list[object] = []
    slot = TaskSlot(owner, on_note=news.append, on_done=done.append)
    gate = threading.Event()

    def talking(name: str, wait: bool):
        def make(note):
            def run(progress: ProgressFn, cancel: CancelToken) -> str:
                note(f"{name} started")
                if wait:
                    gate.wait(30)
                note(f"{name} still here")
                return name

            return Job(name, run)

        return make

    old = slot.start_noting(talking("old", wait=True))
    qtbot.waitUntil(lambda: news == ["old started"], timeout=10_000)
    slot.start_noting(talking("new", wait=False))
    gate.set()  # the old job talks on and finishes after it was superseded
    qtbot.waitUntil(lambda: done == ["new"], timeout=10_000)
    qtbot.waitUntil(lambda: old.done, timeout=10_000)
    assert news == ["old started", "new started", "new still here"]


def test_a_callback_may_start_the_next_job(qtbot):
    owner = Owner()
    results: list[object] = []

    def again(result: object) -> None:
        results.append(result)
        if len(results) < 3:
            owner.slot.start(Job("count", counting_job))

    owner.slot._on_done = again
    owner.slot.start(Job("count", counting_job))
    qtbot.waitUntil(lambda: len(results) == 3, timeout=10_000)
    assert results == ["counted"] * 3


def test_the_owner_destroyed_mid_job_cancels_it_and_hears_nothing(qtbot):
    owner = Owner()
    heard = owner.heard
    handle = owner.slot.start(Job("wait", waiting_job))
    qtbot.waitUntil(lambda: heard == [("progress", 0.0)], timeout=10_000)
    delete(owner)  # the C++ object goes now, as when a dialog closes with WA_DeleteOnClose
    assert handle.token.cancelled
    qtbot.waitUntil(lambda: handle.done, timeout=10_000)  # it ended: cancelled, undelivered
    assert heard == [("progress", 0.0)]
    qtbot.waitUntil(lambda: not workers._active, timeout=10_000)  # released afterwards


def test_a_dropped_slot_still_releases_its_job(qtbot):
    owner = QObject()
    results: list[object] = []
    TaskSlot(owner, on_done=results.append).start(Job("count", counting_job))
    qtbot.waitUntil(lambda: results == ["counted"], timeout=10_000)
    qtbot.waitUntil(lambda: not workers._active, timeout=10_000)


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
