"""Create overlay…: a qcow2 linked clone of the selected image, the command shown before it runs."""

from __future__ import annotations

import os
from collections.abc import Callable

from PySide6.QtWidgets import QCheckBox, QLineEdit, QWidget

from imagegui.core.ops.overlay import plan_overlay
from imagegui.core.ops.plan import Plan
from imagegui.core.read.model import ImageInfo
from imagegui.core.units import display_path, human_size, parse_size
from imagegui.core.virt.inventory import DomainSource
from imagegui.gui.dialogs.fields import PathField, backing_choice, unique_path
from imagegui.gui.dialogs.plan_dialog import PlanDialog, scan_roots
from imagegui.gui.settings import OverlayDefaults


def default_name(base: str, pattern: str) -> str:
    name = os.path.basename(base)
    stem, ext = os.path.splitext(name)
    if name == "disk" or len(stem) == 40:  # Nova instance disk / _base file: name after the dir
        stem = os.path.basename(os.path.dirname(base))[:12] or stem
    try:
        return pattern.format(stem=stem, ext=ext or ".qcow2")
    except (KeyError, IndexError, ValueError):
        return f"{stem}-overlay.qcow2"


class OverlayDialog(PlanDialog):
    def __init__(
        self,
        base: ImageInfo,
        defaults: OverlayDefaults,
        taken: set[str],
        parent: QWidget | None = None,
        root: str = "",
        qemu_img: str = "",
        domains: DomainSource | None = None,
    ):
        super().__init__("Create Overlay", "Create", parent, qemu_img=qemu_img, domains=domains)
        self.base = base
        self.root = root
        self.intro.setText(
            f"A new qcow2 image that starts empty, shows everything <b>{display_path(base.name)}"
            "</b> contains, and stores only what the guest changes. The base must stay unchanged "
            "from now on."
        )
        directory = os.path.dirname(base.path)
        self.target = PathField(
            unique_path(directory, default_name(base.path, defaults.pattern), taken),
            "save",
            "New overlay",
        )
        self.target.setToolTip(
            "Where the new overlay is created; an existing file is never replaced"
        )
        self.size = QLineEdit()
        self.size.setPlaceholderText(f"same as the base ({human_size(base.virtual_size)})")
        self.size.setToolTip("Virtual size, e.g. 40G; at least the base's size")
        self.backing = backing_choice(defaults.absolute)
        self.remember = QCheckBox("Use this path style by default")
        self.form.addRow("New image:", self.target)
        self.form.addRow("Virtual size:", self.size)
        self.form.addRow("Backing path:", self.backing)
        self.form.addRow("", self.remember)
        self.target.changed.connect(self.fields_changed)
        self.size.textChanged.connect(self.fields_changed)
        self.backing.changed.connect(self.fields_changed)
        self.replan()

    @property
    def new_path(self) -> str:
        return self.target.path()

    def planner(self) -> Callable[[], Plan] | str:
        new = self.target.path()
        if not new:
            return "Enter a name for the new image."
        size = None
        if self.size.text().strip():
            try:
                size = parse_size(self.size.text())
            except ValueError as exc:
                return str(exc)
        base = self.base.path
        absolute = self.backing.value() == "absolute"
        roots, allow = scan_roots(self.root), self.allowed_files()
        qemu_img, domains = self.qemu_img, self.domains
        return lambda: plan_overlay(
            base,
            new,
            size,
            absolute,
            roots=roots,
            allow=allow,
            qemu_img=qemu_img,
            domains=domains,
        )

    def chosen_defaults(self, current: OverlayDefaults) -> OverlayDefaults | None:
        """New defaults to remember, if the user asked."""
        if not self.remember.isChecked():
            return None
        return OverlayDefaults(self.backing.value() == "absolute", current.pattern)
