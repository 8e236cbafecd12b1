"""Running operations (progress, elapsed time, Cancel) and running VMs (status, Stop).

Every operation the window starts goes through :meth:`JobsPanel.start`, which runs it in a task
slot of its own (operations on different images run side by side) and keeps a row for it: the
single place that knows what is running, so the window can refuse to close while an image is
half-written and the benchmark can wait for a flatten. The newest row
is on top and scrolled to, so a running operation is never below a pile of finished ones; the
status bar's job indicator (``status.JobIndicator``) shows the newest running one as well.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from imagegui.core.jobs import Job, Outcome
from imagegui.gui import resources
from imagegui.gui.workers import TaskSlot

#: What ``JobRecord.state`` says while the job runs (then its ``Outcome``).
RUNNING = "running"


def format_elapsed(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}:{seconds:02d}"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}"


@dataclass
class JobRecord:
    title: str
    slot: TaskSlot
    row: JobRow
    started: float = field(default_factory=time.monotonic)
    #: ``RUNNING``, then how it ended.
    state: str = RUNNING
    ended: float | None = None
    #: The last progress reported (0..1), None while the job has said nothing yet.
    fraction: float | None = None


class JobRow(QFrame):
    """Title, state, a progress bar, elapsed time and a Cancel button for one job."""

    def __init__(self, title: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("jobRow")
        self.title = QLabel(title)
        self.title.setObjectName("jobTitle")
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.title.setToolTip(title)
        self.state = QLabel("running")
        self.state.setObjectName("jobState")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(True)
        self.progress.setFormat("%p %")
        self.elapsed = QLabel("0 s")
        self.elapsed.setMinimumWidth(48)
        self.elapsed.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.cancel = QToolButton()
        self.cancel.setIcon(resources.icon("cancel"))
        self.cancel.setToolTip("Cancel this operation (it stops at once; nothing half-done stays)")
        self.cancel.setAccessibleName(f"Cancel {title}")
        self.progress.setAccessibleName(f"Progress of {title}")
        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.state)
        bottom = QHBoxLayout()
        bottom.addWidget(self.progress, 1)
        bottom.addWidget(self.elapsed)
        bottom.addWidget(self.cancel)
        box = QVBoxLayout(self)
        box.setContentsMargins(8, 6, 8, 6)
        box.setSpacing(3)
        box.addLayout(top)
        box.addLayout(bottom)

    def set_state(self, state: Outcome, message: str = "") -> None:
        self.state.setText(state)
        self.state.setProperty("state", state)
        self.state.style().unpolish(self.state)
        self.state.style().polish(self.state)
        self.cancel.setEnabled(False)
        if message:
            self.setToolTip(message)
        if state == Outcome.DONE:
            self.progress.setValue(self.progress.maximum())
        else:
            self.progress.setEnabled(False)  # greyed: it stopped where it shows


class JobsPanel(QWidget):
    #: (its ``JobRecord``, result / exception / message) after a job ends, in the GUI thread.
    jobFinished = Signal(object, object)
    jobFailed = Signal(object, object)
    jobCancelled = Signal(object, str)
    #: Number of running jobs changed.
    activeChanged = Signal(int)
    #: A running job reported progress: (its ``JobRecord``, fraction done).
    jobProgress = Signal(object, float)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.records: list[JobRecord] = []
        self._list = QVBoxLayout()
        self._list.setContentsMargins(0, 0, 0, 0)
        self._list.setSpacing(0)
        self._list.addStretch(1)
        self._empty = QLabel(
            "No operations yet. Clone, rebase, commit or flatten an image and "
            "its progress shows here."
        )
        self._empty.setObjectName("hint")
        self._empty.setWordWrap(True)
        self._empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._list.insertWidget(0, self._empty)
        inner = QWidget()
        inner.setLayout(self._list)
        scroll = self._scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(inner)
        self.clear_button = QPushButton("Clear finished")
        self.clear_button.setToolTip(
            "Remove finished, failed and cancelled operations from the list"
        )
        self.clear_button.clicked.connect(self.clear_finished)
        self.clear_button.setEnabled(False)
        bar = QHBoxLayout()
        bar.addStretch(1)
        bar.addWidget(self.clear_button)
        box = QVBoxLayout(self)
        box.setContentsMargins(4, 4, 4, 4)
        box.addWidget(scroll, 1)
        box.addLayout(bar)
        self._ticker = QTimer(self)
        self._ticker.setInterval(500)
        self._ticker.timeout.connect(self._on_tick)

    # -- starting

    def start(
        self,
        job: Job,
        on_done: Callable[[Outcome, object], None] | None = None,
        on_progress: Callable[[float], None] | None = None,
    ) -> JobRecord:
        """Runs ``job`` in a slot of its own with a row of its own; ``on_done(outcome, payload)``
        runs in the GUI thread once it ends, ``on_progress(fraction)`` while it runs."""
        row = JobRow(job.title)
        record: JobRecord

        def progress(fraction: float) -> None:
            self._on_progress(record, fraction)
            if on_progress is not None:
                on_progress(fraction)

        slot = TaskSlot(
            self,
            on_done=lambda r: self._end(record, Outcome.DONE, r, on_done),
            on_failed=lambda e: self._end(record, Outcome.FAILED, e, on_done),
            on_cancelled=lambda m: self._end(record, Outcome.CANCELLED, m, on_done),
            on_progress=progress,
        )
        record = JobRecord(job.title, slot, row)
        self.records.append(record)
        row.cancel.clicked.connect(lambda: self.cancel(record))
        self._empty.hide()
        self._list.insertWidget(0, row)  # newest first: what runs now is on top
        self._scroll.verticalScrollBar().setValue(0)
        slot.start(job)
        self._ticker.start()
        self.activeChanged.emit(self.active_count())
        return record

    def newest_running(self) -> JobRecord | None:
        return next((r for r in reversed(self.records) if r.state == RUNNING), None)

    def _on_progress(self, record: JobRecord, fraction: float) -> None:
        record.fraction = fraction
        record.row.progress.setValue(int(fraction * 1000))
        self.jobProgress.emit(record, fraction)

    def active_count(self) -> int:
        return sum(1 for r in self.records if r.state == RUNNING)

    def cancel_all(self) -> None:
        for r in self.records:
            if r.state == RUNNING:
                r.slot.cancel()

    def cancel(self, record: JobRecord) -> None:
        """Cancels one job (its row's Cancel, or the status bar's); ``jobCancelled`` follows."""
        if record.state != RUNNING:
            return
        record.row.state.setText("cancelling…")
        record.row.cancel.setEnabled(False)
        record.slot.cancel()

    def _end(self, record: JobRecord, state: Outcome, payload: object, on_done) -> None:
        record.state = state
        record.ended = time.monotonic()
        message = payload if isinstance(payload, str) else getattr(payload, "message", str(payload))
        record.row.set_state(state, str(message))
        record.row.elapsed.setText(format_elapsed(record.ended - record.started))
        self.clear_button.setEnabled(True)
        if not self.active_count():
            self._ticker.stop()
        self.activeChanged.emit(self.active_count())
        if state == Outcome.DONE:
            self.jobFinished.emit(record, payload)
        elif state == Outcome.FAILED:
            self.jobFailed.emit(record, payload)
        else:
            self.jobCancelled.emit(record, str(payload))
        if on_done is not None:
            on_done(state, payload)

    def _on_tick(self) -> None:
        now = time.monotonic()
        for r in self.records:
            if r.state == RUNNING:
                r.row.elapsed.setText(format_elapsed(now - r.started))

    def clear_finished(self) -> None:
        keep = []
        for r in self.records:
            if r.state == RUNNING:
                keep.append(r)
            else:
                r.row.setParent(None)
                r.row.deleteLater()
                r.slot.deleteLater()
        self.records = keep
        self.clear_button.setEnabled(False)
        self._empty.setVisible(not keep)
