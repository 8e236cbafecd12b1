"""Undo Last Rebase…: restore the backing pointer the journal recorded before the last rebase."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QWidget

from imagegui.core.operations import Plan, plan_undo_rebase
from imagegui.core.units import display_path
from imagegui.gui.dialogs.plan_dialog import PlanDialog


class UndoRebaseDialog(PlanDialog):
    def __init__(self, image: str, parent: QWidget | None = None):
        super().__init__("Undo Last Rebase", "Restore", parent)
        self.image = image
        self.intro.setText(
            f"Restore the backing file <b>{display_path(image)}</b> had before its last rebase, "
            "exactly as the journal recorded it (name and format)."
        )
        self.replan()

    def planner(self) -> Callable[[], Plan] | str:
        image = self.image
        return lambda: plan_undo_rebase(image)
