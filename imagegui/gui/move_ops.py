"""Rename… (F2) and Move To Folder… in the window: the dialogs, the runs, the selection after.

Both run a ``core.ops.move`` plan on the worker pool with progress and Cancel (a cancel undoes
what was done); the window rescans and keeps the moved image selected under its new name.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QFileDialog

from imagegui.core.chains.graph import IMAGE
from imagegui.core.units import counted, display_path
from imagegui.gui.dialogs.move_dialog import MoveDialog, RenameDialog
from imagegui.gui.ops import Ops


class MoveOps(QObject):
    def __init__(self, ops: Ops, selected: Callable[[], list[str]] | None = None):
        super().__init__(ops)
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
