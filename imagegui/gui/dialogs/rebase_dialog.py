"""Rebase…: point an image at another backing file, safely (content kept) or unsafely (pointer
only, the repair for a moved base); also "make independent" and "record the backing format"."""

from __future__ import annotations

import os
from collections.abc import Callable

from PySide6.QtCore import QStringListModel, Qt
from PySide6.QtWidgets import QComboBox, QCompleter, QFileDialog, QHBoxLayout, QToolButton, QWidget

from imagegui.core.ops.plan import Plan
from imagegui.core.ops.rebase import plan_rebase
from imagegui.core.read.backing import canonical
from imagegui.core.read.model import ImageInfo
from imagegui.core.units import display_path
from imagegui.core.virt.inventory import DomainSource
from imagegui.gui import resources
from imagegui.gui.dialogs.fields import Choice, backing_choice
from imagegui.gui.dialogs.plan_dialog import PlanDialog
from imagegui.gui.snapshot import Snapshot

INDEPENDENT = "(no backing file: copy everything in and make it independent)"


class RebaseDialog(PlanDialog):
    def __init__(
        self,
        image: ImageInfo,
        snapshot: Snapshot,
        backing: str | None = None,
        unsafe: bool = False,
        parent: QWidget | None = None,
        qemu_img: str = "",
        domains: DomainSource | None = None,
    ):
        super().__init__("Rebase", "Rebase", parent, qemu_img=qemu_img, domains=domains)
        self.image = image
        self.root = snapshot.root
        self.intro.setText(
            f"Change the backing file of <b>{display_path(image.name)}</b> (now "
            f"<tt>{display_path(image.backing_file or 'none')}</tt>). The old pointer is kept in "
            "the journal: <i>Edit ▸ Undo</i> restores it."
        )
        graph = snapshot.graph
        excluded = {image.path, *graph.descendants(image.path)}
        pool = [*graph.scan.images, *graph.scan.external]
        self.paths = ["", *sorted(p for p in pool if p not in excluded)]
        self.labels = [INDEPENDENT, *(self._label(p) for p in self.paths[1:])]
        self.combo = QComboBox()
        self.combo.setEditable(True)
        self.combo.setModel(QStringListModel(self.labels, self.combo))
        self.combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.combo.setMaxVisibleItems(20)
        completer = QCompleter(self.combo.model(), self.combo)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.combo.setCompleter(completer)
        self.combo.setToolTip("One of the scanned images (type to search), or any file")
        start = backing if backing is not None else image.backing_path
        self.combo.setEditText(self._label(start) if start else "")
        browse = QToolButton()
        browse.setIcon(resources.icon("document-open"))
        browse.setToolTip("Choose a backing file with a file dialog")
        browse.setAccessibleName("Browse for the backing file")
        browse.clicked.connect(self._on_browse_clicked)
        row = QWidget()
        line = QHBoxLayout(row)
        line.setContentsMargins(0, 0, 0, 0)
        line.addWidget(self.combo, 1)
        line.addWidget(browse)
        self.mode = Choice(
            [
                (
                    "safe",
                    "Safe: keep what the guest sees (copies the differences; needs the old "
                    "backing file)",
                    "Data that differs between the old and the new backing file "
                    "is copied into the image, so the guest sees exactly the same disk",
                ),
                (
                    "unsafe",
                    "Unsafe: rewrite only the pointer (for a base that was moved or renamed)",
                    "Instant, copies nothing. Right only if the new file is an "
                    "identical copy of the old one; otherwise the guest sees different data",
                ),
            ],
            "unsafe" if unsafe else "safe",
        )
        self.store = backing_choice(False)
        self.form.addRow("New backing file:", row)
        self.form.addRow("Mode:", self.mode)
        self.form.addRow("Backing path:", self.store)
        self.combo.editTextChanged.connect(self.fields_changed)
        self.mode.changed.connect(self.fields_changed)
        self.store.changed.connect(self.fields_changed)
        self.replan()

    def _label(self, path: str) -> str:
        rel = os.path.relpath(path, self.root)
        return display_path(path if rel.startswith("..") else rel)

    def new_backing(self) -> str | None:
        """The chosen file's absolute path, "" for independent, None when nothing is chosen."""
        text = self.combo.currentText().strip()
        if not text:
            return None
        if text in self.labels:
            return self.paths[self.labels.index(text)]
        return canonical(os.path.join(self.root, os.path.expanduser(text)))

    def set_new_backing(self, path: str) -> None:
        self.combo.setEditText(self._label(path) if path else INDEPENDENT)

    def _on_browse_clicked(self) -> None:
        chosen, _ = QFileDialog.getOpenFileName(self, "New backing file", self.root)
        if chosen:
            self.set_new_backing(chosen)

    def destructive_fields(self) -> bool:
        mode = getattr(self, "mode", None)  # asked once before the fields exist
        return mode is not None and mode.value() == "unsafe"

    def run_text(self, plan: Plan | None) -> str:
        if self.destructive_fields():
            return "Rewrite pointer without copying"
        return "Rebase (copy the differences)"

    def planner(self) -> Callable[[], Plan] | str:
        new = self.new_backing()
        if new is None:
            return "Choose the new backing file."
        unsafe = self.mode.value() == "unsafe"
        absolute = self.store.value() == "absolute"
        image = self.image.path
        roots, allow = (self.root,), self.allowed_files()
        qemu_img, domains = self.qemu_img, self.domains
        return lambda: plan_rebase(
            image,
            new or None,
            unsafe=unsafe,
            absolute=absolute,
            roots=roots,
            allow=allow,
            qemu_img=qemu_img,
            domains=domains,
        )
