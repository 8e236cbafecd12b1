"""Rename… (F2) and Move To Folder… in the window: the dialogs, the runs, the selection after.

Both run a ``core.ops.move`` plan on the worker pool with progress and Cancel (a cancel undoes
what was done); the window rescans and keeps the moved image selected under its new name.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog, QInputDialog, QLineEdit

from imagegui.core.chains.graph import IMAGE
from imagegui.core.jobs import Job
from imagegui.core.units import counted, display_path
from imagegui.gui.dialogs.move_dialog import MoveDialog, RenameDialog
from imagegui.gui.ops import Ops
from imagegui.gui.workers import TaskSlot


def folder_name_problem(name: str) -> str:
    """Why ``name`` cannot be a new folder's name ("" when it can)."""
    if not name or name in (".", ".."):
        return "Enter the new folder's name."
    if "/" in name or "\0" in name:
        return "A folder name cannot contain “/”."
    return ""


class MoveOps(QObject):
    #: A folder was made (New Folder…): its path.
    folderMade = Signal(str)

    def __init__(self, ops: Ops, selected: Callable[[], list[str]] | None = None):
        super().__init__(ops)
        #: Makes new folders, off the GUI thread (a mkdir on a network share can hang).
        self._mkdir = TaskSlot(self, on_done=self._on_folder_made, on_failed=self._on_mkdir_failed)
        self.ops = ops
        #: The images selected (the chains list's rows), the current one first.
        self.selected = selected or (lambda: [ops.selection.node] if ops.selection.node else [])
        #: Asks for the folder to move into (a folder picker; tests replace it).
        self.choose_folder: Callable[[str], str] = self._pick_folder

    def _root(self) -> str:
        snap = self.ops.session.snapshot
        return snap.root if snap is not None else ""

    def _images(self) -> list[str]:
        """The selected images that are files of the scanned folder (what can be moved)."""
        graph = self.ops.graph
        if graph is None:
            return []
        out = [n for n in self.selected() if n in graph.nodes and graph.nodes[n][0] == IMAGE]
        node = self.ops.selection.node
        if node and node not in out and node in graph.nodes and graph.nodes[node][0] == IMAGE:
            out = [node]  # the selection moved on without the list (a card clicked)
        return out

    def rename(self) -> None:
        node = self.ops.selection.node
        if not node or node not in self._images():
            return
        dialog = RenameDialog(
            node,
            self.ops.window,
            root=self._root(),
            qemu_img=self.ops.qemu_img,
            domains=self.ops.domains(),
        )
        self.ops._open(
            dialog,
            lambda d: self.ops.run_plan(
                d.plan,
                f"Rename {display_path(os.path.basename(node))} → "
                f"{display_path(os.path.basename(d.new_path))}",
                d.new_path,
            ),
        )

    def move_to(self) -> None:
        paths = self._images()
        if not paths:
            return
        folder = self.choose_folder(os.path.dirname(paths[0]))
        if not folder:
            return
        self._open_move(paths, folder)

    def move_selected_into(self, folder: str) -> None:
        """Move Selected Images Here… (the Folders panel's menu): the selection into ``folder``."""
        self.move_into(self._images(), folder)

    def move_into(self, paths: list[str], folder: str) -> None:
        """Images dropped on a folder (or sent there from its menu): the same Move preview as
        Move To Folder…, with the folder chosen. Only images of the scan move; a folder they are
        all in already is said, not previewed."""
        graph = self.ops.graph
        snap = self.ops.session.snapshot
        if graph is None or snap is None or snap.remote_uri is not None:
            return
        images = [
            p for p in dict.fromkeys(paths) if p in graph.nodes and graph.nodes[p][0] == IMAGE
        ]
        skipped = len(paths) - len(images)
        if not images:
            self.ops.message.emit("Nothing to move: only scanned images can be moved")
            return
        if all(os.path.dirname(p) == folder for p in images):
            where = display_path(os.path.basename(folder) or folder)
            what = display_path(os.path.basename(images[0])) if len(images) == 1 else "They"
            self.ops.message.emit(
                f"{what} {'is' if len(images) == 1 else 'are'} in {where} already"
            )
            return
        there = [p for p in images if os.path.dirname(p) == folder]
        if there:  # a move onto itself is no move: the others go, these are said
            images = [p for p in images if p not in there]
            self.ops.message.emit(
                f"{counted(len(there), 'image')} already in "
                f"{display_path(os.path.basename(folder) or folder)} left out"
            )
        elif skipped:
            self.ops.message.emit(
                f"{counted(skipped, 'item')} left out: only scanned images can be moved"
            )
        self._open_move(images, folder)

    def _open_move(self, paths: list[str], folder: str) -> None:
        dialog = MoveDialog(
            paths,
            folder,
            self.ops.window,
            root=self._root(),
            qemu_img=self.ops.qemu_img,
            domains=self.ops.domains(),
        )
        what = (
            display_path(os.path.basename(paths[0]))
            if len(paths) == 1
            else counted(len(paths), "image")
        )
        self.ops._open(
            dialog,
            lambda d: self.ops.run_plan(
                d.plan, f"Move {what} to {display_path(d.folder.path())}", d.destination(paths[0])
            ),
        )

    def _pick_folder(self, start: str) -> str:
        return QFileDialog.getExistingDirectory(self.ops.window, "Move into folder", start)

    # -- New Folder… (the Folders panel's menu)

    def new_folder(self, parent: str) -> None:
        """Asks for a name, then makes the folder inside ``parent`` on a worker and rescans."""
        snap = self.ops.session.snapshot
        if snap is None or snap.remote_uri is not None:
            return
        dialog = QInputDialog(self.ops.window)
        dialog.setWindowTitle("New Folder")
        dialog.setLabelText(f"New folder in {display_path(parent)}:")
        dialog.setTextEchoMode(QLineEdit.EchoMode.Normal)
        dialog.setOkButtonText("Create")
        dialog.setAccessibleName("New folder")
        self.ops._open(dialog, lambda d: self.make_folder(parent, d.textValue().strip()))

    def make_folder(self, parent: str, name: str) -> None:
        problem = folder_name_problem(name)
        if problem:
            self.ops.message.emit(problem)
            return
        path = os.path.join(parent, name)

        def run(_progress, _cancel) -> str:
            os.mkdir(path)  # never exist_ok: a folder of that name is said, not reused
            return path

        self._mkdir.start(Job(f"New folder {path}", run))

    def _on_folder_made(self, path: str) -> None:
        self.ops.message.emit(f"Made the folder {display_path(path)}")
        self.folderMade.emit(path)
        self.ops.session.rescan()

    def _on_mkdir_failed(self, exc: BaseException) -> None:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        name = getattr(exc, "filename", "") or ""
        self.ops.message.emit(f"No folder made: {display_path(str(name))}: {why}")
