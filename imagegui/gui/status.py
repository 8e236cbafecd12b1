"""The status bar: scan progress while scanning, then the directory's summary and the zoom."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QProgressBar, QStatusBar, QWidget

from imagegui.core.nodestate import short_name
from imagegui.core.problems import Severity
from imagegui.core.units import display_path
from imagegui.gui.snapshot import Snapshot


class StatusBar(QStatusBar):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)  # busy: a scan does not know its total in advance
        self.progress.setMaximumWidth(140)
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.scan_label = QLabel()
        self.scan_label.hide()
        #: The selected image's state, and why actions are unavailable for it.
        self.selection = QLabel()
        self.selection.setObjectName("selectionStatus")
        self.selection.setTextFormat(Qt.TextFormat.PlainText)
        self.selection.setMinimumWidth(40)
        self.summary = QLabel()
        self.zoom = QLabel()
        self.zoom.setToolTip("Zoom (Ctrl+wheel or the wheel; Ctrl+0 fits everything)")
        self.addWidget(self.progress)
        self.addWidget(self.scan_label)
        self.addWidget(self.selection, 1)
        self.addPermanentWidget(self.summary)
        self.addPermanentWidget(self.zoom)

    def scan_started(self, target: str) -> None:
        self.progress.show()
        self.scan_label.setText("Scanning…")
        self.scan_label.setToolTip(target)
        self.scan_label.show()

    def set_files(self, count: int) -> None:
        self.scan_label.setText(f"Scanning… {count:,} files")

    def set_stage(self, stage: str) -> None:
        self.scan_label.setText(f"{stage}…")

    def scan_ended(self) -> None:
        self.progress.hide()
        self.scan_label.hide()

    def set_summary(self, snapshot: Snapshot) -> None:
        problems = snapshot.graph.problems
        errors = sum(1 for p in problems if p.severity == Severity.ERROR)
        warnings = len(problems) - errors
        seconds = sum(snapshot.timings.values())
        unusable = sum(1 for st in snapshot.status.values() if st.unusable and not st.placeholder)
        self.summary.setText(
            f"{snapshot.image_count:,} images · {errors} errors · {warnings} warnings · "
            f"{unusable:,} unusable"
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

    def set_zoom(self, scale: float) -> None:
        self.zoom.setText(f"{scale * 100:.0f} %")
