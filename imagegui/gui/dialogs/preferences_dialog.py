"""Preferences: the qemu binaries, launch defaults, overlay defaults, automatic rescans and the
appearance (the desktop's colours, light or dark; applied at once)."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from imagegui.gui import a11y, theme
from imagegui.gui.dialogs.fields import PathField, backing_choice
from imagegui.gui.settings import OverlayDefaults, Settings


class PreferencesDialog(QDialog):
    def __init__(self, settings: Settings, parent: QWidget | None = None):
        super().__init__(parent)
        self.settings = settings
        self.setWindowTitle("Preferences")
        self.setMinimumWidth(560)
        self.qemu_img = PathField(settings.qemu_img(), "open", "qemu-img binary")
        self.qemu_img.edit.setPlaceholderText("qemu-img on PATH")
        self.qemu_img.setToolTip("Runs every clone, rebase, commit, flatten and check")
        self.qemu_system = PathField(settings.qemu_system(), "open", "qemu-system binary")
        self.qemu_system.edit.setPlaceholderText("qemu-system-x86_64 on PATH")
        self.memory = QSpinBox()
        self.memory.setRange(64, 1 << 20)
        self.memory.setSingleStep(256)
        self.memory.setSuffix(" MiB")
        self.memory.setValue(settings.memory_mib())
        self.cpus = QSpinBox()
        self.cpus.setRange(1, 256)
        self.cpus.setValue(settings.cpus())
        overlay = settings.overlay_defaults()
        self.pattern = QLineEdit(overlay.pattern)
        self.pattern.setToolTip("{stem}: the base's name without extension; {ext}: its extension")
        self.backing = backing_choice(overlay.absolute)
        self.auto = QCheckBox("Rescan automatically when files in the directory change")
        self.auto.setChecked(settings.auto_rescan())
        self.appearance = QComboBox()
        for label, value in (
            ("System", theme.SYSTEM),
            ("Light", theme.LIGHT),
            ("Dark", theme.DARK),
        ):
            self.appearance.addItem(label, value)
        self.appearance.setCurrentIndex(self.appearance.findData(settings.appearance()))
        self.appearance.setToolTip("System follows the desktop's colours")

        qemu = QGroupBox("QEMU")
        form = QFormLayout(qemu)
        form.addRow("qemu-img:", self.qemu_img)
        form.addRow("qemu-system:", self.qemu_system)
        form.addRow("VM memory:", self.memory)
        form.addRow("VM CPUs:", self.cpus)
        overlays = QGroupBox("New overlays")
        form = QFormLayout(overlays)
        form.addRow("Name:", self.pattern)
        form.addRow("Backing path:", self.backing)
        self.wheel_zooms = QCheckBox("The mouse wheel zooms the graph (Ctrl+wheel scrolls)")
        self.wheel_zooms.setChecked(settings.wheel_zooms())
        look = QGroupBox("Window")
        form = QFormLayout(look)
        form.addRow("Appearance:", self.appearance)
        form.addRow(self.wheel_zooms)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        box = QVBoxLayout(self)
        box.addWidget(qemu)
        box.addWidget(overlays)
        box.addWidget(look)
        box.addWidget(self.auto)
        box.addStretch(1)
        box.addWidget(buttons)
        a11y.name_dialog(self)

    def accept(self) -> None:
        s = self.settings
        s.set_qemu_img(self.qemu_img.edit.text().strip())
        s.set_qemu_system(self.qemu_system.edit.text().strip())
        s.set_memory_mib(self.memory.value())
        s.set_cpus(self.cpus.value())
        pattern = self.pattern.text().strip() or OverlayDefaults.pattern
        s.set_overlay_defaults(OverlayDefaults(self.backing.value() == "absolute", pattern))
        s.set_auto_rescan(self.auto.isChecked())
        s.set_wheel_zooms(self.wheel_zooms.isChecked())
        appearance = self.appearance.currentData()
        if appearance != s.appearance():
            s.set_appearance(appearance)
            app = QApplication.instance()
            if isinstance(app, QApplication):
                theme.apply_appearance(app, appearance)
        super().accept()
