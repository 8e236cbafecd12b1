"""Every problem in the directory, grouped by kind; double-click (or Enter) selects the image."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, Signal
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QVBoxLayout, QWidget

from imagegui.gui.chains_panel import ItemTree
from imagegui.gui.problems_model import ProblemsModel
from imagegui.gui.snapshot import Snapshot


class ProblemsPanel(QWidget):
    nodeRequested = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.model = ProblemsModel(self)
        self.tree = ItemTree()  # the current row framed while it has focus
        self.tree.setModel(self.model)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.tree.setAccessibleName("Problems")
        self.tree.setToolTip("Double-click a problem to select its image")
        header = self.tree.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(0, 300)
        header.setStretchLastSection(True)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.tree)
        self.tree.activated.connect(self._on_activated)
        self.tree.doubleClicked.connect(self._on_activated)

    def set_snapshot(self, snapshot: Snapshot) -> None:
        self.model.set_snapshot(snapshot)
        self.tree.expandAll()

    def _on_activated(self, index: QModelIndex) -> None:
        problem = self.model.problem_at(index)
        if problem is not None:
            self.nodeRequested.emit(problem.path)
