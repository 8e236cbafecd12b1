"""Flatten…: copy an image's whole chain into one new independent qcow2 (the chain only read)."""

from __future__ import annotations

import os
from collections.abc import Callable

from PySide6.QtWidgets import QWidget

from imagegui.core.ops.flatten import plan_flatten
from imagegui.core.ops.plan import Plan
from imagegui.core.read.model import ImageInfo
from imagegui.core.units import display_path
from imagegui.core.virt.inventory import DomainSource
from imagegui.gui.dialogs.fields import PathField, unique_path
from imagegui.gui.dialogs.plan_dialog import PlanDialog, scan_roots


class FlattenDialog(PlanDialog):
    def __init__(
        self,
        image: ImageInfo,
        taken: set[str],
        parent: QWidget | None = None,
        root: str = "",
        qemu_img: str = "",
        domains: DomainSource | None = None,
    ):
        super().__init__("Flatten", "Flatten", parent, qemu_img=qemu_img, domains=domains)
        self.image = image
        self.root = root
        self.intro.setText(
            f"Write everything <b>{display_path(image.name)}</b> shows - its own data and its "
            "whole backing chain - into one new qcow2 with no backing file. Nothing existing is "
            "changed; the new file appears only once it is complete."
        )
        stem = os.path.splitext(image.name)[0]
        if image.name == "disk":
            stem = os.path.basename(os.path.dirname(image.path))[:12]
        self.target = PathField(
            unique_path(os.path.dirname(image.path), f"{stem}-flat.qcow2", taken),
            "save",
            "Flattened copy",
        )
        self.form.addRow("New image:", self.target)
        self.target.changed.connect(self.fields_changed)
        self.replan()

    @property
    def out_path(self) -> str:
        return self.target.path()

    def planner(self) -> Callable[[], Plan] | str:
        out = self.target.path()
        if not out:
            return "Enter a name for the flattened image."
        image, roots, allow = self.image.path, scan_roots(self.root), self.allowed_files()
        qemu_img, domains = self.qemu_img, self.domains
        return lambda: plan_flatten(
            image, out, roots=roots, allow=allow, qemu_img=qemu_img, domains=domains
        )
