"""New Image…: a blank disk (qcow2 or raw) in the open folder, created under a temporary name
and renamed when complete."""

from __future__ import annotations

import os
from collections.abc import Callable

from PySide6.QtWidgets import QComboBox, QLineEdit, QWidget

from imagegui.core.ops.newimage import PREALLOCATION_WORDS, plan_new
from imagegui.core.ops.plan import Plan
from imagegui.core.units import parse_size
from imagegui.gui.dialogs.fields import PathField, unique_path
from imagegui.gui.dialogs.plan_dialog import PlanDialog

_FORMATS = {"qcow2": "qcow2 (grows as the guest writes; snapshots, overlays)", "raw": "raw"}


class NewImageDialog(PlanDialog):
    def __init__(
        self, directory: str, taken: set[str], parent: QWidget | None = None, qemu_img: str = ""
    ):
        super().__init__("New Image", "Create", parent, qemu_img=qemu_img)
        self.directory = directory
        self.taken = taken
        self.intro.setText(
            "Create a blank disk image. It appears only once it is complete; an existing file "
            "is never replaced."
        )
        self.format = QComboBox()
        self.format.setAccessibleName("Format")
        for key, label in _FORMATS.items():
            self.format.addItem(label, key)
        self.target = PathField(unique_path(directory, "disk.qcow2", taken), "save", "New image")
        self.size = QLineEdit("20G")
        self.size.setAccessibleName("Virtual size")
        self.size.setToolTip("The disk size the guest sees, e.g. 20G or 512M")
        self.prealloc = QComboBox()
        self.prealloc.setAccessibleName("Space allocation")
        self._fill_prealloc()
        self.form.addRow("Format:", self.format)
        self.form.addRow("New image:", self.target)
        self.form.addRow("Size:", self.size)
        self.form.addRow("Allocation:", self.prealloc)
        self.format.currentIndexChanged.connect(self._on_format_changed)
        self.target.changed.connect(self.fields_changed)
        self.size.textChanged.connect(self.fields_changed)
        self.prealloc.currentIndexChanged.connect(self.fields_changed)
        self.replan()

    def _fill_prealloc(self) -> None:
        fmt = self.format.currentData()
        self.prealloc.blockSignals(True)
        self.prealloc.clear()
        for key, words in PREALLOCATION_WORDS.items():
            if fmt == "raw" and key == "metadata":
                continue  # a raw image has no metadata
            self.prealloc.addItem(words[:1].upper() + words[1:], key)
        self.prealloc.blockSignals(False)

    def _on_format_changed(self) -> None:
        fmt = self.format.currentData()
        stem = os.path.splitext(os.path.basename(self.target.path()) or "disk")[0]
        self.target.set_path(unique_path(self.directory, f"{stem}.{fmt}", self.taken))
        self._fill_prealloc()
        self.fields_changed()

    @property
    def new_path(self) -> str:
        return self.target.path()

    def planner(self) -> Callable[[], Plan] | str:
        path = self.target.path()
        if not path:
            return "Enter a name for the new image."
        try:
            size = parse_size(self.size.text())
        except ValueError as exc:
            return str(exc)
        fmt, prealloc, qemu_img = (
            self.format.currentData(),
            self.prealloc.currentData(),
            self.qemu_img,
        )
        return lambda: plan_new(path, size, fmt, prealloc, qemu_img=qemu_img)
