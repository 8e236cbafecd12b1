"""Remove leftover temporary files: the files, their sizes and ages, then Remove.

A flatten that was interrupted (the program killed, the machine stopped) leaves its temporary
file beside the copy it was writing. Removing it deletes a file, so Cancel is the default button;
the plan (made on a worker: it looks for processes that have the file open) lists each file with
its size and age, and says which are kept and why (open by a process, just written). The run
checks each file once more right before removing it.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from PySide6.QtWidgets import QWidget

from imagegui.core.ops.leftovers import plan_clean_leftovers
from imagegui.core.ops.plan import Plan
from imagegui.core.units import display_path
from imagegui.core.virt.inventory import DomainSource
from imagegui.gui.dialogs.plan_dialog import PlanDialog


class RemoveLeftoversDialog(PlanDialog):
    def __init__(
        self, paths: list[str], parent: QWidget | None = None, domains: DomainSource | None = None
    ):
        self.paths = tuple(paths)
        n = len(self.paths)
        title = "Remove Leftover File" if n == 1 else f"Remove {n} Leftover Files"
        super().__init__(title, "Remove", parent, domains=domains)
        what = f"<b>{escape(display_path(self.paths[0]))}</b>" if n == 1 else f"these {n} files"
        files = "a temporary file" if n == 1 else "temporary files"
        them = (
            "It is not an image of yours and nothing uses it"
            if n == 1
            else "They are not images of yours and nothing uses them"
        )
        self.intro.setText(
            f"Removes {what}: {files} of a flatten that was interrupted. {them}. A file that "
            "a program has open, or that was written in the last few seconds, is kept."
        )
        self.copy_button.hide()  # no program runs: there is no command to copy
        self.replan()

    def destructive_fields(self) -> bool:
        return True  # it deletes files: Enter must not

    def run_text(self, plan: Plan | None) -> str:
        count = len(getattr(plan, "leftovers", ())) if plan is not None else len(self.paths)
        return "Remove File" if count == 1 else f"Remove {count} Files"

    def ready_text(self, plan: Plan) -> str:
        kept = len(getattr(plan, "kept", ()))
        text = "Ready: the files below will be removed."
        if kept:
            text += f" {kept} will be kept (see below)."
        return text

    def planner(self) -> Callable[[], Plan] | str:
        paths, domains = self.paths, self.domains
        return lambda: plan_clean_leftovers(paths, domains=domains)
