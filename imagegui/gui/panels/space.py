"""The Space view: where the directory's disk space goes, as totals and as a picture.

Above, one line of totals: what the images hold on disk, and once the space report is read
(allocation maps, on a worker), the guest data, the shadowed bytes and what can be reclaimed by
category. Below, the treemap (:mod:`treemap`): every image a rectangle, nested in its base.
"""

from __future__ import annotations

from html import escape

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from imagegui.core.units import counted, human_size
from imagegui.gui import theme
from imagegui.gui.panels.treemap import TreemapView
from imagegui.gui.snapshot import Snapshot

HINT = (
    "Each rectangle is an image; its area is what it and the overlays inside it hold on disk. "
    "Click one to select it, double-click for its details."
)


class SpacePanel(QWidget):
    nodeClicked = Signal(str)
    nodeActivated = Signal(str)
    contextMenuRequested = Signal(str, QPoint)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("spacePanel")
        self.totals = QLabel()
        self.totals.setObjectName("spaceTotals")
        self.totals.setTextFormat(Qt.TextFormat.RichText)
        self.totals.setWordWrap(True)
        self.totals.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.totals.setAccessibleName("Disk space totals")
        self.totals.setToolTip(HINT)
        self.map = TreemapView()
        self.map.setToolTip("")  # each rectangle has its own
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 6)
        layout.setSpacing(4)
        layout.addWidget(self.totals)
        layout.addWidget(self.map, 1)
        self.snapshot: Snapshot | None = None
        #: The space report of the snapshot shown (None until read, or when it failed).
        self.report = None
        #: What the report's reading says meanwhile ("Reading allocation maps… 40 %").
        self.status_text = ""
        self.map.nodeClicked.connect(self.nodeClicked)
        self.map.nodeActivated.connect(self.nodeActivated)
        self.map.contextMenuRequested.connect(self.contextMenuRequested)
        theme.watcher().changed.connect(self._show_totals)
        self._show_totals()

    def set_snapshot(self, snapshot: Snapshot | None) -> None:
        self.snapshot = snapshot
        self.report = None
        self.map.extra = {}
        self.map.set_snapshot(snapshot)
        self._show_totals()

    def select(self, node: str | None) -> None:
        self.map.select(node)

    def _show_totals(self) -> None:
        snap = self.snapshot
        muted = theme.current().muted.name()
        if snap is None:
            self.totals.setText(f"<span style='color:{muted}'>{escape(HINT)}</span>")
            return
        scan = snap.graph.scan
        on_disk = sum(i.actual_size for i in scan.images.values())
        parts = [f"<b>{human_size(on_disk)}</b> on disk in {counted(len(scan.images), 'image')}"]
        if scan.external:
            outside = sum(i.actual_size for i in scan.external.values())
            parts.append(
                f"{human_size(outside)} in {counted(len(scan.external), 'backing file')} "
                "outside the directory"
            )
        text = " · ".join(parts)
        if self.status_text:
            text += f" <span style='color:{muted}'>· {escape(self.status_text)}</span>"
        self.totals.setText(text)
