"""Small field widgets the operation dialogs share."""

from __future__ import annotations

import os

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QFileDialog,
    QHBoxLayout,
    QLineEdit,
    QRadioButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from imagegui.core.read.backing import canonical
from imagegui.gui import resources


class PathField(QWidget):
    """A path line edit with a Browse… button (a file to save, a file to open, or a directory)."""

    changed = Signal()

    def __init__(self, path: str = "", mode: str = "save", caption: str = "Choose a file"):
        super().__init__()
        self.mode = mode
        self.caption = caption
        self.edit = QLineEdit(path)
        self.edit.setClearButtonEnabled(True)
        self.edit.textChanged.connect(self.changed)
        self.browse = QToolButton()
        self.browse.setIcon(resources.icon("document-open"))
        self.browse.setText("Browse…")
        self.browse.setToolTip("Choose with a file dialog")
        self.browse.clicked.connect(self._on_browse_clicked)
        box = QHBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.edit, 1)
        box.addWidget(self.browse)

    def path(self) -> str:
        text = self.edit.text().strip()
        return canonical(os.path.expanduser(text)) if text else ""

    def set_path(self, path: str) -> None:
        self.edit.setText(path)

    def _on_browse_clicked(self) -> None:
        start = self.path() or os.getcwd()
        if self.mode == "save":
            chosen, _ = QFileDialog.getSaveFileName(
                self, self.caption, start, "qcow2 images (*.qcow2);;All files (*)"
            )
        elif self.mode == "open":
            chosen, _ = QFileDialog.getOpenFileName(
                self,
                self.caption,
                os.path.dirname(start),
                "Disk images (*.qcow2 *.qcow *.qed *.img *.raw *.vmdk *.vhd *.vhdx);;All files (*)",
            )
        else:
            chosen = QFileDialog.getExistingDirectory(self, self.caption, start)
        if chosen:
            self.edit.setText(chosen)


class Choice(QWidget):
    """Radio buttons, one per (key, label, tooltip); ``value()`` is the chosen key."""

    changed = Signal()

    def __init__(self, options: list[tuple[str, str, str]], current: str):
        super().__init__()
        self.group = QButtonGroup(self)
        self.buttons: dict[str, QRadioButton] = {}
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(2)
        for key, label, tip in options:
            button = QRadioButton(label)
            button.setToolTip(tip)
            button.setChecked(key == current)
            self.group.addButton(button)
            self.buttons[key] = button
            box.addWidget(button)
        self.group.buttonToggled.connect(self._on_toggled)

    def value(self) -> str:
        return next((k for k, b in self.buttons.items() if b.isChecked()), "")

    def set_value(self, key: str) -> None:
        self.buttons[key].setChecked(True)

    def _on_toggled(self, _button, checked: bool) -> None:
        if checked:
            self.changed.emit()


def backing_choice(absolute: bool) -> Choice:
    return Choice(
        [
            (
                "relative",
                "Relative path (move the files together)",
                "Stores the base's path relative to the new image's directory: survives moving "
                "or copying the whole directory",
            ),
            (
                "absolute",
                "Absolute path (move the overlay alone)",
                "Stores the base's full path: survives moving the overlay, breaks if the base "
                "moves (OpenStack Nova does this)",
            ),
        ],
        "absolute" if absolute else "relative",
    )


def unique_path(directory: str, name: str, taken: set[str]) -> str:
    """``directory/name``, or ``name-2``, ``name-3`` ... if a scanned file already has it (known
    from the scan: no disk access in the GUI thread; the plan's guard checks the disk)."""
    stem, ext = os.path.splitext(name)
    candidate = os.path.join(directory, name)
    n = 2
    while candidate in taken:
        candidate = os.path.join(directory, f"{stem}-{n}{ext}")
        n += 1
    return candidate
