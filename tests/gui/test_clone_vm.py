"""New Linked-Clone VM…: on every image's menu; the dialog offers the VMs that use the image (read
on a worker), previews the overlay command and the VM definition, creates both against the real
libvirtd, and Undo removes them again."""

from __future__ import annotations

import contextlib
import os

import pytest
from libvirt_fixtures import unique_name
from PySide6.QtCore import Qt

from imagegui.gui.dialogs.clone_vm_dialog import NEW_DEFINITION


def _plain(action) -> str:
    return action.text().replace("&", "").rstrip("…")


def test_the_action_is_on_the_image_menu_and_follows_the_overlay_rules(
    window, open_dir, make, tmp_path
):
    base = str(make.create("base.qcow2"))
    broken = str(make.overlay("broken.qcow2", "gone.qcow2"))
    open_dir(tmp_path)
    action = window.actions.clone_vm
    assert action in window.actions.image_menu()
    image_menu = next(m for m in window.menuBar().actions() if m.text() == "&Image").menu()
    assert action in image_menu.actions()
    window.selection.set(base)
    assert action.isEnabled()
    window.selection.set(broken)
    assert not action.isEnabled() and "qemu cannot open broken.qcow2" in action.toolTip()


@pytest.fixture
def clones(libvirt_conn):
    import libvirt

    names: list[str] = []
    yield names
    for name in names:
        with contextlib.suppress(libvirt.libvirtError):
            libvirt_conn.lookupByName(name).undefine()


def test_clone_vm_from_the_window_and_undo_it(
    qtbot, window, open_dir, wait_plan, make, tmp_path, libvirt_uri, libvirt_conn,
    define_domain, clones,
):  # fmt: skip
    base = str(make.create("base.qcow2"))
    top = str(make.overlay("web01.qcow2", "base.qcow2"))
    template = define_domain(disks=[top])
    open_dir(tmp_path)
    window.selection.set(base)
    window.settings.set_libvirt_uris([libvirt_uri, "qemu+ssh://root@192.0.2.1/system"])
    window.actions.clone_vm.trigger()
    window.settings.set_libvirt_uris([])  # never read by a scan: the address is unroutable
    dialog = window.ops.dialog
    assert dialog.name.text() == "base-clone"
    # Only this machine's libvirt can boot a file here.
    assert [dialog.connection.itemText(i) for i in range(dialog.connection.count())] == [
        libvirt_uri
    ]
    assert dialog.disk.path() == str(tmp_path / "base-clone.qcow2")  # beside the base
    if not dialog.template.isEnabled():
        with qtbot.waitSignal(dialog.templatesRead, timeout=30_000):
            pass
    labels = [dialog.template.itemText(i) for i in range(dialog.template.count())]
    assert labels == [f"{template.name()} (shut off), disk vda", NEW_DEFINITION]
    assert dialog.chosen_template == template.name()  # the VM that uses it, first

    name = unique_name("gui")
    clones.append(name)
    dialog.name.setText(name)
    assert dialog.disk.path() == str(tmp_path / f"{name}.qcow2")  # follows the name
    plan = wait_plan(dialog)
    assert not plan.refused, plan.describe()
    shown = dialog.preview.toPlainText()
    assert "qemu-img create -f qcow2 -b base.qcow2 -F qcow2" in shown
    assert f"Domain XML defined on {libvirt_uri}" in shown and f"<name>{name}</name>" in shown
    assert dialog.ok_button.isDefault() and dialog.ok_button.text() == "Create VM"

    assert labels and dialog.template_note.text() == "1 VM on this connection uses this image."
    with qtbot.waitSignal(window.ready, timeout=30_000):
        qtbot.keyClick(dialog.name, Qt.Key.Key_Return)  # Enter creates it
    overlay = str(tmp_path / f"{name}.qcow2")
    assert os.path.exists(overlay) and window.selection.node == overlay
    assert libvirt_conn.lookupByName(name).XMLDesc().count(f"<source file='{overlay}'/>") == 1

    undo = window.actions.undo_rebase
    qtbot.waitUntil(lambda: _plain(undo) == f"Undo linked-clone VM {name}", timeout=10_000)
    undo.trigger()
    dialog = window.ops.dialog
    assert not wait_plan(dialog).refused
    assert dialog.cancel_button.isDefault()  # it deletes a disk: Enter does not
    with qtbot.waitSignal(dialog.rejected, timeout=5_000):
        qtbot.keyClick(dialog, Qt.Key.Key_Return)
    assert os.path.exists(overlay) and window.jobs.records[-1].title == f"Create VM {name}"
    undo.trigger()
    dialog = window.ops.dialog
    assert not wait_plan(dialog).refused
    with qtbot.waitSignal(window.ready, timeout=30_000):
        dialog.accept()
    assert not os.path.exists(overlay) and os.path.exists(base)
    assert name not in [d.name() for d in libvirt_conn.listAllDomains()]
    qtbot.waitUntil(lambda: not undo.isEnabled(), timeout=10_000)
    assert "already undone" in undo.toolTip()
