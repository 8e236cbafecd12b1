"""Repair Leaks… / Repair All…: fix what a check found, shown before it runs.

Repairing leaks only gives back clusters nothing uses: no guest data changes. Repairing all also
rewrites damaged metadata, which can lose the damaged parts of the guest's disk for good, so that
choice is never the easy one: Cancel is the default button (Enter runs nothing) and the run button
says what it does. The repair runs ``qemu-img check`` with repair on a worker; its report replaces
the kept findings.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from PySide6.QtWidgets import QWidget

from imagegui.core.chains.diagnose import Kind, Problem
from imagegui.core.ops.check import plan_check
from imagegui.core.ops.plan import Plan
from imagegui.core.read.model import ImageInfo
from imagegui.core.units import display_path
from imagegui.core.virt.inventory import DomainSource
from imagegui.gui.dialogs.fields import Choice
from imagegui.gui.dialogs.plan_dialog import PlanDialog

#: The problem kinds this dialog repairs.
CHECK_KINDS = (Kind.CHECK_ERRORS, Kind.LEAKED_CLUSTERS)

RUN_TEXT = {"leaks": "Repair Leaks", "all": "Repair All (may lose damaged data)"}


class CheckRepairDialog(PlanDialog):
    def __init__(
        self,
        image: ImageInfo,
        problems: list[Problem],
        mode: str = "leaks",
        parent: QWidget | None = None,
        qemu_img: str = "",
        domains: DomainSource | None = None,
    ):
        super().__init__("Repair Image", RUN_TEXT[mode], parent, qemu_img=qemu_img, domains=domains)
        self._initial_mode = mode
        self.image = image
        found = [p for p in problems if p.kind in CHECK_KINDS]
        listed = "".join(f"<li>{escape(display_path(p.message))}</li>" for p in found)
        self.intro.setText(
            f"<b>{escape(display_path(image.name))}</b>"
            + (f": <ul style='margin:2px'>{listed}</ul>" if listed else "")
            + "Repairing rewrites the image's metadata in place. Only a VM that is shut down "
            "can be repaired."
        )
        self.mode = Choice(
            [
                (
                    "leaks",
                    "Repair leaks: give back clusters nothing uses (no guest data changes)",
                    "Frees space that is allocated in the file but used by nothing",
                ),
                (
                    "all",
                    "Repair all: also rewrite damaged metadata (damaged parts may be lost)",
                    "Makes the image consistent again; what the damaged metadata described may "
                    "be gone for good. Flatten a copy first if the data matters",
                ),
            ],
            mode,
        )
        self.form.addRow("Repair:", self.mode)
        self.mode.changed.connect(self._on_mode_changed)
        self.replan()

    @property
    def repair_mode(self) -> str:
        mode = getattr(self, "mode", None)  # PlanDialog asks before the fields exist
        return mode.value() if mode is not None else getattr(self, "_initial_mode", "leaks")

    def destructive_fields(self) -> bool:
        """Repair all may drop what damaged metadata described: never the default action."""
        return self.repair_mode == "all"

    def run_text(self, plan: Plan | None) -> str:
        return RUN_TEXT.get(self.repair_mode, "Repair")

    def ready_text(self, plan: Plan) -> str:
        base = super().ready_text(plan)
        if self.repair_mode != "all":
            return base
        return (
            base.split(":")[0] + ": the damaged metadata will be rewritten, and what it described "
            "may be lost. Flatten a copy first if the data matters."
        )

    def _on_mode_changed(self) -> None:
        self.ok_button.setText(self.run_text(self.plan))
        self.fields_changed()  # Cancel becomes the default for Repair all

    def planner(self) -> Callable[[], Plan] | str:
        image, mode = self.image.path, self.repair_mode
        qemu_img, domains = self.qemu_img, self.domains
        return lambda: plan_check(image, mode, qemu_img=qemu_img, domains=domains)
