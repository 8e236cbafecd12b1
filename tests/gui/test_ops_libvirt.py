"""The window's plans ask libvirt (the connections of File ▸ Connect to libvirt…) which VMs use
the images, on the planning worker, and say so in the window's words (real libvirtd)."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtWidgets import QAbstractButton, QLabel, QTextBrowser

from imagegui.core.virt.inventory import DomainSource


def visible_texts(dialog) -> str:
    texts = [w.text() for w in dialog.findChildren(QLabel) + dialog.findChildren(QAbstractButton)]
    texts += [b.toPlainText() for b in dialog.findChildren(QTextBrowser)]
    return "\n".join(texts)


@pytest.fixture
def read_threads(monkeypatch: pytest.MonkeyPatch) -> list[threading.Thread]:
    """The threads DomainSource.read ran on (it still reads: a spy, not a stand-in)."""
    seen: list[threading.Thread] = []
    original = DomainSource.read

    def spy(self: DomainSource):
        seen.append(threading.current_thread())
        return original(self)

    monkeypatch.setattr(DomainSource, "read", spy)
    return seen


def test_commit_dialog_refuses_a_shut_off_vms_base_naming_it_asked_on_a_worker(
    qtbot, window, open_dir, wait_plan, make, tmp_path, libvirt_uri, define_domain, read_threads
):
    base = make.create("base.qcow2", "qcow2", "64M")
    top = str(make.overlay("top.qcow2", "base.qcow2"))
    name = define_domain(disks=[top]).name()
    window.settings.set_libvirt_uris([libvirt_uri])
    open_dir(tmp_path)
    window.selection.set(top)
    window.actions.commit.trigger()
    dialog = window.ops.dialog
    plan = wait_plan(dialog)
    assert plan.domains == DomainSource((libvirt_uri,))
    assert [f.code for f in plan.blocking()] == ["used-by-vm"]
    assert read_threads and threading.main_thread() not in read_threads
    verdict = dialog.verdict.text()
    assert verdict.startswith("Refused: base ") and f"the VM {name} (shut off)" in verdict
    assert "through the backing chain of its disk vda" in verdict
    assert "--" not in visible_texts(dialog)  # no command-line flags in the window
    assert not dialog.ok_button.isEnabled()
    dialog.reject()
    assert base.exists()


def test_forcing_a_commit_past_its_siblings_names_the_vm_it_changes_too(
    qtbot, window, open_dir, wait_plan, make, tmp_path, libvirt_uri, define_domain
):
    make.create("base.qcow2", "qcow2", "64M")
    top = str(make.overlay("top.qcow2", "base.qcow2"))
    sibling = make.overlay("sibling.qcow2", "base.qcow2")
    name = define_domain(disks=[sibling]).name()
    window.settings.set_libvirt_uris([libvirt_uri])
    open_dir(tmp_path)
    window.selection.set(top)
    window.actions.commit.trigger()
    dialog = window.ops.dialog
    plan = wait_plan(dialog)
    assert {f.code for f in plan.blocking()} == {"shared-base", "used-by-vm"}
    dialog.force.setChecked(True)
    plan = wait_plan(dialog)
    assert not plan.refused
    verdict = dialog.verdict.text()
    assert verdict.startswith("Forced: 1 image will be corrupted (listed above); base ")
    assert f"the VM {name} (shut off)" in verdict
    dialog.reject()


def test_overlay_dialog_on_a_vms_base_runs_and_names_the_vm(
    qtbot, window, open_dir, wait_plan, make, tmp_path, libvirt_uri, define_domain
):
    base = str(make.create("base.qcow2", "qcow2", "64M"))
    top = str(make.overlay("top.qcow2", "base.qcow2"))
    name = define_domain(disks=[top]).name()
    window.settings.set_libvirt_uris([libvirt_uri])
    open_dir(tmp_path)
    window.selection.set(base)
    window.actions.overlay.trigger()
    dialog = window.ops.dialog
    plan = wait_plan(dialog)
    assert not plan.refused and dialog.ok_button.isEnabled()
    assert f"is also used by {name} (shut off)" in dialog.preview.toPlainText()
    dialog.reject()


def test_plans_ask_the_connections_to_this_machine_else_the_defaults(window):
    window.settings.set_libvirt_uris(["qemu+ssh://root@far/system", "qemu:///session"])
    assert window.ops.domains() == DomainSource(("qemu:///session",))
    window.settings.set_libvirt_uris(["qemu+ssh://root@far/system"])  # its VMs use its files
    assert window.ops.domains() == DomainSource(None)
