"""Take Snapshot… / Revert to Snapshot… / Delete Snapshot…: a qcow2 image's internal snapshots.

Reverting replaces the image's current state, so it is treated as destructive: Cancel is the
default button and the run button says what is lost.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtWidgets import QLineEdit, QWidget

from imagegui.core.ops.plan import Plan
from imagegui.core.ops.snapshot import plan_snapshot
from imagegui.core.read.model import ImageInfo
from imagegui.core.units import display_path
from imagegui.core.virt.inventory import DomainSource
from imagegui.gui.dialogs.plan_dialog import PlanDialog, scan_roots

_TITLES = {"create": "Take Snapshot", "apply": "Revert to Snapshot", "delete": "Delete Snapshot"}
_RUN = {"create": "Take Snapshot", "apply": "Revert, discarding the current state",
        "delete": "Delete Snapshot"}  # fmt: skip


class SnapshotDialog(PlanDialog):
    def __init__(
        self,
        image: ImageInfo,
        action: str,
        name: str = "",
        parent: QWidget | None = None,
        root: str = "",
        qemu_img: str = "",
        domains: DomainSource | None = None,
    ):
        super().__init__(_TITLES[action], _RUN[action], parent, qemu_img=qemu_img, domains=domains)
        self.image, self.action, self.root = image, action, root
        shown = display_path(image.name)
        self.intro.setText(
            {
                "create": f"Record the current state of <b>{shown}</b> inside the image, to "
                "revert to later. What the guest sees does not change.",
                "apply": f"Put <b>{shown}</b> back to the state recorded in snapshot "
                f"<b>{display_path(name)}</b>. Everything written since is lost unless you take "
                "a snapshot of the current state first.",
                "delete": f"Delete snapshot <b>{display_path(name)}</b> of <b>{shown}</b> and "
                "free the space only it holds. What the guest sees does not change.",
            }[action]
        )
        self.name = QLineEdit(name or time.strftime("snapshot-%Y%m%d-%H%M%S"))
        self.name.setAccessibleName("Snapshot name")
        self.name.setReadOnly(action != "create")
        self.form.addRow("&Snapshot:", self.name)
        self.add_override(_TITLES[action].split()[0], image.name)
        self.name.textChanged.connect(self.fields_changed)
        self.replan()

    def destructive_fields(self) -> bool:
        # Called by PlanDialog's constructor too, before ``action`` is set. Reverting and
        # deleting cannot be undone.
        return getattr(self, "action", "") in ("apply", "delete")

    def planner(self) -> Callable[[], Plan] | str:
        name = self.name.text()
        if not name.strip():
            return "Enter a name for the snapshot."
        image, action, force = self.image.path, self.action, self.overriding()
        roots, allow = scan_roots(self.root), self.allowed_files()
        qemu_img, domains = self.qemu_img, self.domains
        return lambda: plan_snapshot(
            image, action, name, force=force, roots=roots, allow=allow, qemu_img=qemu_img,
            domains=domains,
        )  # fmt: skip
