"""The Folders panel: the scanned folder's tree, each folder with its image count, and the place
images are dropped to move them.

The tree is made on a worker with each scan (``core.folders``: the images' folders, and the empty
ones a directories-only listing finds), never by a walk in a slot. Cards and list rows dragged
onto a folder (``gui.dnd``) ask for the Move preview into it (``moveRequested``); the folder
under the pointer is highlighted, a folder the images are all in already refuses the drop, and a
drag from another program is refused. With the keyboard: the context menu (Menu key, Shift+F10)
moves the selected images here, makes a new folder, or selects the folder's images (also Enter
or a double-click).
"""

from __future__ import annotations

import os

from PySide6.QtCore import QModelIndex, QPoint, QRect, Qt, QTimer, Signal
from PySide6.QtGui import (
    QDragEnterEvent,
    QDragLeaveEvent,
    QDragMoveEvent,
    QDropEvent,
    QPainter,
    QPalette,
    QStandardItem,
    QStandardItemModel,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QMenu,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from imagegui.core.folders import FolderTree, folder_tree
from imagegui.core.jobs import Job
from imagegui.core.units import counted, display_path
from imagegui.gui import dnd
from imagegui.gui.panels.chains import ItemTree
from imagegui.gui.snapshot import Snapshot
from imagegui.gui.workers import TaskSlot

PATH_ROLE = Qt.ItemDataRole.UserRole + 1
#: Every folder is expanded when there are at most this many; else the top and those open before.
EXPAND_ALL_LIMIT = 300
NAME, COUNT = 0, 1
HINT = (
    "Drag images (cards, or rows of the chains list) onto a folder to move them there; the "
    "overlays that back onto them are re-pointed. The move is shown before it runs."
)


class FolderTreeView(ItemTree):
    """The tree of folders, a drop target for images dragged in this window."""

    #: (paths, folder): images dropped on a folder.
    pathsDropped = Signal(list, str)
    #: Why a drag cannot be dropped here (said in the status bar).
    message = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DropOnly)
        self.setDropIndicatorShown(False)  # the folder under the pointer is highlighted instead
        self.setAutoExpandDelay(700)
        #: The folder a drop would go to (highlighted), if any.
        self.drop_target = QModelIndex()
        #: Drops are refused (the images shown are another host's).
        self.drops_refused = ""
        self._said = ""

    def folder_at(self, index: QModelIndex) -> str | None:
        if not index.isValid():
            return None
        path = index.siblingAtColumn(NAME).data(PATH_ROLE)
        return path if isinstance(path, str) else None

    def _set_target(self, index: QModelIndex) -> None:
        index = index.siblingAtColumn(NAME) if index.isValid() else QModelIndex()
        if index != self.drop_target:
            self.drop_target = index
            self.viewport().update()

    def _say(self, text: str) -> None:
        if text and text != self._said:
            self.message.emit(text)
        self._said = text

    def _verdict(self, event: QDragMoveEvent | QDropEvent) -> tuple[list[str], str] | str | None:
        """(paths, folder) when the drag may drop where it is; else why not ("" for no folder
        under the pointer, None for a drag that is not ours)."""
        paths = dnd.dragged_paths(event.mimeData())
        if paths is None:
            return None
        folder = self.folder_at(self.indexAt(event.position().toPoint()))
        if folder is None:
            return ""
        if self.drops_refused:
            return self.drops_refused
        if all(os.path.dirname(p) == folder for p in paths):
            what = dnd.drag_label(paths)
            verb = "is" if len(paths) == 1 else "are all"
            return f"{what} {verb} in {display_path(os.path.basename(folder) or folder)} already"
        return paths, folder

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        self._said = ""
        mime = event.mimeData()
        if dnd.dragged_paths(mime) is not None:
            event.acceptProposedAction()
            # (what QAbstractItemView does for a drag it can drop: auto-expand waits for it)
            self.setState(QAbstractItemView.State.DraggingState)
        elif mime.hasUrls() or mime.hasFormat(dnd.IMAGES_MIME):
            # Taken (so the window does not open the files instead) and refused in each move.
            event.accept()
            self._say(dnd.FOREIGN_REFUSED)
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        super().dragMoveEvent(event)  # auto-scroll near the edges, auto-expand after a pause
        verdict = self._verdict(event)
        if isinstance(verdict, tuple):
            self._set_target(self.indexAt(event.position().toPoint()))
            self._said = ""
            event.setDropAction(Qt.DropAction.MoveAction)
            event.accept()
            return
        self._set_target(QModelIndex())
        self._say(dnd.FOREIGN_REFUSED if verdict is None else verdict)
        event.ignore()

    def dragLeaveEvent(self, event: QDragLeaveEvent) -> None:
        super().dragLeaveEvent(event)
        self._set_target(QModelIndex())

    def dropEvent(self, event: QDropEvent) -> None:
        self._set_target(QModelIndex())
        self.stopAutoScroll()
        self.setState(QAbstractItemView.State.NoState)
        verdict = self._verdict(event)
        if not isinstance(verdict, tuple):
            self._say(dnd.FOREIGN_REFUSED if verdict is None else verdict)
            event.ignore()
            return
        paths, folder = verdict
        event.setDropAction(Qt.DropAction.MoveAction)
        event.accept()
        # After the drag has ended: the preview opens outside the drag's own event loop.
        QTimer.singleShot(0, lambda: self.pathsDropped.emit(paths, folder))

    def drawRow(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        target = self.drop_target
        if target.isValid() and index.row() == target.row() and index.parent() == target.parent():
            pal = self.palette()
            rect = QRect(0, option.rect.top(), self.viewport().width(), option.rect.height())
            painter.fillRect(
                rect, pal.color(QPalette.ColorGroup.Active, QPalette.ColorRole.Highlight)
            )
            option = QStyleOptionViewItem(option)
            for group in (QPalette.ColorGroup.Active, QPalette.ColorGroup.Inactive):
                option.palette.setColor(
                    group, QPalette.ColorRole.Text, pal.color(QPalette.ColorRole.HighlightedText)
                )
        super().drawRow(painter, option, index)


class FoldersPanel(QWidget):
    #: (paths, folder): move these images into the folder (the Move preview first).
    moveRequested = Signal(list, str)
    #: A folder's menu asked to move the selected images into it.
    moveSelectedRequested = Signal(str)
    #: A folder's menu asked for a new folder inside it.
    newFolderRequested = Signal(str)
    #: Select these images (a folder's own, from Enter or a double-click).
    selectRequested = Signal(list)
    #: A message for the status bar.
    message = Signal(str)
    #: The tree of a new scan is shown.
    treeShown = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("foldersPanel")
        self.model = QStandardItemModel(self)
        self.model.setHorizontalHeaderLabels(["Folder", "Images"])
        self.tree = FolderTreeView()
        self.tree.setObjectName("folderTree")
        self.tree.setModel(self.model)
        self.tree.setUniformRowHeights(True)
        self.tree.setIndentation(12)
        self.tree.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.setAccessibleName("Folders")
        self.tree.setAccessibleDescription(
            "The scanned folder and the folders in it, each with its number of images. " + HINT
        )
        self.tree.setToolTip(HINT)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(NAME, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(COUNT, QHeaderView.ResizeMode.ResizeToContents)
        self.note = QLabel()
        self.note.setObjectName("foldersNote")
        self.note.setWordWrap(True)
        self.note.setVisible(False)
        box = QVBoxLayout(self)
        box.setContentsMargins(4, 4, 0, 4)
        box.setSpacing(4)
        box.addWidget(self.tree, 1)
        box.addWidget(self.note)
        self.snapshot: Snapshot | None = None
        self.folders: FolderTree | None = None
        #: Each folder's row, by path.
        self._items: dict[str, QStandardItem] = {}
        #: The folder to make current once the next tree shows it (a new folder).
        self.select_after: str | None = None
        self._slot = TaskSlot(self, on_done=self._show_tree, on_failed=self._on_failed)
        self.tree.pathsDropped.connect(self.moveRequested)
        self.tree.message.connect(self.message)
        self.tree.customContextMenuRequested.connect(
            lambda pos: self._menu(self.tree.indexAt(pos), self.tree.viewport().mapToGlobal(pos))
        )
        self.tree.menuKeyPressed.connect(self._menu)
        self.tree.activated.connect(self._on_activated)

    # -- the tree

    def set_snapshot(self, snapshot: Snapshot) -> None:
        """Lists the folders of ``snapshot`` on a worker (the tree is shown when read)."""
        self.snapshot = snapshot
        remote = snapshot.remote_uri
        self.tree.drops_refused = (
            f"The images of {remote} are only shown here: nothing is moved on another host."
            if remote
            else ""
        )
        root, images, walk = snapshot.root, list(snapshot.graph.scan.images), remote is None

        def run(_progress, cancel):
            return folder_tree(root, images, walk=walk, cancel=cancel)

        self._slot.start(Job(f"Listing the folders of {root}", run))

    def _on_failed(self, exc: BaseException) -> None:
        self._set_note(f"The folders could not be listed: {exc}")

    def _set_note(self, text: str) -> None:
        self.note.setText(display_path(text))
        self.note.setVisible(bool(text))

    def _show_tree(self, tree: FolderTree) -> None:
        old = self.folders
        self.folders = tree
        notes = []
        if tree.truncated:
            notes.append("Not every empty folder is listed (too many folders).")
        if tree.errors:
            path, why = tree.errors[0]
            notes.append(f"{counted(len(tree.errors), 'folder')} not listed: {path}: {why}")
        self._set_note(" ".join(notes))
        if old is not None and _same(old, tree) and self.select_after is None:
            self.treeShown.emit()
            return
        current = self.select_after or self.current_folder()
        self.select_after = None
        expanded = self._expanded() if old is not None and old.root == tree.root else None
        self.model.removeRows(0, self.model.rowCount())
        self._items = {}
        root = tree.folders[tree.root]
        stack: list[tuple[QStandardItem, str]] = []
        top = self._row(self.model.invisibleRootItem(), root, display_path(tree.root))
        stack.append((top, tree.root))
        while stack:
            item, path = stack.pop()
            for child in tree.children(path):
                stack.append((self._row(item, child, os.path.basename(child.path)), child.path))
        if len(tree.folders) <= EXPAND_ALL_LIMIT:
            self.tree.expandAll()
        else:
            self.tree.expand(top.index())
            for path in expanded or ():
                found = self._index_of(path)
                if found.isValid():
                    self.tree.expand(found)
        found = self._index_of(current) if current else QModelIndex()
        self.tree.setCurrentIndex(found if found.isValid() else top.index())
        self.treeShown.emit()

    def _row(self, parent: QStandardItem, folder, name: str) -> QStandardItem:
        item = QStandardItem(display_path(name))
        item.setData(folder.path, PATH_ROLE)
        count = QStandardItem(f"{folder.total:,}" if folder.total else "")
        count.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        here = counted(folder.images, "image")
        below = folder.total - folder.images
        spoken = f"{display_path(name)}: {here}" + (
            f", {counted(folder.total, 'image')} with the folders in it" if below else ""
        )
        tip = f"{display_path(folder.path)}\n{here} in it"
        if below:
            tip += f", {folder.total:,} with the folders in it"
        for cell in (item, count):
            cell.setEditable(False)
            cell.setToolTip(tip)
            cell.setData(spoken, Qt.ItemDataRole.AccessibleTextRole)
        parent.appendRow([item, count])
        self._items[folder.path] = item
        return item

    def _index_of(self, path: str) -> QModelIndex:
        item = self._items.get(path)
        return item.index() if item is not None else QModelIndex()

    def index_of(self, path: str) -> QModelIndex:
        """The row of folder ``path`` (invalid when not shown)."""
        return self._index_of(os.path.normpath(path))

    def _expanded(self) -> set[str]:
        out = set()
        stack = [self.model.index(r, NAME) for r in range(self.model.rowCount())]
        while stack:
            index = stack.pop()
            if self.tree.isExpanded(index):
                out.add(index.data(PATH_ROLE))
                stack.extend(
                    self.model.index(r, NAME, index) for r in range(self.model.rowCount(index))
                )
        return out

    def current_folder(self) -> str | None:
        return self.tree.folder_at(self.tree.currentIndex())

    def images_in(self, folder: str) -> list[str]:
        """The scanned images directly in ``folder``, by name."""
        snap = self.snapshot
        if snap is None:
            return []
        return sorted(p for p in snap.graph.scan.images if os.path.dirname(p) == folder)

    def focus_tree(self) -> None:
        self.tree.setFocus(Qt.FocusReason.ShortcutFocusReason)

    # -- menu and keys

    def _menu(self, index: QModelIndex, global_pos: QPoint) -> None:
        folder = self.tree.folder_at(index)
        if folder is None:
            return
        self.tree.setCurrentIndex(index.siblingAtColumn(NAME))
        local = not self.tree.drops_refused
        menu = QMenu(self)
        menu.setToolTipsVisible(True)
        move = menu.addAction("&Move Selected Images Here…")
        move.setToolTip(
            "Move the images selected in the list or the graph into this folder; the overlays "
            "that back onto them are re-pointed (shown before it runs)"
        )
        move.setEnabled(local)
        move.triggered.connect(lambda: self.moveSelectedRequested.emit(folder))
        select = menu.addAction("&Select Its Images")
        select.setToolTip("Select the images directly in this folder (Enter)")
        select.setEnabled(bool(self.images_in(folder)))
        select.triggered.connect(lambda: self._select_images(folder))
        menu.addSeparator()
        new = menu.addAction("&New Folder…")
        new.setToolTip("Make a folder inside this one")
        new.setEnabled(local)
        new.triggered.connect(lambda: self.newFolderRequested.emit(folder))
        menu.popup(global_pos)
        self.last_menu = menu

    def _on_activated(self, index: QModelIndex) -> None:
        folder = self.tree.folder_at(index)
        if folder is not None:
            self._select_images(folder)

    def _select_images(self, folder: str) -> None:
        images = self.images_in(folder)
        if images:
            self.selectRequested.emit(images)
        else:
            self.message.emit(f"No images directly in {display_path(folder)}")


def _same(a: FolderTree, b: FolderTree) -> bool:
    return a.root == b.root and {p: (f.images, f.total) for p, f in a.folders.items()} == {
        p: (f.images, f.total) for p, f in b.folders.items()
    }
