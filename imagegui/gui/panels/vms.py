"""Virtual machines: the ones started here, and the ones found running from an earlier session.

Each row has Stop (the guest is asked to power down; the countdown to "then qemu quits" is shown
in the row) and Force off, which is always available: while a Stop waits it ends the wait at once
(a guest without ACPI, SeaBIOS, a hung OS never obeys), otherwise it turns the VM off directly.

VMs kept running when the window closed, or left behind by a crash, are found again at start
(``core.qemu.vms.find_vms``: their control sockets in our private runtime directory, their command
lines) on a worker, and listed here like the others. ``RunningVM`` (started here) and ``FoundVM``
(found) are both a ``core.qemu.vms.VmHandle``: ``stop`` / ``running`` / ``pid`` / ``image`` /
``name``. Stopping waits, so
it runs as an operation (``JobsPanel.start``); the search and the closing of a VM's control
connection run in task slots of their own; whether a VM is still alive is a cheap non-blocking
check, once a second. When a VM ends, ``vmsChanged`` lets the window rescan so the in-use badges
go away.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from html import escape
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget
from shiboken6 import isValid

from imagegui.core.jobs import Job, Outcome
from imagegui.core.units import display_path
from imagegui.gui import resources
from imagegui.gui.panels.jobs import JobRecord, JobsPanel
from imagegui.gui.workers import TaskSlot

if TYPE_CHECKING:  # core.qemu.vms is imported when VMs are looked for, not with the window
    from imagegui.core.qemu.vms import VmHandle

#: Seconds a guest gets to power down (ACPI) before qemu is told to quit.
STOP_TIMEOUT = 30.0


@dataclass
class VmRecord:
    vm: VmHandle  # a RunningVM (started here) or a FoundVM (found running)
    row: QFrame
    status: QLabel
    stop: QToolButton
    force: QToolButton
    state: str = "running"
    #: Found running at start (not started by this window).
    found: bool = False
    #: The Stop operation while it waits for the guest.
    stopping: JobRecord | None = field(default=None, repr=False)
    #: Where the control connection of a VM that powered off by itself is closed.
    closing: TaskSlot | None = field(default=None, repr=False)


def vm_label(vm: VmHandle) -> str:
    """What a VM is called in the panel and in questions: its name, else its image."""
    name = vm.name or ""
    if name.startswith("imagegui:"):
        name = name[len("imagegui:") :]
    return name or os.path.basename(vm.image) or f"PID {vm.pid}"


class VmsPanel(QWidget):
    vmsChanged = Signal()
    #: A search for VMs of earlier sessions has finished (tests wait for it).
    discovered = Signal(int)

    def __init__(self, jobs: JobsPanel, parent: QWidget | None = None):
        super().__init__(parent)
        self.jobs = jobs
        self.records: list[VmRecord] = []
        self._box = QVBoxLayout(self)
        self._box.setContentsMargins(4, 4, 4, 4)
        self._empty = QLabel("No virtual machines started from imagegui are running.")
        self._empty.setObjectName("hint")
        self._empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._box.addWidget(self._empty)
        self._box.addStretch(1)
        self._poll = QTimer(self)
        self._poll.setInterval(1000)
        self._poll.timeout.connect(self._on_poll)
        self._discovery = TaskSlot(self, on_done=self._on_found, on_failed=self._on_find_failed)

    # -- rows

    def add(self, vm: VmHandle, found: bool = False) -> VmRecord:
        row = QFrame()
        row.setObjectName("jobRow")
        how = "found running, started earlier" if found else "started here"
        name = QLabel(f"<b>{escape(display_path(vm_label(vm)))}</b> &nbsp; PID {vm.pid}")
        name.setToolTip(f"{display_path(vm.image)}\n{how}")
        status = QLabel("running")
        status.setObjectName("jobState")
        stop = self._button("stop", "Stop")
        stop.setToolTip(
            f"Ask the guest to power down; if it has not after {STOP_TIMEOUT:.0f} s, it is "
            "turned off"
        )
        force = self._button("stop", "Force off")
        force.setToolTip("Turn the VM off now, without asking the guest (like pulling the plug)")
        stop.setAccessibleName(f"Stop {vm_label(vm)}")
        force.setAccessibleName(f"Force off {vm_label(vm)}")
        line = QHBoxLayout(row)
        line.setContentsMargins(8, 6, 8, 6)
        line.addWidget(resources.IconLabel("vm", 20))
        line.addWidget(name, 1)
        line.addWidget(status)
        line.addWidget(stop)
        line.addWidget(force)
        record = VmRecord(vm, row, status, stop, force, found=found)
        stop.clicked.connect(lambda: self.stop(record))
        force.clicked.connect(lambda: self.force_off(record))
        self.records.append(record)
        self._empty.hide()
        self._box.insertWidget(self._box.count() - 1, row)
        self._poll.start()
        self.vmsChanged.emit()
        return record

    @staticmethod
    def _button(icon: str, text: str) -> QToolButton:
        b = QToolButton()
        b.setIcon(resources.icon(icon))
        b.setText(text)
        b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        return b

    def running(self) -> list[VmRecord]:
        return [r for r in self.records if r.state in ("running", "stopping")]

    # -- finding VMs of earlier sessions

    def discover(self) -> None:
        """Looks for our VMs still running from before (on a worker: it reads /proc)."""
        from imagegui.core.qemu.vms import find_vms

        self._discovery.start(Job("find running VMs", lambda p, c: find_vms()))

    def _on_find_failed(self, _exc: object) -> None:
        self.discovered.emit(0)

    def _on_found(self, found: object) -> None:
        known = {r.vm.pid for r in self.records if r.state != "stopped"}
        added = 0
        for vm in found:  # type: ignore[attr-defined]
            if vm.pid not in known:
                self.add(vm, found=True)
                added += 1
        self.discovered.emit(added)

    # -- stopping

    def stop(self, record: VmRecord) -> None:
        if record.state != "running":
            return
        record.state = "stopping"
        record.status.setText("powering down…")
        record.stop.setEnabled(False)
        vm = record.vm
        job = Job(
            f"Stop VM {vm_label(vm)}: powering down (Cancel turns it off)",
            lambda p, c: vm.stop(STOP_TIMEOUT, progress=p, cancel=c),
        )
        record.stopping = self.jobs.start(
            job,
            on_done=lambda outcome, rc: self._ended(record, outcome, rc),
            on_progress=lambda f: self._countdown(record, f),
        )

    def _countdown(self, record: VmRecord, fraction: float) -> None:
        if record.state != "stopping" or not isValid(record.status):
            return
        left = max(0.0, STOP_TIMEOUT * (1.0 - fraction))
        record.status.setText(f"powering down… off in {left:.0f} s")

    def force_off(self, record: VmRecord) -> None:
        """Always available: ends a Stop's wait at once, or turns a running VM off."""
        if record.state == "stopping" and record.stopping is not None:
            record.state = "forcing"
            record.status.setText("turning off…")
            record.force.setEnabled(False)
            self.jobs.cancel(record.stopping)  # the stop job quits qemu as soon as it sees this
            return
        if record.state != "running":
            return
        record.state = "forcing"
        record.status.setText("turning off…")
        record.stop.setEnabled(False)
        record.force.setEnabled(False)
        vm = record.vm
        self.jobs.start(
            Job(f"Force off VM {vm_label(vm)}", lambda p, c: vm.stop(0, force=True)),
            on_done=lambda outcome, rc: self._ended(record, outcome, rc),
        )

    def _on_poll(self) -> None:
        for r in self.records:
            if r.state == "running" and not r.vm.running():
                # The guest powered off by itself: drop the QMP connection off the GUI thread.
                r.state = "closing"
                r.closing = TaskSlot(
                    self,
                    on_done=lambda rc, rec=r: self._ended(rec, Outcome.DONE, rc),
                    on_failed=lambda exc, rec=r: self._ended(rec, Outcome.FAILED, exc),
                )
                r.closing.start(Job("close QMP", lambda p, c, vm=r.vm: vm.stop(0)))
        if not self.running() and not any(r.state == "closing" for r in self.records):
            self._poll.stop()

    def _ended(self, record: VmRecord, outcome: Outcome, rc: object) -> None:
        if record.state == "stopped" or not isValid(record.status):  # the window went first
            return
        if outcome == Outcome.FAILED and record.vm.running():
            # The control socket failed (another program talking to the VM?): it still runs.
            record.state = "running"
            record.status.setText(f"still running: {rc}")
            record.stop.setEnabled(True)
            record.force.setEnabled(True)
            return
        record.state = "stopped"
        record.stopping = None
        if record.closing is not None:
            record.closing.deleteLater()
            record.closing = None
        record.status.setText(f"stopped (exit {rc})" if isinstance(rc, int) else "stopped")
        record.stop.setEnabled(False)
        record.force.setEnabled(False)
        self.vmsChanged.emit()

    def power_off_all(self) -> None:
        """Asks every running VM to power down (the window's quit: "Power off")."""
        for r in self.running():
            self.stop(r)
