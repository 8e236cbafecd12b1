"""Launch in QEMU…: boot an image; a base that has overlays only read-only or as a snapshot."""

from __future__ import annotations

import os
from collections.abc import Callable

from PySide6.QtWidgets import QCheckBox, QComboBox, QSpinBox, QWidget

from imagegui.core.ops.launch import LaunchOptions, plan_launch
from imagegui.core.ops.plan import Plan
from imagegui.core.qemu.vm import QEMU_SYSTEM
from imagegui.core.read.model import ImageInfo
from imagegui.core.units import display_path
from imagegui.gui.dialogs.fields import Choice
from imagegui.gui.dialogs.plan_dialog import PlanDialog

ACCELERATORS = [
    ("auto", "Automatic (KVM when available)"),
    ("kvm", "KVM (hardware)"),
    ("tcg", "TCG (software emulation)"),
]


def has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class LaunchDialog(PlanDialog):
    def __init__(
        self,
        image: ImageInfo,
        overlays: int,
        root: str,
        memory: int,
        cpus: int,
        qemu_system: str = "",
        accel: str = "auto",
        parent: QWidget | None = None,
    ):
        super().__init__("Launch in QEMU", "Launch", parent)
        self.image = image
        self.root = root
        self.qemu_system = qemu_system
        self.overlays = overlays
        note = ""
        if overlays:
            note = (
                f" It is the backing file of {overlays} image(s): booting it writable would "
                "corrupt them, so it starts as a snapshot or read-only."
            )
        self.intro.setText(
            f"Boot <b>{display_path(image.name)}</b> in a new virtual machine.{note}"
        )
        self.memory = QSpinBox()
        self.memory.setRange(64, 1 << 20)
        self.memory.setSingleStep(256)
        self.memory.setSuffix(" MiB")
        self.memory.setValue(memory)
        self.cpus = QSpinBox()
        self.cpus.setRange(1, max(1, os.cpu_count() or 1) * 2)
        self.cpus.setValue(cpus)
        self.disk = Choice(
            [
                ("writable", "Writable: the guest writes to this image", "the normal way to run"),
                (
                    "snapshot",
                    "Snapshot: the guest's writes are thrown away when it stops",
                    "qemu snapshot=on: writes go to a temporary overlay; the image stays untouched",
                ),
                ("readonly", "Read-only disk", "the guest sees a read-only disk"),
            ],
            "snapshot" if overlays else "writable",
        )
        if overlays:
            self.disk.buttons["writable"].setEnabled(False)
            self.disk.buttons["writable"].setToolTip(
                "Not for a base with overlays: writing to it corrupts every overlay"
            )
        self.accel = QComboBox()
        for key, label in ACCELERATORS:
            self.accel.addItem(label, key)
        self.accel.setCurrentIndex(max(0, [k for k, _ in ACCELERATORS].index(accel)))
        self.accel.setToolTip(
            "KVM runs the guest at native speed; TCG emulates the CPU in software (slow, but works "
            "where KVM is missing or broken, e.g. nested virtualisation)"
        )
        self.headless = QCheckBox("Headless (no display window)")
        self.headless.setChecked(not has_display())
        self.remember = QCheckBox("Remember memory, CPUs and accelerator")
        self.remember.setChecked(True)
        self.form.addRow("Memory:", self.memory)
        self.form.addRow("CPUs:", self.cpus)
        self.form.addRow("Disk:", self.disk)
        self.form.addRow("Accelerator:", self.accel)
        self.form.addRow("", self.headless)
        self.form.addRow("", self.remember)
        for signal in (self.memory.valueChanged, self.cpus.valueChanged):
            signal.connect(self.fields_changed)
        self.disk.changed.connect(self.fields_changed)
        self.headless.toggled.connect(self.fields_changed)
        self.accel.currentIndexChanged.connect(self.fields_changed)
        self.replan()

    def options(self) -> LaunchOptions:
        mode = self.disk.value()
        return LaunchOptions(
            memory=self.memory.value(),
            cpus=self.cpus.value(),
            snapshot=mode == "snapshot",
            readonly=mode == "readonly",
            headless=self.headless.isChecked(),
            accel=None if self.accel_key() == "auto" else self.accel_key(),
            binary=self.qemu_system or QEMU_SYSTEM,
        )

    def accel_key(self) -> str:
        return str(self.accel.currentData())

    def planner(self) -> Callable[[], Plan] | str:
        if self.overlays and self.disk.value() == "writable":
            return "A base with overlays starts only as a snapshot or read-only."
        image, opts, roots = self.image.path, self.options(), (self.root,)
        allow = self.allowed_files()
        return lambda: plan_launch(image, opts, roots, allow=allow)
