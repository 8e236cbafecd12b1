"""Runs core jobs on the global QThreadPool; :class:`TaskSlot` is the one way the window does.

The core's jobs (``imagegui.core.jobs.Job``) know nothing of Qt: a callable taking a progress
callback and a cancel token. This adapter is the only place they meet threads.

A :class:`TaskSlot` belongs to one owner (a panel, a dialog, the session) and runs one job at a
time for it, as Orange3's ``ConcurrentMixin`` does: starting a job cancels the previous one's
token and disconnects it, so the owner's ``on_done`` / ``on_failed`` / ``on_cancelled`` /
``on_progress`` / ``on_note`` only ever hear from its current job - a stale scan, plan or scan
count cannot arrive, and the owner needs no generation counter or handle check of its own. Work
that must run side by side (two operations on different images) uses one slot each. When the
owner is destroyed mid-job, the job is cancelled and nothing is delivered to it.

Signals cross from the pool thread in one hop: the runnable emits ``_posted`` on a
:class:`WorkerSignals` living in the GUI thread (a queued call), and that object re-emits the
public signals there, synchronously. Disconnecting a public signal therefore also drops whatever
the pool thread had already queued. A worker never touches a widget; progress is throttled at the
source (qemu-img reports hundreds of steps; a progress bar needs ~20 a second); ``cancel()`` only
sets the token, whose callbacks stop qemu-img at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Signal, Slot

from imagegui.core.jobs import CancelledError, CancelToken, Job, Outcome, Throttle

log = logging.getLogger(__name__)

#: Minimum seconds between two progress signals.
PROGRESS_INTERVAL = 0.05

_PROGRESS = "progress"
_NOTE = "note"

#: Posts a job's own news (a scan's file count, its stage) to its slot's owner, from any thread.
NoteFn = Callable[[object], None]


class WorkerSignals(QObject):
    """Exactly one of ``finished``, ``failed``, ``cancelled`` is emitted, once, last; all of them
    in the thread this object lives in (the GUI thread)."""

    #: Fraction done, 0.0 .. 1.0.
    progress = Signal(float)
    #: Whatever else the job reports on its way (``JobHandle.note``).
    note = Signal(object)
    #: The job's return value (an ``OpResult`` for operations).
    finished = Signal(object)
    #: The exception; ``str(exc)`` is the message for the user (``GuardRefused``, ``QemuImgError``).
    failed = Signal(object)
    #: What state the images were left in (the ``CancelledError`` message).
    cancelled = Signal(str)
    #: (kind, payload) from the pool thread; queued to ``_deliver`` in this object's thread.
    _posted = Signal(str, object)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._posted.connect(self._deliver)

    @Slot(str, object)
    def _deliver(self, kind: str, payload: object) -> None:
        if kind == _PROGRESS:
            self.progress.emit(payload)
        elif kind == _NOTE:
            self.note.emit(payload)
        elif kind == Outcome.DONE:
            self.finished.emit(payload)
        elif kind == Outcome.FAILED:
            self.failed.emit(payload)
        else:
            self.cancelled.emit(payload)


class JobRunnable(QRunnable):
    """The QRunnable the pool executes; auto-deleted by the pool after ``run``."""

    def __init__(self, job: Job[Any], signals: WorkerSignals, token: CancelToken, interval: float):
        super().__init__()
        self._job = job
        self._signals = signals
        self._token = token
        self._interval = interval

    def run(self) -> None:
        post = self._signals._posted.emit
        progress = Throttle(lambda fraction: post(_PROGRESS, fraction), self._interval)
        try:
            result = self._job.run(progress, self._token)
        except CancelledError as exc:
            log.warning("%s cancelled: %s", self._job.title, exc)
            post(Outcome.CANCELLED.value, str(exc))
        except Exception as exc:  # noqa: BLE001 - every failure must reach the GUI, not the pool
            log.error("%s failed", self._job.title, exc_info=exc)
            post(Outcome.FAILED.value, exc)
        else:
            post(Outcome.DONE.value, result)


class JobHandle(QObject):
    """One run of one job: its ``signals``, its ``token`` and ``cancel()``. A :class:`TaskSlot`
    makes these; tests of the thread hop use them directly.

    Lives in the GUI thread; connect to ``signals`` before ``start()``.
    """

    def __init__(self, job: Job[Any], parent: QObject | None = None):
        super().__init__(parent)
        self.job = job
        self.signals = WorkerSignals(self)
        self.token = CancelToken()
        self.done = False
        self.started = False

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

    def note(self, news: object) -> None:
        """Called by the job, in its thread: ``signals.note`` carries ``news`` to the GUI thread
        by the same hop as the result, so a superseded job's news is dropped with it."""
        self.signals._posted.emit(_NOTE, news)

    @Slot()
    def _on_done(self, *_: object) -> None:
        self.done = True
        # Released on the next turn of the event loop, not while its own signal is delivered.
        QTimer.singleShot(0, lambda: _active.discard(self))


#: Handles of running jobs: keeps their signal objects alive until the last signal is delivered,
#: even after their slot or its owner is gone.
_active: set[JobHandle] = set()


class TaskSlot(QObject):
    """Runs one job at a time for its owner (its Qt parent) and tells it how the job went.

    ``start(job)`` supersedes the job still running: its token is cancelled and its signals are
    disconnected before the new one starts, so only the current job's outcome reaches the owner.
    A job made by ``start_noting`` may also post news on its way (``on_note``).
    ``cancel()`` asks the current job to stop and still reports how it ended (``on_cancelled``
    with what state the images are in, or ``on_done`` when it finished first); ``discard()``
    cancels it and reports nothing more. The slot is idle (``running`` is False) before its
    callback runs, so a callback may start the next job.
    """

    def __init__(
        self,
        owner: QObject,
        *,
        on_done: Callable[[Any], object] | None = None,
        on_failed: Callable[[BaseException], object] | None = None,
        on_cancelled: Callable[[str], object] | None = None,
        on_progress: Callable[[float], object] | None = None,
        on_note: Callable[[object], object] | None = None,
        pool: QThreadPool | None = None,
        interval: float = PROGRESS_INTERVAL,
    ):
        super().__init__(owner)
        self._on_done = on_done
        self._on_failed = on_failed
        self._on_cancelled = on_cancelled
        self._on_progress = on_progress
        self._on_note = on_note
        self._pool = pool
        self._interval = interval
        self._handle: JobHandle | None = None
        # The destructor cannot reach ``self``: a plain box tells it which job to abandon.
        box: list[JobHandle | None] = [None]
        self._box = box
        self.destroyed.connect(lambda *_: _abandon(box))

    @property
    def running(self) -> bool:
        return self._handle is not None

    @property
    def handle(self) -> JobHandle | None:
        """The current job's handle (None when idle)."""
        return self._handle

    def start(self, job: Job[Any]) -> JobHandle:
        """Supersedes the current job (cancelled, disconnected), then runs ``job`` on the pool."""
        return self.start_noting(lambda _note: job)

    def start_noting(self, make: Callable[[NoteFn], Job[Any]]) -> JobHandle:
        """Like ``start``, for a job that posts news: ``make(note)`` returns the job, and what
        the job passes to ``note`` (from its thread) reaches ``on_note`` while it is current."""
        self.discard()
        made: list[JobHandle] = []  # the job runs only once its handle exists
        job = make(lambda news: made[0].note(news))
        handle = JobHandle(job)  # no parent: ``_active`` keeps it until its last signal
        made.append(handle)
        signals = handle.signals
        signals.progress.connect(self._relay_progress)
        signals.note.connect(self._relay_note)
        signals.finished.connect(self._relay_finished)
        signals.failed.connect(self._relay_failed)
        signals.cancelled.connect(self._relay_cancelled)
        self._handle = self._box[0] = handle
        handle.start(self._pool, self._interval)
        return handle

    def cancel(self) -> None:
        """Asks the current job to stop; how it ended is still reported."""
        if self._handle is not None:
            self._handle.cancel()

    def discard(self) -> None:
        """Cancels the current job and disconnects it: nothing more is reported about it."""
        handle = self._release()
        if handle is not None:
            handle.cancel()

    def _release(self) -> JobHandle | None:
        handle, self._handle, self._box[0] = self._handle, None, None
        if handle is not None:
            _disconnect(handle, self)
        return handle

    @Slot(float)
    def _relay_progress(self, fraction: float) -> None:
        if self._on_progress is not None:
            self._on_progress(fraction)

    @Slot(object)
    def _relay_note(self, news: object) -> None:
        if self._on_note is not None:
            self._on_note(news)

    @Slot(object)
    def _relay_finished(self, result: object) -> None:
        self._release()
        if self._on_done is not None:
            self._on_done(result)

    @Slot(object)
    def _relay_failed(self, exc: object) -> None:
        self._release()
        if self._on_failed is not None:
            self._on_failed(exc)  # type: ignore[arg-type]

    @Slot(str)
    def _relay_cancelled(self, message: str) -> None:
        self._release()
        if self._on_cancelled is not None:
            self._on_cancelled(message)


def _disconnect(handle: JobHandle, slot: TaskSlot) -> None:
    signals = handle.signals
    signals.progress.disconnect(slot._relay_progress)
    signals.note.disconnect(slot._relay_note)
    signals.finished.disconnect(slot._relay_finished)
    signals.failed.disconnect(slot._relay_failed)
    signals.cancelled.disconnect(slot._relay_cancelled)


def _abandon(box: list[JobHandle | None]) -> None:
    """The slot (its owner) is being destroyed: stop its job. Qt drops the connections to the
    dead slot itself, so nothing reaches the owner."""
    handle, box[0] = box[0], None
    if handle is not None:
        handle.cancel()
