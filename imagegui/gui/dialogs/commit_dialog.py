"""Commit…: write an overlay into its backing file, but never silently into a shared base.

Every other image that uses the same backing file (and everything built on those) would see the
base change under it: the dialog lists them from the scan at once, the plan's guard refuses, and
only an explicit "they may be thrown away" lifts the refusal.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from PySide6.QtWidgets import QCheckBox, QLabel, QListWidget, QWidget

from imagegui.core.model import ImageInfo
from imagegui.core.operations import Plan, plan_commit
from imagegui.core.units import display_path
from imagegui.gui import resources
from imagegui.gui.dialogs.plan_dialog import PlanDialog
from imagegui.gui.snapshot import Snapshot


def affected_overlays(snapshot: Snapshot, image: str) -> list[str]:
    """Images other than ``image`` (and its own overlays) whose content comes from its backing."""
    graph = snapshot.graph
    base = graph.backing_of(image)
    if base is None:
        return []
    own = {image, *graph.descendants(image)}
    return sorted(p for p in graph.descendants(base) if p not in own)


class CommitDialog(PlanDialog):
    def __init__(self, image: ImageInfo, snapshot: Snapshot, parent: QWidget | None = None):
        super().__init__("Commit", "Commit", parent)
        self.image = image
        self.root = snapshot.root
        base = snapshot.graph.backing_of(image.path) or "?"
        self.siblings = affected_overlays(snapshot, image.path)
        self.intro.setText(
            f"Write the data stored in <b>{display_path(image.name)}</b> into its backing file "
            f"<b>{display_path(os.path.basename(base))}</b>. Afterwards the overlay is empty and "
            "the base holds its changes."
        )
        self.others = QListWidget()
        rows = max(1, min(len(self.siblings), 6))
        self.others.setFixedHeight(rows * self.others.fontMetrics().height() * 3 // 2 + 8)
        for path in self.siblings:
            self.others.addItem(display_path(os.path.relpath(path, self.root)))
            self.others.item(self.others.count() - 1).setIcon(resources.icon("state-warning"))
            self.others.item(self.others.count() - 1).setToolTip(path)
        self.force = QCheckBox(
            f"Commit anyway: the {len(self.siblings)} image(s) above may be thrown away"
        )
        self.force.setToolTip(
            "They will show a mix of their own data and the committed overlay's: corrupted"
        )
        if self.siblings:
            warning = QLabel(
                f"{len(self.siblings)} other image(s) also read from "
                "this backing file and would silently change:"
            )
            warning.setObjectName("danger")  # red and bold from the style sheet (gui/theme.py)
            warning.setWordWrap(True)
            self.form.addRow(warning)
            self.form.addRow(self.others)
            self.form.addRow(self.force)
        else:
            self.others.hide()
            self.force.hide()
            self.form.addRow(QLabel("No other image uses this backing file."))
        self.force.toggled.connect(self._on_force_toggled)
        self.replan()

    def _on_force_toggled(self, checked: bool) -> None:
        self.ok_button.setText("Commit and corrupt them" if checked else "Commit")
        self.fields_changed()

    def planner(self) -> Callable[[], Plan] | str:
        image, force, roots = self.image.path, self.force.isChecked(), (self.root,)
        return lambda: plan_commit(image, force=force, roots=roots)
