"""Move to Trash, Delete With Overlays, Delete Permanently: what goes, what it frees, what refuses.

Deleting an image is the one operation whose mistake cannot be seen in the graph afterwards (the
card is simply gone), so it goes through the same plan and preview as every writing operation:
the files that will move to the Trash with their sizes, the total freed, and each refusal in the
window's words (the overlays that depend on it, named; a program that has it open; a VM that
uses it). Cancel is the default button: Enter never deletes. Moving to the Trash can be undone
(Edit ▸ Restore) while the file is still there; a permanent delete cannot, so it also asks for
the file's name to be typed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from html import escape

from PySide6.QtWidgets import QWidget

from imagegui.core.ops.delete import DeletePlan, plan_delete
from imagegui.core.ops.plan import Finding, Plan
from imagegui.core.units import counted, display_path, human_size
from imagegui.core.virt.inventory import DomainSource
from imagegui.gui.dialogs.plan_dialog import PlanDialog, scan_roots


def plan_bytes(plan: Plan | None) -> int | None:
    """What the plan frees, as the core counts it (None before the plan is made)."""
    return plan.total if isinstance(plan, DeletePlan) else None


def plan_paths(plan: Plan | None, fallback: Sequence[str]) -> list[str]:
    """The files the plan will remove (those it keeps are not counted); ``fallback`` before the
    plan is made, or when it removes nothing (refused)."""
    items = plan.items if isinstance(plan, DeletePlan) else []
    return [i.path for i in items] or list(fallback)


#: How the core's refusal of a base with overlays words the way round it, and the window's way.
WITH_OVERLAYS_WORDS = "delete the image together with everything that depends on it"
WITH_OVERLAYS_ACTION = "use Delete With Overlays… to delete them all together"


class DeleteDialog(PlanDialog):
    """``paths`` to the Trash (or removed for good with ``permanent``); ``with_overlays`` also
    takes every overlay above them (one explicit action, everything listed)."""

    def __init__(
        self,
        paths: Sequence[str],
        parent: QWidget | None = None,
        *,
        with_overlays: bool = False,
        together: bool = False,
        permanent: bool = False,
        overlays: Sequence[str] = (),
        root: str = "",
        domains: DomainSource | None = None,
    ):
        self.paths = tuple(paths)
        self.with_overlays = with_overlays
        #: The images chosen include everything that depends on them: planned as one tree.
        self.together = together
        self.permanent = permanent
        #: The overlays the scan saw above ``paths`` (the plan finds them again itself).
        self.overlays = tuple(overlays)
        #: The scanned folder: searched for images that back onto the files, besides their own.
        self.root = root
        n = len(self.paths)
        name = display_path(os.path.basename(self.paths[0])) if n == 1 else ""
        what = name or f"{n} Images"
        if with_overlays:
            title = f"Delete {what} With Its Overlays" if n == 1 else f"Delete {what} With Overlays"
        elif permanent:
            title = f"Delete {what} Permanently"
        else:
            title = f"Move {what} to the Trash"
        super().__init__(title, "Move to Trash", parent, domains=domains)
        self.copy_button.hide()  # no program runs: there is no command to copy
        self.intro.setText(self._intro_text())
        if permanent:
            # As strong as a forced commit: the name typed, then the red button.
            typed = os.path.basename(self.paths[0]) if n == 1 else "delete"
            self.require_confirmation(typed)
            self.confirm_label.setText(f"To delete it for good, type <b>{escape(typed)}</b>:")
            self.confirm.setAccessibleName("Name to type to delete it permanently")
        self.replan()

    def _intro_text(self) -> str:
        n = len(self.paths)
        names = f"<b>{escape(display_path(self.paths[0]))}</b>" if n == 1 else f"these {n} images"
        if self.permanent:
            return (
                f"Deletes {names} <b>permanently</b>: it does not go to the Trash and cannot be "
                "restored. An image is never deleted while anything depends on it, a program "
                "has it open or a VM uses it."
            )
        restore = (
            " While it is in the Trash, Edit ▸ Restore puts it back."
            if n == 1 and not self.with_overlays
            else " While they are in the Trash, Edit ▸ Restore puts them back."
        )
        if self.with_overlays:
            count = len(self.overlays)
            it = "it" if n == 1 else "them"
            above = (
                f" and the {counted(count, 'overlay')} that depend on {it}"
                if count
                else f" and every overlay that depends on {it}"
            )
            return (
                f"Moves {names}{above} to the Trash, all of them listed below. Each overlay's "
                "data is only complete with its base, so they go together; none is moved while "
                "a program has it open or a VM uses it." + restore
            )
        if self.together:
            return (
                f"Moves {names} to the Trash: they include every overlay that depends on them, "
                "so each overlay goes before its base. None is moved while a program has it "
                "open or a VM uses it." + restore
            )
        return (
            f"Moves {names} to the Trash. An image is not moved while another image depends on "
            "it, a program has it open or a VM uses it." + restore
        )

    def destructive_fields(self) -> bool:
        return True  # it removes files: Enter must not

    def confirmed(self) -> bool:
        if self.confirm_name:  # a permanent delete: the name typed first
            return self.confirm.text().strip() == self.confirm_name
        return super().confirmed()

    def run_text(self, plan: Plan | None) -> str:
        count = len(plan_paths(plan, self.paths))
        if self.permanent:
            return "Delete Permanently" if count == 1 else f"Delete {count} Images Permanently"
        return "Move to Trash" if count == 1 else f"Move {count} Images to Trash"

    def ready_text(self, plan: Plan) -> str:
        count = len(plan_paths(plan, self.paths))
        freed = plan_bytes(plan)
        size = f" ({human_size(freed)})" if freed is not None else ""
        where = "deleted permanently" if self.permanent else "moved to the Trash"
        text = f"Ready: {counted(count, 'image')}{size} will be {where}."
        if plan.warnings:
            text += f" Read the {counted(len(plan.warnings), 'warning')} below."
        return text

    def describe_finding(self, finding: Finding) -> str:
        """A refusal for overlays names the window's way round it: Delete With Overlays…."""
        text = display_path(finding.message)
        if finding.code == "has-overlays" and not self.with_overlays:
            if WITH_OVERLAYS_WORDS in text:
                text = text.replace(WITH_OVERLAYS_WORDS, WITH_OVERLAYS_ACTION)
            else:
                text += f" ({WITH_OVERLAYS_ACTION})"
        return text

    def planner(self) -> Callable[[], Plan] | str:
        paths, domains, roots = list(self.paths), self.domains, scan_roots(self.root)
        permanent, with_overlays = self.permanent, self.with_overlays or self.together
        return lambda: plan_delete(
            paths, permanent=permanent, with_overlays=with_overlays, domains=domains, roots=roots
        )
