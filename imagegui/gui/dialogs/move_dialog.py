"""Rename… (F2) and Move To Folder…: the move plan, previewed, before anything is renamed.

Both are ``core.ops.move`` plans: the preview lists the overlays whose backing pointer is
re-pointed (only the pointer: their guests read the same bytes), and the run renames, rewrites
and reads everything back on a worker, undoing it all on a failure or a cancel. Nothing is
overwritten and the move is journalled (Undo puts it back), so the run button is the default.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from html import escape

from PySide6.QtWidgets import QLineEdit, QWidget

from imagegui.core.ops.move import MovePlan, plan_move
from imagegui.core.ops.plan import Plan
from imagegui.core.units import counted, display_path
from imagegui.core.virt.inventory import DomainSource
from imagegui.gui.dialogs.fields import PathField
from imagegui.gui.dialogs.plan_dialog import PlanDialog, scan_roots


def repointed(plan: Plan) -> list[str]:
    """The images (not moving themselves) whose backing pointer the move rewrites."""
    if not isinstance(plan, MovePlan):
        return []
    return [w.image for w in plan.rewrites if not w.moved]


def _ready(plan: Plan) -> str:
    others = repointed(plan)
    if not others:
        return "Ready: no other image depends on it; only the name changes."
    names = ", ".join(display_path(os.path.basename(p)) for p in others[:3])
    more = " …" if len(others) > 3 else ""
    return f"Ready: {counted(len(others), 'overlay')} re-pointed ({names}{more}), data unchanged."


class RenameDialog(PlanDialog):
    """Rename the selected image in its folder; the name is selected without its extension."""

    def __init__(
        self,
        path: str,
        parent: QWidget | None = None,
        root: str = "",
        qemu_img: str = "",
        domains: DomainSource | None = None,
    ):
        name = os.path.basename(path)
        super().__init__(
            f"Rename {display_path(name)}", "Rename", parent, qemu_img=qemu_img, domains=domains
        )
        self.path = path
        self.root = root
        self.intro.setText(
            f"Rename <b>{escape(display_path(name))}</b> in "
            f"<tt>{escape(display_path(os.path.dirname(path)))}</tt>. Every overlay that backs "
            "onto it gets its backing pointer rewritten to the new name (only the pointer: its "
            "guest sees the same data). Undo renames it back."
        )
        self.name = QLineEdit(name)
        self.name.setAccessibleName("New name")
        self.name.setClearButtonEnabled(True)
        stem = os.path.splitext(name)[0] if not name.startswith(".") else name
        self.name.setSelection(0, len(stem))
        self.form.addRow("New &name:", self.name)
        self.name.textChanged.connect(self.fields_changed)
        self.name.setFocus()
        self.replan()

    @property
    def new_path(self) -> str:
        return os.path.join(os.path.dirname(self.path), self.name.text().strip())

    def ready_text(self, plan: Plan) -> str:
        return _ready(plan) if not plan.warnings else super().ready_text(plan)

    def planner(self) -> Callable[[], Plan] | str:
        text = self.name.text().strip()
        if not text or text in (".", ".."):
            return "Enter the new name."
        if "/" in text:
            return "A name cannot contain “/”: use Move To Folder… to move it elsewhere."
        if text == os.path.basename(self.path):
            return "Type the new name."
        src, dest, roots = self.path, self.new_path, scan_roots(self.root)
        qemu_img, domains = self.qemu_img, self.domains
        return lambda: plan_move([src], dest, roots=roots, qemu_img=qemu_img, domains=domains)


class MoveDialog(PlanDialog):
    """Move the selected images into another folder (chosen first with a folder picker)."""

    def __init__(
        self,
        paths: Sequence[str],
        folder: str,
        parent: QWidget | None = None,
        root: str = "",
        qemu_img: str = "",
        domains: DomainSource | None = None,
    ):
        self.paths = list(paths)
        first = display_path(os.path.basename(self.paths[0]))
        what = first if len(self.paths) == 1 else counted(len(self.paths), "image")
        super().__init__(f"Move {what}", "Move", parent, qemu_img=qemu_img, domains=domains)
        self.root = root
        listed = ", ".join(display_path(os.path.basename(p)) for p in self.paths[:5])
        more = " …" if len(self.paths) > 5 else ""
        self.intro.setText(
            f"Move <b>{escape(listed + more)}</b> into another folder. Every overlay that "
            "backs onto a moved image gets its backing pointer rewritten (relative stays "
            "relative, absolute stays absolute; only the pointer: its guest sees the same "
            "data). Undo moves it back."
        )
        self.folder = PathField(folder, "dir", "Move into folder")
        self.folder.edit.setAccessibleName("Destination folder")
        self.form.addRow("Into &folder:", self.folder)
        self.folder.changed.connect(self.fields_changed)
        self.replan()

    def destination(self, path: str) -> str:
        return os.path.join(self.folder.path(), os.path.basename(path))

    def ready_text(self, plan: Plan) -> str:
        return _ready(plan) if not plan.warnings else super().ready_text(plan)

    def planner(self) -> Callable[[], Plan] | str:
        folder = self.folder.path()
        if not folder:
            return "Choose the folder to move into."
        if not os.path.isdir(folder):
            return f"{display_path(folder)} is not a folder."
        srcs, roots = list(self.paths), scan_roots(self.root)
        qemu_img, domains = self.qemu_img, self.domains
        return lambda: plan_move(srcs, folder, roots=roots, qemu_img=qemu_img, domains=domains)
