"""The status bar: scan progress while scanning, then the directory's summary and the zoom; while
an operation runs, its name, progress and a Cancel button (the Operations panel may be hidden)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QSizePolicy,
    QStatusBar,
    QToolButton,
    QWidget,
)

from imagegui.core.chains.nodestate import short_name
from imagegui.core.read.watch import WatchStatus
from imagegui.core.units import counted, display_path
from imagegui.gui import resources
from imagegui.gui.panels.jobs import JobRecord, JobsPanel
from imagegui.gui.snapshot import Snapshot

#: How a user raises the kernel's inotify limit for good (a sysctl drop-in, then reloaded).
RAISE_LIMIT = (
    "An administrator can raise the limit: put the line fs.inotify.max_user_watches = 524288 "
    "in a file in /etc/sysctl.d/ and run sysctl --system (each watched folder costs the "
    "system about 1 KB of memory)."
)


def watch_text(status: WatchStatus | None, auto: bool) -> tuple[str, str]:
    """The watch label's text and tooltip (both empty: nothing to say)."""
    if status is None:
        return "", ""
    if not auto:
        return "Live updates off", (
            "Changes to the folder show after File ▸ Rescan: automatic rescans are "
            "turned off in Preferences."
        )
    if status.stopped is not None:
        return "Live updates stopped", f"Live updates stopped: {status.stopped}."
    if status.failure is not None:
        return "Live updates off", (
            f"Changes to the folder cannot be watched: {status.failure}. It is rescanned "
            "every few minutes instead; Rescan shows changes at once."
        )
    if status.limited:
        limit = f"only {status.limit:,}" if status.limit is not None else "no more"
        total = status.folders + status.unwatched
        return f"Watching {status.folders:,} of {total:,} folders", (
            f"Live updates are partial: the system allows {limit} folder watches per user "
            f"(fs.inotify.max_user_watches), so {status.unwatched:,} folders are not watched. "
            f"The folder is rescanned every few minutes instead; Rescan shows changes at once. "
            f"{RAISE_LIMIT}"
        )
    elsewhere = ""
    if status.outside:
        elsewhere = f" So do changes to backing files in {counted(status.outside, 'other folder')}."
    return f"Watching {counted(status.folders, 'folder')}", (
        "Live updates: images that are added, removed or changed in these folders show up "
        f"by themselves, and a VM starting or stopping on one within seconds.{elsewhere}"
    )


#: The job indicator's name is elided in the middle past this width (pixels).
LABEL_WIDTH = 260


class JobIndicator(QWidget):
    """The newest running operation: its name, a small progress bar and Cancel; hidden when
    nothing runs. Busy (no figure) until the job reports progress: a check or a launch never do."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("jobIndicator")
        self.jobs: JobsPanel | None = None
        self.record: JobRecord | None = None
        self.label = QLabel()
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setMaximumWidth(LABEL_WIDTH)
        self.label.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Preferred)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(120)
        self.progress.setMaximumHeight(14)
        self.progress.setTextVisible(False)
        self.progress.setAccessibleName("Progress of the running operation")
        self.cancel = QToolButton()
        self.cancel.setIcon(resources.icon("cancel"))
        self.cancel.setText("Cancel")
        self.cancel.setAccessibleName("Cancel the running operation")
        self.cancel.setAutoRaise(True)
        self.cancel.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.cancel.clicked.connect(self._on_cancel_clicked)
        box = QHBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(4)
        box.addWidget(self.label)
        box.addWidget(self.progress)
        box.addWidget(self.cancel)
        self.hide()

    def watch(self, jobs: JobsPanel) -> None:
        self.jobs = jobs
        jobs.activeChanged.connect(lambda _n: self.refresh())
        jobs.jobProgress.connect(self._on_progress)
        self.refresh()

    def refresh(self) -> None:
        record = self.jobs.newest_running() if self.jobs is not None else None
        self.record = record
        if record is None:
            self.hide()
            return
        title = display_path(record.title)
        running = self.jobs.active_count() if self.jobs is not None else 1
        more = f" (+{running - 1} more)" if running > 1 else ""
        metrics = self.label.fontMetrics()
        self.label.setText(
            metrics.elidedText(title + more, Qt.TextElideMode.ElideMiddle, LABEL_WIDTH)
        )
        self.label.setToolTip(title)
        self.cancel.setToolTip(f"Cancel {title} (nothing half-done stays)")
        self.cancel.setEnabled(True)
        self._show_fraction(record.fraction)
        self.show()

    def _show_fraction(self, fraction: float | None) -> None:
        if fraction is None:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(fraction * 1000))

    def _on_progress(self, record: JobRecord, fraction: float) -> None:
        if record is self.record:
            self._show_fraction(fraction)

    def _on_cancel_clicked(self) -> None:
        if self.jobs is not None and self.record is not None:
            self.cancel.setEnabled(False)
            self.jobs.cancel(self.record)


class StatusBar(QStatusBar):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)  # busy: a scan does not know its total in advance
        self.progress.setMaximumWidth(140)
        self.progress.setTextVisible(False)
        self.progress.setAccessibleName("Scanning")
        self.progress.hide()
        self.scan_label = QLabel()
        self.scan_label.hide()
        #: Stops the scan (the window gives it its Stop Scanning action); shown while scanning.
        self.stop = QToolButton()
        self.stop.setObjectName("stopScan")
        self.stop.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.stop.setAutoRaise(True)
        self.stop.hide()
        #: The selected image's state, and why actions are unavailable for it.
        self.selection = QLabel()
        self.selection.setObjectName("selectionStatus")
        self.selection.setTextFormat(Qt.TextFormat.PlainText)
        self.selection.setMinimumWidth(40)
        self.job = JobIndicator()
        self.summary = QLabel()
        #: Whether the open folder's changes show up by themselves (``set_watch``).
        self.watching = QLabel()
        self.watching.setObjectName("watchStatus")
        self.watching.setTextFormat(Qt.TextFormat.PlainText)
        self.watching.hide()
        self.zoom = QLabel()
        self.zoom.setToolTip(
            "Zoom: Ctrl+wheel (the wheel scrolls; Preferences can swap them), Ctrl+0 fits all"
        )
        #: Undo beside a message that says what was just removed ("Moved … to the Trash").
        self.undo = QToolButton()
        self.undo.setObjectName("statusUndo")
        self.undo.setText("Undo")
        self.undo.setIcon(resources.icon("edit-undo"))
        self.undo.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.undo.setAutoRaise(True)
        self.undo.setAccessibleName("Undo: restore what was just moved to the Trash")
        self.undo.hide()
        self._undo_action: QAction | None = None
        self._undo_text = ""
        self.undo.clicked.connect(self._on_undo_clicked)
        self.messageChanged.connect(self._on_message_changed)
        self.addWidget(self.progress)
        self.addWidget(self.scan_label)
        self.addWidget(self.stop)
        self.addWidget(self.selection, 1)
        self.addPermanentWidget(self.undo)
        self.addPermanentWidget(self.job)
        self.addPermanentWidget(self.watching)
        self.addPermanentWidget(self.summary)
        self.addPermanentWidget(self.zoom)

    def scan_started(self, target: str) -> None:
        self.progress.show()
        self.scan_label.setText("Scanning…")
        self.scan_label.setToolTip(target)
        self.scan_label.show()
        self.stop.setVisible(self.stop.defaultAction() is not None)

    def set_files(self, count: int) -> None:
        self.scan_label.setText(f"Scanning… {count:,} files")

    def set_stage(self, stage: str) -> None:
        self.scan_label.setText(f"{stage}…")

    def scan_ended(self) -> None:
        self.progress.hide()
        self.scan_label.hide()
        self.stop.hide()

    def set_summary(self, snapshot: Snapshot) -> None:
        totals = snapshot.totals  # added up on the scan's worker
        errors, unusable = totals.errors, totals.unusable
        warnings = len(snapshot.graph.problems) - errors
        seconds = sum(snapshot.timings.values())
        self.summary.setText(
            f"{counted(snapshot.image_count, 'image')} · {counted(errors, 'error')} · "
            f"{counted(warnings, 'warning')} · {unusable:,} unusable"
        )
        self.summary.setToolTip(
            f"{snapshot.graph.scan.files_seen:,} files looked at in {seconds:.2f} s "
            f"(scan {snapshot.timings.get('scan', 0):.2f} s)"
        )

    def set_selection(self, snapshot: Snapshot | None, node: str | None, unavailable: list[str]):
        """The selected image's state in one line; when qemu cannot open its chain, why, and
        which actions that rules out."""
        if snapshot is None or node is None or node not in snapshot.status:
            self.selection.clear()
            self.selection.setToolTip("")
            return
        status = snapshot.status[node]
        name = display_path(short_name(node))
        reason = status.chain_reason(node)
        if reason is None:
            text = f"{name}: {status.label()}"
        else:
            text = f"{name}: qemu cannot open it — {reason}"
            if unavailable:
                text += f". Unavailable: {', '.join(unavailable)}"
        self.selection.setText(text)
        self.selection.setToolTip(text)

    def say(self, text: str, undo: QAction | None = None, timeout: int = 15_000) -> None:
        """Shows ``text``; with ``undo``, an Undo button beside it for as long as it shows, which
        triggers that action (its tooltip names what it does)."""
        old = self._undo_action
        if old is not None and old is not undo:
            old.changed.disconnect(self._on_undo_changed)
        if undo is not None and undo is not old:
            undo.changed.connect(self._on_undo_changed)
        self._undo_action, self._undo_text = undo, text if undo is not None else ""
        self.showMessage(text, timeout)
        self._on_message_changed(self.currentMessage())

    def _on_message_changed(self, text: str) -> None:
        action = self._undo_action
        shown = action is not None and bool(text) and text == self._undo_text
        if shown and action is not None:
            self.undo.setToolTip(action.toolTip())
            self.undo.setEnabled(action.isEnabled())
        elif action is not None:
            action.changed.disconnect(self._on_undo_changed)
            self._undo_action, self._undo_text = None, ""
        self.undo.setVisible(shown)

    def _on_undo_changed(self) -> None:
        """The journal was read again: Undo now names (and is enabled for) the removal."""
        if self._undo_action is not None:
            self._on_message_changed(self.currentMessage())

    def _on_undo_clicked(self) -> None:
        action = self._undo_action
        self.clearMessage()
        if action is not None and action.isEnabled():
            action.trigger()

    def set_watch(self, status: WatchStatus | None, auto: bool) -> None:
        """Says whether the folder's changes show up by themselves: how many folders are
        watched, or why not all (the system's limit, with how to raise it), or that automatic
        rescans are off. Hidden for another host's images (nothing here to watch)."""
        text, tip = watch_text(status, auto)
        self.watching.setText(text)
        self.watching.setToolTip(tip)
        self.watching.setAccessibleName(text)
        self.watching.setVisible(bool(text))

    def set_zoom(self, scale: float) -> None:
        self.zoom.setText(f"{scale * 100:.0f} %")
