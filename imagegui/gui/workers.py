"""Runs core jobs on the global QThreadPool and reports back to the GUI thread through signals.

The core's jobs (``imagegui.core.jobs.Job``) know nothing of Qt: a callable taking a progress
callback and a cancel token. This adapter is the only place they meet threads. The signals live on
a separate ``QObject`` created in the GUI thread, so emitting from the pool thread queues the call
to slots in the GUI thread - a worker never touches a widget. Progress is throttled at the source
(qemu-img reports hundreds of steps; a progress bar needs ~20 a second). ``JobHandle.cancel()`` is
called from the GUI thread and only sets the token; the token's callbacks stop qemu-img at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Signal, Slot

from imagegui.core.jobs import CancelledError, CancelToken, Job, Throttle

log = logging.getLogger(__name__)

#: Minimum seconds between two progress signals.
PROGRESS_INTERVAL = 0.05


class WorkerSignals(QObject):
    """Exactly one of ``finished``, ``failed``, ``cancelled`` is emitted, once, last."""

    #: Fraction done, 0.0 .. 1.0.
    progress = Signal(float)
    #: The job's return value (an ``OpResult`` for operations).
    finished = Signal(object)
    #: The exception; ``str(exc)`` is the message for the user (``GuardRefused``, ``QemuImgError``).
    failed = Signal(object)
    #: What state the images were left in (the ``CancelledError`` message).
    cancelled = Signal(str)


class JobRunnable(QRunnable):
    """The QRunnable the pool executes; auto-deleted by the pool after ``run``."""

    def __init__(self, job: Job[Any], signals: WorkerSignals, token: CancelToken, interval: float):
        super().__init__()
        self._job = job
        self._signals = signals
        self._token = token
        self._interval = interval

    def run(self) -> None:
        signals = self._signals
        progress = Throttle(signals.progress.emit, self._interval)
        try:
            result = self._job.run(progress, self._token)
        except CancelledError as exc:
            log.warning("%s cancelled: %s", self._job.title, exc)
            signals.cancelled.emit(str(exc))
        except Exception as exc:  # noqa: BLE001 - every failure must reach the GUI, not the pool
            log.error("%s failed", self._job.title, exc_info=exc)
            signals.failed.emit(exc)
        else:
            signals.finished.emit(result)


class JobHandle(QObject):
    """What the GUI keeps for a job: its ``signals`` and ``cancel()``.

    Lives in the GUI thread; connect to ``signals`` before ``start()`` (a queued signal only
    reaches the slots connected when it was emitted).
    """

    def __init__(self, job: Job[Any], parent: QObject | None = None):
        super().__init__(parent)
        self.job = job
        self.signals = WorkerSignals(self)
        self.token = CancelToken()
        self.done = False
        self.started = False

    @property
    def title(self) -> str:
        return self.job.title

    def start(self, pool: QThreadPool | None = None, interval: float = PROGRESS_INTERVAL) -> None:
        if self.started:
            raise RuntimeError("a job handle starts once")
        self.started = True
        _active.add(self)
        # Connected last, so it runs after the caller's slots for the same signal.
        for sig in (self.signals.finished, self.signals.failed, self.signals.cancelled):
            sig.connect(self._on_done)
        runnable = JobRunnable(self.job, self.signals, self.token, interval)
        (pool or QThreadPool.globalInstance()).start(runnable)

    def cancel(self) -> None:
        """Asks the job to stop; ``cancelled`` (or ``finished``, if it was already done) follows."""
        self.token.cancel()

    @Slot()
    def _on_done(self, *_: object) -> None:
        self.done = True
        # Released on the next turn of the event loop, not while its own signal is delivered.
        QTimer.singleShot(0, lambda: _active.discard(self))


#: Handles of running jobs: keeps their signal objects alive until the last signal is delivered,
#: even if the caller dropped its reference.
_active: set[JobHandle] = set()


def start_job(
    job: Job[Any],
    *,
    progress: Callable[[float], object] | None = None,
    finished: Callable[[object], object] | None = None,
    failed: Callable[[object], object] | None = None,
    cancelled: Callable[[str], object] | None = None,
    pool: QThreadPool | None = None,
    parent: QObject | None = None,
) -> JobHandle:
    """Connects the given slots, then starts ``job`` on the pool (the global one by default).
    Call from the GUI thread; the slots are called there."""
    handle = JobHandle(job, parent)
    for signal, slot in (
        (handle.signals.progress, progress),
        (handle.signals.finished, finished),
        (handle.signals.failed, failed),
        (handle.signals.cancelled, cancelled),
    ):
        if slot is not None:
            signal.connect(slot)
    handle.start(pool)
    return handle
