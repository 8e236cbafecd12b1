"""Launch in QEMU…: boot an image; a base that has overlays only read-only or as a snapshot.

"Run with" chooses who owns the VM: this window's qemu (it stops with imagegui unless kept
running) or libvirt (a defined domain whose disk the image is, else a transient one: it keeps
running and appears in virt-manager). Whether libvirt answers is asked on a worker when the
dialog opens; until it has answered, and when it does not, the libvirt choice is off with the
reason in its tooltip.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QSpinBox, QWidget

from imagegui.core.jobs import Job
from imagegui.core.ops.launch import LaunchOptions, plan_launch
from imagegui.core.ops.launchvirt import LibvirtLaunchPlan, plan_launch_libvirt, unreachable
from imagegui.core.ops.plan import Plan
from imagegui.core.qemu.vm import QEMU_SYSTEM
from imagegui.core.read.model import ImageInfo
from imagegui.core.units import display_path
from imagegui.core.virt.inventory import DomainSource
from imagegui.gui.dialogs.fields import Choice
from imagegui.gui.dialogs.plan_dialog import PlanDialog
from imagegui.gui.workers import TaskSlot

ACCELERATORS = [
    ("auto", "Automatic (KVM when available)"),
    ("kvm", "KVM (hardware)"),
    ("tcg", "TCG (software emulation)"),
]


RUNNERS = [
    (
        "qemu",
        "This window's QEMU (stops with imagegui)",
        "imagegui runs the VM itself; the VMs panel stops it, and it stops when imagegui quits "
        "unless you keep it running",
    ),
    (
        "libvirt",
        "libvirt (keeps running; appears in virt-manager)",
        "libvirt runs the VM: the VM whose disk this image is starts as it is defined, any other "
        "image starts in a VM that libvirt forgets when it stops",
    ),
]


def has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class LaunchDialog(PlanDialog):
    #: libvirt answered (None) or why it cannot run the VM; tests wait for it.
    libvirtChecked = Signal(object)

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
        runner: str = "qemu",
        libvirt_uri: str = "",
        domains: DomainSource | None = None,
    ):
        super().__init__("Launch in QEMU", "Launch", parent, domains=domains)
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
        #: The libvirt connection to launch through ("" when none is set on this machine).
        self.libvirt_uri = libvirt_uri
        self.runner = Choice(RUNNERS, runner if runner in ("qemu", "libvirt") else "qemu")
        self.libvirt_button = self.runner.buttons["libvirt"]
        #: Why libvirt cannot run it (None once its daemon answered); asked on a worker.
        self.libvirt_reason: str | None = "Checking whether libvirt answers…"
        self.libvirt_button.setEnabled(False)
        self.libvirt_button.setToolTip(self.libvirt_reason)
        self._libvirt_check = TaskSlot(
            self, on_done=self._on_libvirt_checked, on_failed=self._on_libvirt_checked
        )
        self.headless = QCheckBox("Headless (no display window)")
        self.headless.setChecked(not has_display())
        self.remember = QCheckBox("Remember memory, CPUs and accelerator")
        self.remember.setChecked(True)
        self._tips = {w: w.toolTip() for w in (self.memory, self.cpus, self.accel)}
        self.form.addRow("Run with:", self.runner)
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
        self.runner.changed.connect(self._on_runner_changed)
        self.planReady.connect(self._on_launch_planned)
        self._on_runner_changed(replan=False)
        self.replan()
        self._check_libvirt()

    # -- libvirt or not

    def _check_libvirt(self) -> None:
        uri = self.libvirt_uri
        if not uri:
            self._on_libvirt_checked(
                "no libvirt connection on this machine is set (File ▸ Connect to libvirt…)"
            )
            return
        self._libvirt_check.start(Job("ask libvirt", lambda p, c: unreachable(uri)))

    def _on_libvirt_checked(self, reason: object) -> None:
        self.libvirt_reason = None if reason is None else str(reason)
        self.libvirt_button.setEnabled(reason is None)
        if reason is None:
            tip = RUNNERS[1][2] + f" (at {self.libvirt_uri})"
        else:
            tip = f"Not available: {reason}"
        self.libvirt_button.setToolTip(display_path(tip))
        if reason is not None and self.runner.value() == "libvirt":
            self.runner.set_value("qemu")  # replans
        self.libvirtChecked.emit(self.libvirt_reason)

    def _on_launch_planned(self, plan: object) -> None:
        """A VM that libvirt has defined starts with its own memory, CPUs and accelerator:
        those fields are off while it is the one that starts."""
        own = plan.domain if isinstance(plan, LibvirtLaunchPlan) and not plan.transient else ""
        for widget, tip in self._tips.items():
            widget.setEnabled(not own)
            widget.setToolTip(f"{own} starts with its own settings" if own else tip)

    def uses_libvirt(self) -> bool:
        return self.runner.value() == "libvirt"

    def _on_runner_changed(self, replan: bool = True) -> None:
        """libvirt's VM always has a screen (virt-viewer, virt-manager) and no snapshot disk."""
        libvirt = self.uses_libvirt()
        self.headless.setEnabled(not libvirt)
        self.headless.setToolTip(
            "A VM run by libvirt always has a screen: open it in virt-viewer or virt-manager"
            if libvirt
            else ""
        )
        snapshot = self.disk.buttons["snapshot"]
        snapshot.setEnabled(not libvirt)
        if libvirt and self.disk.value() == "snapshot":
            self.disk.set_value("readonly")
        if replan:
            self.fields_changed()

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
        if self.uses_libvirt():
            uri = self.libvirt_uri
            return lambda: plan_launch_libvirt(image, opts, uri, roots, allow)
        domains = self.domains
        return lambda: plan_launch(image, opts, roots, allow=allow, domains=domains)
