"""Every problem in the directory, grouped by kind; double-click (or Enter) selects the image.

A row's context menu (right click, Shift+F10, the Menu key) offers what fits it: a leftover
temporary file's row (or its group's) removes the file(s) after a confirmation; any other
problem's row selects its image or copies its path.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPoint, Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QMenu, QVBoxLayout, QWidget

from imagegui.core.chains.diagnose import Kind
from imagegui.core.units import display_path
from imagegui.gui.panels.chains import ItemTree
from imagegui.gui.panels.problems_model import ProblemsModel
from imagegui.gui.snapshot import Snapshot


class ProblemsPanel(QWidget):
    nodeRequested = Signal(str)
    #: Remove these leftover temporary files (after the window's confirmation).
    removeLeftoversRequested = Signal(list)
    #: A short note for the status bar ("Copied …").
    message = Signal(str)

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
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(
            lambda pos: self._show_menu(
                self.tree.indexAt(pos), self.tree.viewport().mapToGlobal(pos)
            )
        )
        self.tree.menuKeyPressed.connect(self._show_menu)
        #: The menu opened last (tests read its actions).
        self.menu: QMenu | None = None

    def set_snapshot(self, snapshot: Snapshot) -> None:
        self.model.set_snapshot(snapshot)
        self.tree.expandAll()

    def _on_activated(self, index: QModelIndex) -> None:
        problem = self.model.problem_at(index)
        if problem is not None:
            self.nodeRequested.emit(problem.path)

    def fill_menu(self, menu: QMenu, index: QModelIndex) -> bool:
        """Adds the actions for the row at ``index``; False when it has none."""
        model = self.model
        problem = model.problem_at(index)
        if problem is None:  # a group row: only the leftovers' group has an action
            leftovers = model.group_paths(index) if model.group_kind(index) == Kind.LEFTOVER else []
            if not leftovers:
                return False
            n = len(leftovers)
            text = f"Remove All {n} Leftover Files…" if n > 1 else "Remove Leftover File…"
            act = menu.addAction(text)
            act.triggered.connect(lambda: self.removeLeftoversRequested.emit(list(leftovers)))
            return True
        path = problem.path
        if problem.kind == Kind.LEFTOVER:
            act = menu.addAction("Remove Leftover File…")
            act.setToolTip("Shows the file and its size, then removes it")
            act.triggered.connect(lambda: self.removeLeftoversRequested.emit([path]))
        else:
            act = menu.addAction("Select Image")
            act.triggered.connect(lambda: self.nodeRequested.emit(path))
        copy = menu.addAction("Copy Path")
        copy.triggered.connect(lambda: self._copy(path))
        return True

    def _show_menu(self, index: QModelIndex, global_pos: QPoint) -> None:
        index = index.siblingAtColumn(0) if index.isValid() else index
        menu = QMenu(self)
        menu.setToolTipsVisible(True)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        if not index.isValid() or not self.fill_menu(menu, index):
            menu.deleteLater()
            return
        self.menu = menu
        menu.popup(global_pos)

    def _copy(self, path: str) -> None:
        QGuiApplication.clipboard().setText(path)
        self.message.emit(f"Copied {display_path(path)}")
