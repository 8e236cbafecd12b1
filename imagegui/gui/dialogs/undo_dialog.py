"""Undo: put back the backing pointer the journal recorded before the last rebase, remove a
linked-clone VM that never ran, or restore the files the last delete moved to the Trash.

It acts on the journal's last change, named in the title, whatever image is selected; the plan
(verified against the image's fingerprint, or the trashed file's identity, by the core) is shown
before anything runs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from html import escape

from PySide6.QtWidgets import QWidget

from imagegui.core.ops.change_undo import plan_undo_change
from imagegui.core.ops.clonevm_undo import plan_undo_clone_vm
from imagegui.core.ops.delete import plan_restore_entries
from imagegui.core.ops.journal import (
    CONVERT_OP,
    NEW_OP,
    RESIZE_OP,
    SNAPSHOT_OP,
    ChangeEntry,
    CloneVmEntry,
    DeleteEntry,
    MoveEntry,
    RebaseEntry,
)
from imagegui.core.ops.move_undo import plan_undo_move
from imagegui.core.ops.plan import Plan
from imagegui.core.ops.rebase import plan_undo_rebase
from imagegui.core.units import counted, display_path, human_size
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


class UndoMoveDialog(PlanDialog):
    """Undo of a move or rename: the files go back where they were and every backing pointer the
    move rewrote gets its old name again, only while nothing changed since (the core checks, the
    preview says why not). Nothing is overwritten, so Undo is the default button."""

    def __init__(
        self,
        entry: MoveEntry,
        parent: QWidget | None = None,
        qemu_img: str = "",
        domains: DomainSource | None = None,
    ):
        super().__init__(
            f"Undo move of {display_path(entry.name)}",
            "Undo",
            parent,
            qemu_img=qemu_img,
            domains=domains,
        )
        self.entry = entry
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.time))
        first = entry.renames[0] if entry.renames else {"src": "", "dst": ""}
        others = len(entry.renames) - 1
        more = f" and {counted(others, 'other file')}" if others else ""
        n = len(entry.rewrites)
        pointers = f" and puts back the {counted(n, 'backing pointer')} it rewrote" if n else ""
        self.intro.setText(
            f"The last change recorded: on {when}, <b>{escape(display_path(first['src']))}</b>"
            f"{escape(more)} moved to <tt>{escape(display_path(first['dst']))}</tt>. Undo "
            f"moves {'them' if others else 'it'} back{pointers}, exactly as the journal "
            "recorded, unless a file was changed or an old name taken since."
        )
        self.replan()

    def planner(self) -> Callable[[], Plan] | str:
        path = self.entry.image
        qemu_img, domains = self.qemu_img, self.domains
        return lambda: plan_undo_move(path, qemu_img=qemu_img, domains=domains)


class UndoChangeDialog(PlanDialog):
    """Undo of a new image, a convert, a snapshot taken or a disk grown: the file goes to the
    Trash, the snapshot is deleted, the disk shrunk back - only on that very result, unchanged
    where it matters (the core checks, the preview says why not)."""

    _INTRO = {
        NEW_OP: ("the blank image <b>{image}</b> was created", "moves it to the Trash"),
        CONVERT_OP: (
            "<b>{image}</b> was written by a convert of <tt>{source}</tt>",
            "moves it to the Trash; <tt>{source}</tt> is not touched",
        ),
        SNAPSHOT_OP: (
            "the snapshot <b>{snapshot}</b> of <tt>{image}</tt> was taken",
            "deletes that snapshot; what the guest sees does not change",
        ),
        RESIZE_OP: (
            "<b>{image}</b> was grown from {old} to {new}",
            "shrinks it back to {old}, as long as nothing was written past that size",
        ),
    }

    def __init__(
        self,
        entry: ChangeEntry,
        parent: QWidget | None = None,
        qemu_img: str = "",
        domains: DomainSource | None = None,
    ):
        self.entry = entry  # before the dialog is built: destructive_fields reads it
        super().__init__(
            f"Undo {display_path(entry.words)}",
            "Undo",
            parent,
            qemu_img=qemu_img,
            domains=domains,
        )
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.time))
        made, undo = self._INTRO.get(entry.kind, ("{image} was changed", "takes it back"))
        values = {
            "image": escape(display_path(entry.image)),
            "source": escape(display_path(entry.source)),
            "snapshot": escape(display_path(str((entry.snapshot or {}).get("name", "")))),
            "old": human_size(entry.old_size),
            "new": human_size(entry.new_size),
        }
        self.intro.setText(
            f"The last change recorded: on {when}, {made.format(**values)}. Undo "
            f"{undo.format(**values)}."
        )
        self.replan()

    def destructive_fields(self) -> bool:
        # A deleted snapshot cannot be taken back: Enter must not do that. (A file goes to the
        # Trash; a shrink is planned only when nothing past the old size was written.)
        return self.entry.kind == SNAPSHOT_OP

    def planner(self) -> Callable[[], Plan] | str:
        kind, path = self.entry.kind, self.entry.image
        qemu_img, domains = self.qemu_img, self.domains
        return lambda: plan_undo_change(kind, path, qemu_img=qemu_img, domains=domains)


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


class RestoreDialog(PlanDialog):
    """Restore: put the files the last delete moved to the Trash back where they were, only
    while each is still there unchanged and its place is free (the core checks; the preview says
    why not). Nothing is overwritten, so Restore is the default button."""

    def __init__(self, entries: Sequence[DeleteEntry], parent: QWidget | None = None):
        self.entries = tuple(entries)
        first = self.entries[0]
        name = display_path(os.path.basename(first.original))
        others = len(self.entries) - 1
        more = f" and {counted(others, 'other file')}" if others else ""
        super().__init__(f"Restore {name}{more}", "Restore", parent)
        self.copy_button.hide()  # no program runs: there is no command to copy
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(first.time))
        where = escape(display_path(os.path.dirname(first.original)))
        self.intro.setText(
            f"On {when}, <b>{escape(name)}</b>{escape(more)} moved to the Trash from "
            f"<tt>{where}</tt>. Restore puts {'them' if others else 'it'} back exactly as "
            f"{'they were' if others else 'it was'}, unless the name has been taken again or "
            "the Trash was emptied since."
        )
        self.replan()

    def run_text(self, plan: Plan | None) -> str:
        n = len(self.entries)
        return "Restore" if n == 1 else f"Restore {n} Files"

    def ready_text(self, plan: Plan) -> str:
        n = len(self.entries)
        where = "they were" if n > 1 else "it was"
        return f"Ready: {counted(n, 'file')} will be put back where {where}."

    def planner(self) -> Callable[[], Plan] | str:
        entries = list(self.entries)
        return lambda: plan_restore_entries(entries)
