"""The chains list: a filter box over a tree of base → overlays, sortable by any column.

Names and folders are elided in the middle (the start and the ``.qcow2`` end both matter), the full
path is in the tooltip. With the keyboard: the current row has a visible frame while the list has
focus, and the Menu key or Shift+F10 opens the context menu of the current row.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import (
    QEvent,
    QItemSelectionModel,
    QModelIndex,
    QPoint,
    QRect,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QKeyEvent, QPainter, QPalette, QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLineEdit,
    QStyleOptionViewItem,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from imagegui.core.jobs import Job
from imagegui.gui import a11y, dnd, resources
from imagegui.gui.panels.chains_model import (
    COLUMNS,
    DSIZE,
    FOLDER,
    FORMAT,
    NAME,
    USED_BY,
    VSIZE,
    ChainsModel,
    FilterResult,
    find_rows,
)
from imagegui.gui.snapshot import Snapshot
from imagegui.gui.workers import TaskSlot

log = logging.getLogger(__name__)

#: Expand every chain when there are at most this many rows (expandAll asks the model per row).
EXPAND_ALL_LIMIT = 3000
FILTER_DEBOUNCE_MS = 200


def is_menu_key(event: QKeyEvent) -> bool:
    """The keyboard's way to ask for a context menu: the Menu key, or Shift+F10."""
    key, mods = event.key(), event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
    if key == Qt.Key.Key_Menu and mods == Qt.KeyboardModifier.NoModifier:
        return True
    return key == Qt.Key.Key_F10 and mods == Qt.KeyboardModifier.ShiftModifier


class ItemTree(QTreeView):
    """A tree whose current row is framed while it has focus (a selected row's highlight alone
    does not say where the keyboard is), and whose menu keys ask for the current row's menu."""

    #: The Menu key or Shift+F10 on the current row: its index and where the menu goes (global).
    menuKeyPressed = Signal(QModelIndex, QPoint)

    def drawRow(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        super().drawRow(painter, option, index)
        current = self.currentIndex()
        if not (self.hasFocus() and current.isValid()):
            return
        if index.row() != current.row() or index.parent() != current.parent():
            return
        # In the text colour: it stands out from the rows around (text is readable on them) and
        # from the selection's highlight, in a light palette as in a dark one.
        pen = QPen(self.palette().color(QPalette.ColorGroup.Active, QPalette.ColorRole.Text), 2)
        pen.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
        painter.save()
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        rect = QRect(option.rect)
        rect.setLeft(0)
        rect.setRight(self.viewport().width() - 1)
        painter.drawRect(rect.adjusted(1, 1, -1, -1))
        painter.restore()

    def focusInEvent(self, event) -> None:
        super().focusInEvent(event)
        self.viewport().update()

    def focusOutEvent(self, event) -> None:
        super().focusOutEvent(event)
        self.viewport().update()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if is_menu_key(event):
            index = self.currentIndex()
            if index.isValid():
                self.scrollTo(index)
                rect = self.visualRect(index)
                self.menuKeyPressed.emit(index, self.viewport().mapToGlobal(rect.bottomLeft()))
            event.accept()
            return
        super().keyPressEvent(event)


class ChainsTree(ItemTree):
    """The chains list's tree: its selected rows are dragged onto a folder (never to another
    program: ``gui.dnd``)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        #: The images a drag of the selected rows carries (the panel tells).
        self.drag_paths = list

    def startDrag(self, supportedActions) -> None:
        dnd.start_drag(self, self.drag_paths())


class FilterEdit(QLineEdit):
    """The filter box: Esc clears it. Only while it holds text: an empty box lets Esc through
    to the window (Stop Scanning), where a shortcut of its own would make Esc ambiguous."""

    def event(self, event: QEvent) -> bool:
        if (
            event.type() == QEvent.Type.ShortcutOverride
            and isinstance(event, QKeyEvent)
            and event.key() == Qt.Key.Key_Escape
            and self.text()
        ):
            event.accept()  # the key press comes here, not to a shortcut
            return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape and self.text():
            self.clear()
            return
        super().keyPressEvent(event)


class ChainsPanel(QWidget):
    nodeSelected = Signal(str)
    nodeActivated = Signal(str)
    contextMenuRequested = Signal(str, QPoint)
    #: The rows selected changed (a set of nodes): the graph rings them.
    rowsSelected = Signal(object)
    #: The filter's matches (a set of nodes), or None when the filter is empty.
    filterApplied = Signal(object)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.model = ChainsModel(self)
        self.filter = FilterEdit()
        self.filter.setObjectName("filterBox")
        self.filter.setPlaceholderText(
            "Filter: name, folder, format, state or problem (e.g. missing)"
        )
        self.filter.setClearButtonEnabled(True)
        self.filter.addAction(resources.icon("filter"), QLineEdit.ActionPosition.LeadingPosition)
        self.filter.setAccessibleName("Filter images")
        a11y.name_line_edit_buttons(self.filter, "Clear the filter", "Filter")
        self.filter.setToolTip(
            "Shows the images whose name, folder, format, state or problem kind contain every "
            "word, with the chains they belong to (Ctrl+F)"
        )
        self.tree = ChainsTree()
        self.tree.drag_paths = self.drag_paths
        self.tree.setModel(self.model)
        #: What the list shows expanded, kept as the view expands and collapses rows: a new
        #: snapshot resets the model (the view forgets) and is shown expanded the same way
        #: without asking the model about every row (at 100,000 images a walk of all rows
        #: stalled the window for ~200 ms on each rescan). Either every row (after
        #: ``expandAll``) but the nodes in ``_expanded``, or only the nodes in ``_expanded``.
        self._all_expanded = False
        self._expanded: set[str] = set()
        self.tree.expanded.connect(self._on_expanded)
        self.tree.collapsed.connect(self._on_collapsed)
        self.tree.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        # Several rows at once (Ctrl/Shift+click) for Move to Trash; the current row is the
        # image every other action and panel shows.
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.tree.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.setAllColumnsShowFocus(True)
        self.tree.setAccessibleName("Chains list")
        self.tree.setAccessibleDescription(
            "Every image by chain: a base file, and below it the overlays that use it"
        )
        header = self.tree.header()
        header.setSortIndicatorClearable(True)
        header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.tree.setSortingEnabled(True)
        self.tree.setIndentation(14)
        header.setStretchLastSection(True)
        for col in range(len(COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.Interactive)
        header.setMinimumSectionSize(40)
        header.resizeSection(NAME, 200)
        header.resizeSection(FOLDER, 110)
        header.resizeSection(FORMAT, 56)
        header.resizeSection(VSIZE, 76)
        header.resizeSection(DSIZE, 76)
        # The VMs that use an image matter next to its name (the last columns are off to the
        # right in a narrow list); shown only when some VM uses a scanned image.
        header.moveSection(header.visualIndex(USED_BY), 1)
        header.resizeSection(USED_BY, 130)
        header.setSectionHidden(USED_BY, True)
        box = QVBoxLayout(self)
        box.setContentsMargins(4, 4, 0, 4)
        box.setSpacing(4)
        box.addWidget(self.filter)
        box.addWidget(self.tree, 1)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(FILTER_DEBOUNCE_MS)
        self._debounce.timeout.connect(self._on_filter_timeout)
        #: The filter is worked out on a worker (``find_rows``), the rows swapped in when done.
        self._filter_slot = TaskSlot(
            self, on_done=self._on_filtered, on_failed=self._on_filter_failed
        )
        #: A filter is being worked out.
        self.filtering = False
        self.filter.textChanged.connect(lambda _t: self._debounce.start())
        self.tree.selectionModel().currentRowChanged.connect(self._on_current_row_changed)
        self.tree.selectionModel().selectionChanged.connect(
            lambda *_: self.rowsSelected.emit(set(self.selected_nodes()))
        )
        self.tree.doubleClicked.connect(self._on_double_clicked)
        self.tree.customContextMenuRequested.connect(self._on_context_menu)
        self.tree.menuKeyPressed.connect(self._on_menu_key)
        self._syncing = False
        #: The node the list is announcing as current (the window echoes it back to ``select``).
        self._echo: str | None = None

    def set_snapshot(self, snapshot: Snapshot, current: str | None) -> None:
        shown = self.model.snapshot is not None
        every, nodes = (self._all_expanded, set(self._expanded)) if shown else (False, set())
        self.model.set_snapshot(snapshot)
        self.tree.header().setSectionHidden(USED_BY, not snapshot.domains)
        self._restore_expansion(nodes, every)
        self.select(current)
        self.filterApplied.emit(self.model.matches)
        if self.model.filter_text:  # the rows still there meanwhile
            self._start_filter(self.model.filter_text)

    def _on_expanded(self, index: QModelIndex) -> None:
        node = self.model.node_at(index) or ""
        if self._all_expanded:
            self._expanded.discard(node)
        elif node:
            self._expanded.add(node)

    def _on_collapsed(self, index: QModelIndex) -> None:
        node = self.model.node_at(index) or ""
        if not self._all_expanded:
            self._expanded.discard(node)
        elif node:
            self._expanded.add(node)

    def _expand_all(self) -> None:
        """Every row expanded, without a Python call per row (``expanded`` is emitted for each:
        3,000 of them added ~60 ms to a filter keystroke at 100,000 images)."""
        self.tree.blockSignals(True)
        try:
            self.tree.expandAll()
        finally:
            self.tree.blockSignals(False)
        self._all_expanded, self._expanded = True, set()

    def _restore_expansion(self, nodes: set[str], every: bool = False) -> None:
        """Shows the model just reset expanded as before: ``nodes`` expanded, or with ``every``
        all rows but ``nodes``. A small list with nothing expanded, or filtered, is shown
        expanded whole; a list now too big to expand whole (``EXPAND_ALL_LIMIT``) that was,
        collapsed."""
        self._all_expanded, self._expanded = False, set()  # the reset collapsed every row
        small = self.model.visible_count() <= EXPAND_ALL_LIMIT
        if small and (every or not nodes or self.model.filter_text):
            self._expand_all()
            if every and not self.model.filter_text:
                for node in nodes:
                    index = self.model.index_of(node)
                    if index.isValid():
                        self.tree.collapse(index)
            return
        if every:
            return
        for node in nodes:
            index = self.model.index_of(node)
            if index.isValid():
                self.tree.expand(index)

    def select(self, node: str | None) -> None:
        """Makes ``node`` current without echoing it back as a user selection."""
        index = self.model.index_of(node) if node else QModelIndex()
        if node is not None and node == self._echo:
            return  # the list made it current itself: its selection (Ctrl/Shift+click) stays
        self._syncing = True
        try:
            if not index.isValid():
                self.tree.selectionModel().clearSelection()
                return
            snap = self.model.snapshot
            if snap is not None:
                for ancestor in reversed(snap.layout.forest.ancestors(node)):
                    self.tree.expand(self.model.index_of(ancestor))
            flags = (
                QItemSelectionModel.SelectionFlag.ClearAndSelect
                | QItemSelectionModel.SelectionFlag.Rows
            )
            self.tree.selectionModel().setCurrentIndex(index, flags)
            self.tree.scrollTo(index, QAbstractItemView.ScrollHint.EnsureVisible)
        finally:
            self._syncing = False

    def current_node(self) -> str | None:
        return self.model.node_at(self.tree.currentIndex())

    def toggle(self, node: str) -> None:
        """Adds ``node``'s row to the rows selected, or takes it out, and makes it current (a
        Ctrl+click on its card)."""
        index = self.model.index_of(node)
        if not index.isValid():
            return
        flags = QItemSelectionModel.SelectionFlag.Toggle | QItemSelectionModel.SelectionFlag.Rows
        self.tree.selectionModel().setCurrentIndex(index, flags)
        self.tree.scrollTo(index, QAbstractItemView.ScrollHint.EnsureVisible)

    def drag_paths(self) -> list[str]:
        """The selected rows that are files of the scan (what a drag can move), current first."""
        snap = self.model.snapshot
        images = snap.graph.scan.images if snap is not None else {}
        return [n for n in self.selected_nodes() if n in images]

    def select_nodes(self, nodes: list[str]) -> None:
        """Selects the rows of ``nodes``, the first one current (a folder's images)."""
        shown = [i for i in map(self.model.index_of, nodes) if i.isValid()]
        if not shown:
            return
        self.select(self.model.node_at(shown[0]))
        self.nodeSelected.emit(self.model.node_at(shown[0]))
        model = self.tree.selectionModel()
        flags = QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
        for index in shown[1:]:
            model.select(index, flags)

    def selected_nodes(self) -> list[str]:
        """The rows selected, the current one first (several with Ctrl/Shift+click)."""
        # (selectedRows() wants every column of a row selected, the hidden ones too)
        rows = [i for i in self.tree.selectionModel().selectedIndexes() if i.column() == 0]
        nodes = list(dict.fromkeys(n for n in map(self.model.node_at, rows) if n is not None))
        current = self.current_node()
        if current in nodes:
            nodes.remove(current)
            nodes.insert(0, current)
        return nodes

    def focus_filter(self) -> None:
        self.filter.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.filter.selectAll()

    def _on_filter_timeout(self) -> None:
        text = self.filter.text().strip().lower()
        result = self.model.result
        if (
            text == self.model.filter_text
            and result is not None
            and result.snapshot is self.model.snapshot
        ):
            self._filter_slot.discard()  # typed and taken back: what is shown stays
            self.filtering = False
            return
        self._start_filter(text)

    def _start_filter(self, text: str) -> None:
        """Works the filter out on a worker: at 100,000 images it is seconds of Python, and a
        key typed meanwhile cancels it (``TaskSlot``)."""
        snap = self.model.snapshot
        if snap is None:
            self.model.set_filter(text)
            self.filterApplied.emit(self.model.matches)
            return
        sort, previous = self.model.sort_order, self.model.result
        self.filtering = True
        self._filter_slot.start(
            Job(
                "Filtering the images",
                lambda _progress, cancel: find_rows(snap, text, sort, previous, cancel),
            )
        )

    def _on_filter_failed(self, error: BaseException) -> None:
        self.filtering = False
        log.error("filtering the list failed: %s", error)

    def _on_filtered(self, result: FilterResult) -> None:
        self.filtering = False
        if self.model.same_rows(result):  # the rows stay, as expanded as they were
            self.model.take_matches(result)
            self.filterApplied.emit(self.model.matches)
            return
        current = self.current_node()
        if not self.model.apply_filter(result):
            return  # worked out for an older snapshot: set_snapshot started another
        self._restore_expansion(set())
        self.select(current)
        # The tree lays its rows out now (it asks the model about every top-level row) rather
        # than later beside the graph's and space view's workers, which would make each of
        # those Python calls wait for the GIL (a 5 ms switch interval each, or more under load).
        self.tree.executeDelayedItemsLayout()
        self.tree.viewport().repaint()  # and paints them, for the same reason
        self.filterApplied.emit(self.model.matches)

    def _on_current_row_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        node = self.model.node_at(current)
        if node is not None and not self._syncing:
            self._echo = node
            try:
                self.nodeSelected.emit(node)
            finally:
                self._echo = None

    def _on_double_clicked(self, index: QModelIndex) -> None:
        node = self.model.node_at(index)
        if node is not None:
            self.nodeActivated.emit(node)

    def _on_context_menu(self, pos: QPoint) -> None:
        index = self.tree.indexAt(pos)
        node = self.model.node_at(index)
        if node is not None:
            self.nodeSelected.emit(node)
            self.contextMenuRequested.emit(node, self.tree.viewport().mapToGlobal(pos))

    def _on_menu_key(self, index: QModelIndex, global_pos: QPoint) -> None:
        node = self.model.node_at(index)
        if node is not None:
            self.nodeSelected.emit(node)
            self.contextMenuRequested.emit(node, global_pos)
