"""New Linked-Clone VM…: a new overlay of the selected image and a libvirt VM that boots it.

The VMs that use the image (the templates whose settings can be copied) are read from libvirt on
a worker when the dialog opens and whenever the connection changes; the plan (the overlay's
command and the whole VM definition) is made on a worker like every plan. Nothing here calls
libvirt on the GUI thread.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from html import escape

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QLabel,
    QLineEdit,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from imagegui.core.jobs import Job
from imagegui.core.ops.clonevm import DEFAULT_URI, name_problem, plan_clone_vm, templates
from imagegui.core.ops.plan import Plan
from imagegui.core.read.model import ImageInfo
from imagegui.core.units import display_path
from imagegui.core.virt.connect import local_uris
from imagegui.core.virt.model import DomainUse
from imagegui.gui.dialogs.fields import PathField
from imagegui.gui.dialogs.plan_dialog import PlanDialog, scan_roots
from imagegui.gui.workers import TaskSlot

#: The template chooser's first entry: no template, a new definition with virt-install.
NEW_DEFINITION = "A new VM with default settings"


def default_vm_name(base: str, taken: set[str]) -> str:
    """``<stem>-clone`` (``-clone-2`` ... when its disk name is taken among scanned files)."""
    stem = os.path.splitext(os.path.basename(base))[0] or "vm"
    directory = os.path.dirname(base)
    name, n = f"{stem}-clone", 2
    while os.path.join(directory, f"{name}.qcow2") in taken:
        name, n = f"{stem}-clone-{n}", n + 1
    return name


class CloneVmDialog(PlanDialog):
    #: The VMs that use the image have been read (the chooser is filled and enabled).
    templatesRead = Signal()

    def __init__(
        self,
        base: ImageInfo,
        taken: set[str],
        uris: list[str],
        parent: QWidget | None = None,
        root: str = "",
        qemu_img: str = "",
    ):
        super().__init__("New Linked-Clone VM", "Create VM", parent, qemu_img=qemu_img)
        self.base = base
        self.root = root
        self.directory = os.path.dirname(base.path)
        self.intro.setText(
            f"A new virtual machine whose disk is a new overlay of <b>"
            f"{escape(display_path(base.name))}</b>: it starts with everything the image holds "
            "and stores only what the VM changes. The VM is added to libvirt shut off, where "
            "Virtual Machine Manager shows it; the image must stay unchanged from now on."
        )
        self.name = QLineEdit(default_vm_name(base.path, taken))
        self.name.setToolTip("The new VM's name in libvirt; its disk is named after it")
        self.connection = QComboBox()
        # The image is a file on this machine: only this machine's libvirt can boot it (another
        # host's images are only listed in the window; the command line clones them there).
        for uri in dict.fromkeys([*local_uris(uris), DEFAULT_URI]):
            self.connection.addItem(uri, uri)
        self.connection.setToolTip("The libvirt connection the VM is added to")
        self.template = QComboBox()
        self.template.setToolTip(
            "Copy the settings (memory, network, other disks such as a cloud-init ISO) of a VM "
            "that uses this image, or make a new VM with default settings"
        )
        self.template.addItem(NEW_DEFINITION, None)
        self.template_note = QLabel()
        self.template_note.setWordWrap(True)
        self.template_note.setObjectName("templateNote")
        self._disk_follows_name = True
        self.disk = PathField(self._disk_for(self.name.text()), "save", "The new VM's disk")
        self.disk.setToolTip("Where the new overlay is created; an existing file is never replaced")
        for combo in (self.connection, self.template):
            combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        settings_from = QWidget()
        column = QVBoxLayout(settings_from)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.template)
        column.addWidget(self.template_note)
        self.form.addRow("VM name:", self.name)
        self.form.addRow("Connection:", self.connection)
        self.form.addRow("Settings from:", settings_from)
        self.form.addRow("New disk:", self.disk)
        for label, field in (
            ("VM name", self.name),
            ("Connection", self.connection),
            ("Settings from", self.template),
        ):
            field.setAccessibleName(label)
        self._templates = TaskSlot(
            self, on_done=self._on_templates, on_failed=self._on_templates_failed
        )
        self.name.textChanged.connect(self._on_name_changed)
        self.disk.changed.connect(self._on_disk_edited)
        self.connection.currentIndexChanged.connect(self._on_connection_changed)
        self.template.currentIndexChanged.connect(self.fields_changed)
        self.read_templates()
        self.replan()

    # -- fields

    def _disk_for(self, name: str) -> str:
        return os.path.join(self.directory, f"{name.strip() or 'vm'}.qcow2")

    def _on_name_changed(self) -> None:
        if self._disk_follows_name:
            self.disk.edit.blockSignals(True)
            self.disk.set_path(self._disk_for(self.name.text()))
            self.disk.edit.blockSignals(False)
        self.fields_changed()

    def _on_disk_edited(self) -> None:
        self._disk_follows_name = False  # the user chose it: the name no longer moves it
        self.fields_changed()

    def _on_connection_changed(self) -> None:
        self.read_templates()
        self.fields_changed()

    @property
    def uri(self) -> str:
        return self.connection.currentData() or DEFAULT_URI

    @property
    def chosen_template(self) -> str | None:
        return self.template.currentData()

    @property
    def new_path(self) -> str:
        return self.disk.path()

    # -- the templates, read on a worker

    def read_templates(self) -> None:
        base, uri = self.base.path, self.uri
        self.template.setEnabled(False)
        self.template_note.setText("Looking for virtual machines that use this image…")
        self._templates.start(Job("find template VMs", lambda p, c: templates(base, uri)))

    def _on_templates(self, found: tuple[list[DomainUse], str]) -> None:
        uses, why = found
        keep = self.chosen_template
        self.template.blockSignals(True)
        self.template.clear()
        for use in uses:
            self.template.addItem(f"{use.name} ({use.state}), disk {use.disk}", use.name)
        self.template.addItem(NEW_DEFINITION, None)
        names = [u.name for u in uses]
        self.template.setCurrentIndex(names.index(keep) if keep in names else 0)
        self.template.blockSignals(False)
        self.template.setEnabled(True)
        if why:
            self.template_note.setText(display_path(why))
        elif uses:
            verb = "VM on this connection uses" if len(uses) == 1 else "VMs on this connection use"
            self.template_note.setText(f"{len(uses)} {verb} this image.")
        else:
            self.template_note.setText(
                "No VM on this connection uses this image: the new VM gets default settings."
            )
        self.refit()
        self.fields_changed()
        self.templatesRead.emit()

    def _on_templates_failed(self, exc: object) -> None:
        self.template.setEnabled(True)
        self.template_note.setText(display_path(f"Could not look for VMs: {exc}"))
        self.templatesRead.emit()

    # -- the plan

    def planner(self) -> Callable[[], Plan] | str:
        name = self.name.text()
        why = name_problem(name)
        if why:
            return why[0].upper() + why[1:] + "."
        disk = self.disk.path()
        if not disk:
            return "Enter where the new disk is created."
        base, uri, template = self.base.path, self.uri, self.chosen_template
        roots, allow, qemu_img = scan_roots(self.root), self.allowed_files(), self.qemu_img
        return lambda: plan_clone_vm(
            base,
            name,
            disk,
            template=template,
            uri=uri,
            roots=roots,
            allow=allow,
            qemu_img=qemu_img,
        )
