"""Resize…: grow an image's virtual disk (or shrink it, when asked for in so many words)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QCheckBox, QLineEdit, QWidget

from imagegui.core.ops.plan import Plan
from imagegui.core.ops.resize import plan_resize
from imagegui.core.read.model import ImageInfo
from imagegui.core.units import display_path, human_size, parse_size
from imagegui.core.virt.inventory import DomainSource
from imagegui.gui.dialogs.plan_dialog import PlanDialog, scan_roots


class ResizeDialog(PlanDialog):
    def __init__(
        self,
        image: ImageInfo,
        parent: QWidget | None = None,
        root: str = "",
        qemu_img: str = "",
        domains: DomainSource | None = None,
    ):
        super().__init__("Resize", "Resize", parent, qemu_img=qemu_img, domains=domains)
        self.image = image
        self.root = root
        self.intro.setText(
            f"Change the size of the disk the guest of <b>{display_path(image.name)}</b> sees "
            f"(now {human_size(image.virtual_size)}). After growing it, grow the partitions "
            "and file systems inside the guest to use the new space."
        )
        self.size = QLineEdit(human_size(image.virtual_size * 2).replace(" ", "").replace("i", ""))
        self.size.setAccessibleName("New virtual size")
        self.size.setToolTip("The new virtual size, e.g. 40G, or a change of it, e.g. +10G")
        self.shrink = QCheckBox(
            "Allow shrinking (the end of the disk is removed: shrink the guest's partitions first)"
        )
        self.shrink.setAccessibleName("Allow shrinking the disk")
        self.shrink.setToolTip(
            "Shrinking removes the end of the disk and whatever the guest keeps there; it "
            "cannot be undone"
        )
        self.form.addRow("&New size:", self.size)
        self.form.addRow("", self.shrink)
        self.add_override("Resize", image.name)
        self.size.textChanged.connect(self.fields_changed)
        self.shrink.toggled.connect(self.fields_changed)
        self.replan()

    def run_text(self, plan: Plan | None) -> str:
        if plan is not None and getattr(plan, "new_size", 0) < getattr(plan, "old_size", 0):
            return "Shrink and cut off the end"
        return self.ok_text

    def destructive_fields(self) -> bool:
        # A shrink asked for cannot be undone: Enter must not do that.
        box = getattr(self, "shrink", None)
        return box is not None and box.isChecked()

    def planner(self) -> Callable[[], Plan] | str:
        text = self.size.text().strip()
        relative = text[:1] in "+-"
        try:
            value = parse_size(text[1:] if relative else text)
        except ValueError as exc:
            return str(exc)
        size = -value if text[:1] == "-" else value
        image, shrink, force = self.image.path, self.shrink.isChecked(), self.overriding()
        roots, allow = scan_roots(self.root), self.allowed_files()
        qemu_img, domains = self.qemu_img, self.domains
        return lambda: plan_resize(
            image, size, relative=relative, shrink=shrink, force=force, roots=roots,
            allow=allow, qemu_img=qemu_img, domains=domains,
        )  # fmt: skip
