"""Virtual machines started from the window: status, PID, and a Stop button.

``RunningVM.stop()`` waits for the guest to power down (up to a minute), so it runs as a job on the
worker pool like every other operation; whether qemu is still alive is a non-blocking ``poll()``,
checked once a second. When a VM ends, ``vmsChanged`` lets the window rescan so the in-use badges
go away.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

from imagegui.core.jobs import Job
from imagegui.gui import resources
from imagegui.gui.jobs_panel import JobsPanel
from imagegui.gui.workers import start_job

#: Seconds a guest gets to power down (ACPI) before qemu is told to quit.
STOP_TIMEOUT = 30.0


@dataclass
class VmRecord:
    vm: object  # core.launch.RunningVM
    row: QFrame
    status: QLabel
    stop: QToolButton
    state: str = "running"


class VmsPanel(QWidget):
    vmsChanged = Signal()

    def __init__(self, jobs: JobsPanel, parent: QWidget | None = None):
        super().__init__(parent)
        self.jobs = jobs
        self.records: list[VmRecord] = []
        self._box = QVBoxLayout(self)
        self._box.setContentsMargins(4, 4, 4, 4)
        self._empty = QLabel("No virtual machines started from imagegui.")
        self._empty.setObjectName("hint")
        self._empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._box.addWidget(self._empty)
        self._box.addStretch(1)
        self._poll = QTimer(self)
        self._poll.setInterval(1000)
        self._poll.timeout.connect(self._on_poll)

    def add(self, vm) -> None:
        row = QFrame()
        row.setObjectName("jobRow")
        name = QLabel(f"<b>{os.path.basename(vm.image)}</b> &nbsp; PID {vm.pid}")
        name.setToolTip(vm.image)
        status = QLabel("running")
        status.setObjectName("jobState")
        stop = QToolButton()
        stop.setIcon(resources.icon("stop"))
        stop.setText("Stop")
        stop.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        stop.setToolTip(
            f"Power the guest down (ACPI); qemu is told to quit after {STOP_TIMEOUT:.0f} s"
        )
        line = QHBoxLayout(row)
        line.setContentsMargins(8, 6, 8, 6)
        line.addWidget(QLabel(pixmap=resources.pixmap("vm", 20)))
        line.addWidget(name, 1)
        line.addWidget(status)
        line.addWidget(stop)
        record = VmRecord(vm, row, status, stop)
        stop.clicked.connect(lambda: self.stop(record))
        self.records.append(record)
        self._empty.hide()
        self._box.insertWidget(self._box.count() - 1, row)
        self._poll.start()
        self.vmsChanged.emit()

    def running(self) -> list[VmRecord]:
        return [r for r in self.records if r.state in ("running", "stopping")]

    def stop(self, record: VmRecord) -> None:
        if record.state != "running":
            return
        record.state = "stopping"
        record.status.setText("powering down…")
        record.stop.setEnabled(False)
        vm = record.vm
        job = Job(
            f"Stop VM {os.path.basename(vm.image)}: powering down (Cancel forces it off)",
            lambda p, c: vm.stop(STOP_TIMEOUT, progress=p, cancel=c),
        )
        self.jobs.start(job, on_done=lambda state, rc: self._ended(record, rc))

    def _on_poll(self) -> None:
        for r in self.records:
            if r.state == "running" and not r.vm.running():
                # The guest powered off by itself: drop the QMP connection off the GUI thread.
                r.state = "closing"
                start_job(
                    Job("close QMP", lambda p, c, vm=r.vm: vm.stop(0)),
                    finished=lambda rc, rec=r: self._ended(rec, rc),
                    failed=lambda exc, rec=r: self._ended(rec, None),
                )
        if not self.running() and not any(r.state == "closing" for r in self.records):
            self._poll.stop()

    def _ended(self, record: VmRecord, rc: object) -> None:
        if record.state == "stopped":
            return
        record.state = "stopped"
        record.status.setText(f"stopped (exit {rc})" if isinstance(rc, int) else "stopped")
        record.stop.setEnabled(False)
        self.vmsChanged.emit()
