"""Convert…: copy an image into another format (VMware, Hyper-V, VHD, raw, qcow2) as a new file;
an overlay flattened or kept on its backing file. The source is only read."""

from __future__ import annotations

import os
from collections.abc import Callable

from PySide6.QtWidgets import QCheckBox, QComboBox, QWidget

from imagegui.core.ops.convert import COMPRESSIBLE, OUT_FORMATS, plan_convert
from imagegui.core.ops.plan import Plan
from imagegui.core.read.model import ImageInfo
from imagegui.core.units import display_path
from imagegui.core.virt.inventory import DomainSource
from imagegui.gui.dialogs.fields import PathField, unique_path
from imagegui.gui.dialogs.plan_dialog import PlanDialog, scan_roots

#: The file name extension each output format is usually given.
EXTENSIONS = {"qcow2": "qcow2", "raw": "img", "vmdk": "vmdk", "vhdx": "vhdx", "vpc": "vhd"}
LABELS = {
    "qcow2": "qcow2 (QEMU/KVM)",
    "raw": "raw (plain disk image)",
    "vmdk": "VMDK (VMware)",
    "vhdx": "VHDX (Hyper-V)",
    "vpc": "VHD (Virtual PC, Azure)",
}


class ConvertDialog(PlanDialog):
    def __init__(
        self,
        image: ImageInfo,
        taken: set[str],
        parent: QWidget | None = None,
        root: str = "",
        qemu_img: str = "",
        domains: DomainSource | None = None,
    ):
        super().__init__("Convert", "Convert", parent, qemu_img=qemu_img, domains=domains)
        self.image = image
        self.root = root
        self.taken = taken
        self.intro.setText(
            f"Write <b>{display_path(image.name)}</b> as a new image in another format. Nothing "
            "existing is changed; the new file appears only once it is complete."
        )
        self.format = QComboBox()
        self.format.setAccessibleName("Format of the new image")
        for key in OUT_FORMATS:
            self.format.addItem(LABELS[key], key)
        start = "vmdk" if image.format == "qcow2" else "qcow2"
        self.format.setCurrentIndex(list(OUT_FORMATS).index(start))
        self.target = PathField(self._suggested(start), "save", "Converted copy")
        self.compress = QCheckBox("Compress the data (smaller file, slower to write)")
        self.keep = QCheckBox("Keep its backing file (copy only this overlay's own data)")
        self.keep.setVisible(bool(image.backing_file))
        self.form.addRow("Format:", self.format)
        self.form.addRow("New image:", self.target)
        self.form.addRow("", self.compress)
        self.form.addRow("", self.keep)
        self.format.currentIndexChanged.connect(self._on_format_changed)
        self.target.changed.connect(self.fields_changed)
        self.compress.toggled.connect(self.fields_changed)
        self.keep.toggled.connect(self.fields_changed)
        self._on_format_changed()

    def _suggested(self, fmt: str) -> str:
        stem = os.path.splitext(self.image.name)[0]
        directory = os.path.dirname(self.image.path)
        return unique_path(directory, f"{stem}.{EXTENSIONS[fmt]}", self.taken)

    def _on_format_changed(self) -> None:
        fmt = self.format.currentData()
        self.target.set_path(self._suggested(fmt))
        self.compress.setEnabled(fmt in COMPRESSIBLE)
        if fmt not in COMPRESSIBLE:
            self.compress.setChecked(False)
        self.keep.setEnabled(fmt == "qcow2")
        if fmt != "qcow2":
            self.keep.setChecked(False)
        self.fields_changed()

    @property
    def out_path(self) -> str:
        return self.target.path()

    def planner(self) -> Callable[[], Plan] | str:
        out = self.target.path()
        if not out:
            return "Enter a name for the converted image."
        image, fmt = self.image.path, self.format.currentData()
        compress, keep = self.compress.isChecked(), self.keep.isChecked()
        roots, allow = scan_roots(self.root), self.allowed_files()
        qemu_img, domains = self.qemu_img, self.domains
        return lambda: plan_convert(
            image, out, fmt, compress=compress, keep_backing=keep, roots=roots, allow=allow,
            qemu_img=qemu_img, domains=domains,
        )  # fmt: skip
