"""The Space view: where the directory's disk space goes, as totals and as a picture.

Above, the totals: what the images hold on disk, and once the space report is read (allocation
maps, on a worker: ``Session.spaceReady``), the guest data, the shadowed bytes and what can be
reclaimed by category. Below, the treemap (:mod:`treemap`): every image a rectangle, nested in
its base; the reclaimable ones hatched.
"""

from __future__ import annotations

from html import escape

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from imagegui.core.chains.space import Category
from imagegui.core.units import counted, display_path, human_size
from imagegui.gui import theme
from imagegui.gui.panels.treemap import TreemapView
from imagegui.gui.snapshot import Snapshot

#: How the totals name each reclaimable category (singular, plural).
CATEGORY_WORDS = {
    Category.LEFTOVER: ("leftover file", "leftover files"),
    Category.NOVA_UNUSED_BASE: ("unused Nova base", "unused Nova bases"),
    Category.EMPTY_OVERLAY: ("empty overlay", "empty overlays"),
    Category.ORPHAN: ("old unused image", "old unused images"),
}
TERMS = (
    "On disk: what the files take (as du counts). Guest data: the bytes of the virtual disks "
    "stored in the files. Shadowed: data of a base that every overlay above it has overwritten "
    "(commit or flatten would free it). Reclaimable: files nothing needs, hatched in the picture."
)
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
        self.totals.setToolTip(f"{HINT}\n\n{TERMS}")
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
        self.status_text = ""
        self.map.extra = {}
        self.map.set_marked(set())
        self.map.set_snapshot(snapshot)
        self._show_totals()

    def select(self, node: str | None) -> None:
        self.map.select(node)

    def set_report(self, report, note: str = "") -> None:
        """The space report of the snapshot shown (None: being read, or none: ``note`` says
        why); its figures go into the totals and the tooltips, its reclaimable files are
        hatched."""
        self.report = report
        self.status_text = note
        extra: dict[str, str] = {}
        if report is not None:
            for path, figures in report.images.items():
                if figures.guest_data is not None:
                    line = f"Guest data: {human_size(figures.guest_data)}"
                    if figures.shadowed:
                        line += f" · shadowed: {human_size(figures.shadowed)}"
                    extra[path] = line
                elif figures.note:
                    extra[path] = escape(display_path(figures.note))
            for item in report.reclaimable:
                words = CATEGORY_WORDS.get(item.category, (str(item.category),))[0]
                line = f"<b>Reclaimable</b> ({escape(words)}): {escape(display_path(item.reason))}"
                extra[item.path] = f"{extra[item.path]}<br>{line}" if item.path in extra else line
        self.map.extra = extra
        self.map.set_marked({r.path for r in report.reclaimable} if report is not None else set())
        self._show_totals()

    def set_progress(self, fraction: float) -> None:
        if self.report is None and self.snapshot is not None:
            text = f"reading where the space goes… {fraction * 100:.0f} %"
            if text != self.status_text:  # progress comes per image: redraw per percent
                self.status_text = text
                self._show_totals()

    def _on_disk(self, snap: Snapshot) -> tuple[int, int]:
        """Bytes on disk of the scanned images and of the backing files outside the directory,
        added up on the scan's worker (at 100,000 images a pass took 75 ms, and the totals are
        redrawn with every percent of the space report's progress)."""
        return snap.totals.on_disk, snap.totals.outside

    def _show_totals(self) -> None:
        snap = self.snapshot
        muted = theme.current().muted.name()
        if snap is None:
            self.totals.setText(f"<span style='color:{muted}'>{escape(HINT)}</span>")
            return
        scan = snap.graph.scan
        on_disk, outside = self._on_disk(snap)
        parts = [f"<b>{human_size(on_disk)}</b> on disk in {counted(len(scan.images), 'image')}"]
        if scan.external:
            parts.append(
                f"{human_size(outside)} in {counted(len(scan.external), 'backing file')} "
                "outside the directory"
            )
        report = self.report
        if report is not None:
            parts.append(f"<b>{human_size(report.guest_data)}</b> guest data")
            if report.shadowed:
                parts.append(f"<b>{human_size(report.shadowed)}</b> shadowed")
        text = " · ".join(parts)
        if report is not None:
            text += "<br>" + self._reclaimable(report)
            if report.notes:
                text += (
                    f" <span style='color:{muted}'>· {counted(len(report.notes), 'note')}: "
                    f"{escape(display_path(report.notes[0][1]))}</span>"
                )
        if self.status_text:
            text += f" <span style='color:{muted}'>· {escape(self.status_text)}</span>"
        self.totals.setText(text)

    @staticmethod
    def _reclaimable(report) -> str:
        """ "Reclaimable 1.2 GiB: 2 unused Nova bases 1 GiB, 3 empty overlays 600 KiB"."""
        counts: dict = {}
        for item in report.reclaimable:
            counts[item.category] = counts.get(item.category, 0) + 1
        if not counts:
            return "Nothing to reclaim: every file is used or recent"
        parts = []
        for category, size in report.by_category().items():
            n = counts.get(category, 0)
            if n:
                one, many = CATEGORY_WORDS.get(category, (str(category), str(category)))
                parts.append(f"{n} {one if n == 1 else many} {human_size(size)}")
        return f"<b>Reclaimable {human_size(report.reclaimable_bytes)}</b>: " + ", ".join(parts)
