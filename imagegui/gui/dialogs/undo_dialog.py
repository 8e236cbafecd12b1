"""Undo: put back the backing pointer the journal recorded before the last rebase.

It acts on the journal's last change, named in the title, whatever image is selected; the plan
(verified against the image's fingerprint by the core) is shown before anything runs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from html import escape

from PySide6.QtWidgets import QWidget

from imagegui.core.ops.clonevm_undo import plan_undo_clone_vm
from imagegui.core.ops.journal import CloneVmEntry, RebaseEntry
from imagegui.core.ops.plan import Plan
from imagegui.core.ops.rebase import plan_undo_rebase
from imagegui.core.units import display_path
from imagegui.core.virt.inventory import DomainSource
from imagegui.gui.dialogs.plan_dialog import PlanDialog


class UndoRebaseDialog(PlanDialog):
    def __init__(
        self,
        entry: RebaseEntry,
        parent: QWidget | None = None,
        qemu_img: str = "",
        domains: DomainSource | None = None,
    ):
        name = os.path.basename(entry.image)
        super().__init__(
            f"Undo rebase of {display_path(name)}",
            "Undo",
            parent,
            qemu_img=qemu_img,
            domains=domains,
        )
        self.entry = entry
        self.image = entry.image
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.time))
        mode = "pointer only" if entry.mode == "unsafe" else "data kept"
        old = display_path(entry.old_backing) if entry.old_backing else "no backing file"
        new = display_path(entry.new_backing) if entry.new_backing else "no backing file"
        self.intro.setText(
            f"The last change recorded: on {when}, <b>{escape(display_path(entry.image))}</b> "
            f"was rebased ({mode}) from <tt>{escape(old)}</tt> onto <tt>{escape(new)}</tt>. "
            f"Undo puts back <tt>{escape(old)}</tt>"
            + (f" (format {escape(entry.old_format)})" if entry.old_format else "")
            + " exactly as the journal recorded it."
        )
        self.replan()

    def planner(self) -> Callable[[], Plan] | str:
        image = self.image
        allow = self.allowed_files()
        qemu_img, domains = self.qemu_img, self.domains
        return lambda: plan_undo_rebase(image, allow=allow, qemu_img=qemu_img, domains=domains)


class UndoCloneVmDialog(PlanDialog):
    """Undo of a linked-clone VM: remove the VM from libvirt and delete its new disk, only while
    the VM has never run (the core checks; the preview says why not)."""

    def __init__(self, entry: CloneVmEntry, parent: QWidget | None = None):
        name = display_path(entry.name)
        super().__init__(f"Undo linked-clone VM {name}", "Remove VM and disk", parent)
        self.entry = entry
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.time))
        self.intro.setText(
            f"The last change recorded: on {when}, the VM <b>{escape(name)}</b> was created on "
            f"{escape(entry.uri)} with the new disk <tt>{escape(display_path(entry.overlay))}"
            "</tt>. Undo removes the VM from libvirt and deletes that disk, as long as the VM "
            f"has never run; <tt>{escape(display_path(entry.base))}</tt> is not touched."
        )
        self.replan()

    def destructive_fields(self) -> bool:
        return True  # it deletes a disk: Enter must not do that

    def planner(self) -> Callable[[], Plan] | str:
        name, uri = self.entry.name, self.entry.uri
        return lambda: plan_undo_clone_vm(name, uri)
