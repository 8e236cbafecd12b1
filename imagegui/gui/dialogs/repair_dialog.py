"""Repair missing backing…: find where the base went and point the overlay at it.

Candidates come from the scan (same file name, same virtual size, the recorded format; best first,
:mod:`imagegui.core.chains.repair`). The repair is an unsafe rebase - only the pointer is
rewritten - and is journalled, so *Edit ▸ Undo* restores the old pointer.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QPushButton, QTreeWidget, QTreeWidgetItem, QWidget

from imagegui.core.chains.repair import Candidate, repair_candidates
from imagegui.core.ops.plan import Plan
from imagegui.core.ops.rebase import plan_rebase
from imagegui.core.read.backing import canonical
from imagegui.core.read.model import ImageInfo
from imagegui.core.units import display_path, human_size
from imagegui.core.virt.inventory import DomainSource
from imagegui.gui import resources
from imagegui.gui.dialogs.fields import backing_choice
from imagegui.gui.dialogs.plan_dialog import PlanDialog
from imagegui.gui.snapshot import Snapshot


class RepairDialog(PlanDialog):
    def __init__(
        self,
        image: ImageInfo,
        snapshot: Snapshot,
        parent: QWidget | None = None,
        qemu_img: str = "",
        domains: DomainSource | None = None,
    ):
        super().__init__(
            "Repair Missing Backing File", "Repair", parent, qemu_img=qemu_img, domains=domains
        )
        self.image = image
        self.root = snapshot.root
        graph = snapshot.graph
        missing = graph.backing_of(image.path) or "?"
        self.intro.setText(
            f"<b>{display_path(image.name)}</b> backs onto "
            f"<tt>{display_path(image.backing_file or '?')}</tt>, which is not there (looked for "
            f"<tt>{display_path(missing)}</tt>). If the base was moved or renamed, choose it: only "
            "the pointer is rewritten (an unsafe rebase), and <i>Edit ▸ Undo</i> restores it."
        )
        self.candidates: list[Candidate] = repair_candidates(graph, image.path)
        self.tree = QTreeWidget()
        self.tree.setAccessibleName("Candidates for the missing backing file")
        self.tree.setHeaderLabels(["Candidate", "Why", "Format", "Virtual size"])
        self.tree.setRootIsDecorated(False)
        self.tree.setAlternatingRowColors(True)
        self.tree.setMinimumHeight(130)
        for cand in self.candidates:
            self._add_item(cand.path, cand.describe(), snapshot)
        if self.candidates:
            self.tree.setCurrentItem(self.tree.topLevelItem(0))
        for col in range(4):
            self.tree.resizeColumnToContents(col)
        browse = QPushButton(resources.icon("document-open"), "Other file…")
        browse.setToolTip("Choose the base with a file dialog")
        browse.clicked.connect(self._on_browse_clicked)
        self.store = backing_choice(os.path.isabs(image.backing_file or ""))
        self.form.addRow(self.tree)
        self.form.addRow("", browse)
        self.form.addRow("Backing path:", self.store)
        self.tree.currentItemChanged.connect(self.fields_changed)
        self.store.changed.connect(self.fields_changed)
        self.replan()

    def _add_item(self, path: str, why: str, snapshot: Snapshot | None = None) -> QTreeWidgetItem:
        info = snapshot.graph.image(path) if snapshot else None
        rel = os.path.relpath(path, self.root)
        item = QTreeWidgetItem(
            [
                display_path(path if rel.startswith("..") else rel),
                why,
                info.format if info else "",
                human_size(info.virtual_size) if info else "",
            ]
        )
        item.setData(0, Qt.ItemDataRole.UserRole, path)
        item.setToolTip(0, path)
        self.tree.addTopLevelItem(item)
        return item

    def choose(self, path: str) -> None:
        """Selects ``path`` among the candidates, adding it when it is not one (tests, Browse)."""
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item.data(0, Qt.ItemDataRole.UserRole) == path:
                self.tree.setCurrentItem(item)
                return
        self.tree.setCurrentItem(self._add_item(path, "chosen by you"))

    def _on_browse_clicked(self) -> None:
        chosen, _ = QFileDialog.getOpenFileName(self, "Where is the base now?", self.root)
        if chosen:
            self.choose(canonical(chosen))

    def chosen(self) -> str | None:
        item = self.tree.currentItem()
        return item.data(0, Qt.ItemDataRole.UserRole) if item else None

    def destructive_fields(self) -> bool:
        return True  # an unsafe rebase: wrong file, different data; Enter must not pick it

    def run_text(self, plan: Plan | None) -> str:
        target = self.chosen() if hasattr(self, "tree") else None
        if target is None:
            return "Rewrite pointer without copying"
        return f"Point at {display_path(os.path.basename(target))} without copying"

    def planner(self) -> Callable[[], Plan] | str:
        target = self.chosen()
        if target is None:
            if not self.candidates:
                return "No scanned image looks like the missing base: choose the file yourself."
            return "Choose where the base is now."
        image, absolute = self.image.path, self.store.value() == "absolute"
        roots, allow = (self.root,), self.allowed_files()
        qemu_img, domains = self.qemu_img, self.domains
        return lambda: plan_rebase(
            image,
            target,
            unsafe=True,
            absolute=absolute,
            roots=roots,
            allow=allow,
            qemu_img=qemu_img,
            domains=domains,
        )
