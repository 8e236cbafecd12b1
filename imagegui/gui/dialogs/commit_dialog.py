"""Commit…: write an overlay into its backing file, but never silently into a shared base.

Every other image that uses the same backing file (and everything built on those) would see the
base change under it: the dialog lists them from the scan at once, the plan's guard refuses, and
only an explicit "they may be thrown away" lifts the refusal.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QLabel, QListWidget, QWidget

from imagegui.core.ops.commit import plan_commit
from imagegui.core.ops.plan import Finding, Plan
from imagegui.core.read.model import ImageInfo
from imagegui.core.units import display_path
from imagegui.core.virt.inventory import DomainSource
from imagegui.gui import resources
from imagegui.gui.dialogs.plan_dialog import PlanDialog, count_paths, forced_findings
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
    def __init__(
        self,
        image: ImageInfo,
        snapshot: Snapshot,
        parent: QWidget | None = None,
        qemu_img: str = "",
        domains: DomainSource | None = None,
    ):
        super().__init__("Commit", "Commit", parent, qemu_img=qemu_img, domains=domains)
        self.image = image
        self.root = snapshot.root
        self.base = snapshot.graph.backing_of(image.path) or "?"
        self.base_name = os.path.basename(self.base)
        self.siblings = affected_overlays(snapshot, image.path)
        self.intro.setText(
            f"Write the data stored in <b>{display_path(image.name)}</b> into its backing file "
            f"<b>{display_path(self.base_name)}</b>. Afterwards the overlay is empty and "
            "the base holds its changes."
        )
        # The one place the victims are named; the verdict and the checks refer to it by count.
        self.others = QListWidget()
        self.others.setObjectName("victims")
        self.others.setAccessibleName("Other images on this backing file")
        self.warning = QLabel()
        self.warning.setObjectName("danger")  # red and bold from the style sheet (gui/theme.py)
        self.warning.setWordWrap(True)
        self.warning.setTextFormat(Qt.TextFormat.PlainText)
        self.force = QCheckBox()
        self.force.setToolTip(
            "They will show a mix of their own data and the committed overlay's: corrupted"
        )
        for path in self.siblings:
            self._add_victim(path)
        self._update_counts()
        self.form.addRow(self.warning)
        self.form.addRow(self.others)
        self.form.addRow(self.force)
        self.none_label = QLabel("No other image uses this backing file.")
        self.form.addRow(self.none_label)
        self._show_victims(bool(self.siblings))
        self.force.toggled.connect(self._on_force_toggled)
        self.replan()

    # -- the victims

    def victims(self) -> list[str]:
        return [self.others.item(i).toolTip() for i in range(self.others.count())]

    def _add_victim(self, path: str, outside: bool = False) -> None:
        rel = os.path.relpath(path, self.root)
        self.others.addItem(display_path(path if rel.startswith("..") else rel))
        item = self.others.item(self.others.count() - 1)
        item.setIcon(resources.icon("state-warning"))
        item.setToolTip(path)
        if outside:
            item.setText(item.text() + "  (outside the opened directory)")

    def _update_counts(self) -> None:
        n = self.others.count()
        rows = max(1, min(n, 10))
        row = max(self.others.sizeHintForRow(0), self.others.fontMetrics().height() + 6)
        self.others.setFixedHeight(rows * row + 2 * self.others.frameWidth() + 2)
        self.warning.setText(
            f"{_images(n)} other than this one also read from "
            f"{display_path(self.base_name)} and would silently change:"
        )
        self.force.setText(f"Commit anyway: the {_images(n)} listed above may be thrown away")

    def _show_victims(self, shown: bool) -> None:
        for widget in (self.warning, self.others, self.force):
            self.form.setRowVisible(widget, shown)
        self.form.setRowVisible(self.none_label, not shown)

    def _on_planned(self, plan: Plan) -> None:
        # The guard also looks beside the opened directory: add what it found there to the list.
        known = set(self.victims())
        extra = [
            p for f in plan.findings if f.code == "shared-base" for p in f.paths if p not in known
        ]
        if extra:
            for path in sorted(extra):
                self._add_victim(path, outside=True)
            self._update_counts()
            self._show_victims(True)
        super()._on_planned(plan)

    # -- wording

    def destructive_fields(self) -> bool:
        return True  # a commit rewrites its base, whatever the guards say

    def run_text(self, plan: Plan | None) -> str:
        text = f"Commit into {_short(display_path(self.base_name))}"
        if self.force.isChecked() and self.others.count():
            text += f" and corrupt {_images(self.others.count())}"
        return text

    def describe_finding(self, finding: Finding) -> str:
        if finding.code == "shared-base":
            return (
                f"{display_path(self.base_name)} is also the backing file of the "
                f"{_images(self.others.count())} listed above: committing changes what they see "
                "and silently corrupts them. Flatten or rebase them first, or commit anyway if "
                "they can be thrown away"
            )
        return super().describe_finding(finding)

    def refused_text(self, plan: Plan) -> str:
        if all(f.code == "shared-base" for f in plan.blocking()):
            return (
                f"Refused: committing would corrupt the {_images(self.others.count())} listed "
                "above."
            )
        return super().refused_text(plan)

    def forced_text(self, plan: Plan) -> str:
        # The same override lifts a shut-off VM's refusal: that VM is named too.
        others = [f for f in forced_findings(plan) if f.code != "shared-base"]
        text = f"Forced: {_images(self.others.count())} will be corrupted (listed above)"
        if not self.others.count():
            return super().forced_text(plan)
        return "; ".join([text, *(count_paths(self.describe_finding(f)) for f in others)]) + "."

    def _on_force_toggled(self, checked: bool) -> None:
        self.require_confirmation(self.base_name if checked else None)
        self.fields_changed()

    def planner(self) -> Callable[[], Plan] | str:
        image, force, roots = self.image.path, self.force.isChecked(), (self.root,)
        allow = self.allowed_files()
        qemu_img, domains = self.qemu_img, self.domains
        return lambda: plan_commit(
            image, force=force, roots=roots, allow=allow, qemu_img=qemu_img, domains=domains
        )


def _short(name: str, limit: int = 28) -> str:
    """A long name (a Nova base is 40 hex digits) elided in the middle for a button."""
    if len(name) <= limit:
        return name
    half = (limit - 1) // 2
    return f"{name[:half]}…{name[-half:]}"


def _images(n: int) -> str:
    return f"{n} image{'s' * (n != 1)}"
