"""The Launch dialog's "Run with": this window's QEMU or libvirt. The libvirt choice is offered
only once libvirt answered (asked on a worker), is remembered, and a VM started through it is
named in a box that offers its screen (virt-viewer)."""

from __future__ import annotations

import contextlib
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import qemu_img

from imagegui.core.ops.launchvirt import LibvirtLaunchPlan


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """Images libvirt's VM account can open (pytest's tmp dirs are private to root)."""
    d = Path(tempfile.mkdtemp(prefix="imagegui-test-lv-", dir="/var/tmp"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def open_launch(qtbot, window, image: str):
    window.selection.set(image)
    window.actions.launch.trigger()
    dialog = window.ops.dialog
    if dialog.libvirt_reason == "Checking whether libvirt answers…":
        with qtbot.waitSignal(dialog.libvirtChecked, timeout=30_000):
            pass
    return dialog


def listed_in_hosts(window, name: str) -> str | None:
    """The state the hosts panel shows for the VM ``name``, None when it is not listed."""
    model = window.hosts.model
    for row in range(model.rowCount()):
        section = model.item(row, 0)
        for r in range(section.rowCount()):
            if section.child(r, 0).text() == name:
                return section.child(r, 1).text()
    return None


def test_without_a_libvirt_connection_the_choice_is_off_and_says_why(
    qtbot, window, open_dir, wait_plan, make, tmp_path
):
    image = str(make.create("a.qcow2", "qcow2", "16M"))
    window.settings.set_launch_runner("libvirt")
    open_dir(tmp_path)
    dialog = open_launch(qtbot, window, image)
    assert not dialog.libvirt_button.isEnabled()
    assert "no libvirt connection on this machine" in dialog.libvirt_button.toolTip()
    assert dialog.runner.value() == "qemu"
    assert not isinstance(wait_plan(dialog), LibvirtLaunchPlan)
    dialog.reject()


def test_an_unreachable_libvirt_is_named_in_the_tooltip(
    qtbot, window, open_dir, wait_plan, make, tmp_path
):
    image = str(make.create("a.qcow2", "qcow2", "16M"))
    window.settings.set_libvirt_uris(["bogus:///nowhere"])
    open_dir(tmp_path)
    dialog = open_launch(qtbot, window, image)
    assert not dialog.libvirt_button.isEnabled()
    assert "libvirt not reachable at bogus:///nowhere" in dialog.libvirt_button.toolTip()
    dialog.reject()


def test_libvirt_plans_a_transient_domain_with_its_xml_in_the_preview(
    qtbot, window, open_dir, wait_plan, libvirt_uri, shared_dir
):
    image = shared_dir / "b.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", image, "16M")
    window.settings.set_libvirt_uris([libvirt_uri])
    open_dir(shared_dir)
    dialog = open_launch(qtbot, window, str(image))
    assert dialog.libvirt_button.isEnabled(), dialog.libvirt_button.toolTip()
    dialog.runner.set_value("libvirt")
    plan = wait_plan(dialog)
    assert isinstance(plan, LibvirtLaunchPlan) and not plan.refused, plan.describe()
    text = dialog.preview.toPlainText()
    assert f"<source file='{image}'/>" in text and "disappears from libvirt" in text
    # libvirt's VM always has a screen and no throw-away disk.
    assert not dialog.headless.isEnabled()
    assert not dialog.disk.buttons["snapshot"].isEnabled()
    dialog.runner.set_value("qemu")
    assert not isinstance(wait_plan(dialog), LibvirtLaunchPlan)
    assert dialog.disk.buttons["snapshot"].isEnabled() and dialog.headless.isEnabled()
    dialog.reject()


@pytest.mark.slow
def test_a_libvirt_launch_names_the_vm_and_offers_its_screen(
    qtbot, window, open_dir, wait_plan, libvirt_uri, shared_dir
):
    image = shared_dir / f"c-{secrets.token_hex(3)}.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", image, "16M")
    window.settings.set_libvirt_uris([libvirt_uri])
    open_dir(shared_dir)
    dialog = open_launch(qtbot, window, str(image))
    dialog.runner.set_value("libvirt")
    dialog.memory.setValue(96)
    plan = wait_plan(dialog)
    assert isinstance(plan, LibvirtLaunchPlan) and not plan.refused, plan.describe()
    name = plan.domain
    try:
        dialog.accept()
        qtbot.waitUntil(lambda: window.ops.last_box is not None, timeout=90_000)
        box = window.ops.last_box
        assert f"The VM {name} runs at {libvirt_uri}." in box.text()
        buttons = [b.text() for b in box.buttons()]
        assert ("Open Console" in buttons) == bool(shutil.which("virt-viewer"))
        listed = subprocess.run(
            ["virsh", "-q", "-c", libvirt_uri, "list", "--name"], capture_output=True, text=True
        ).stdout.split()
        assert name in listed
        assert window.settings.launch_runner() == "libvirt"
        # The rescan after it reads libvirt again: the hosts panel lists it, running.
        qtbot.waitUntil(lambda: listed_in_hosts(window, name) == "running", timeout=60_000)
        box.close()
    finally:
        with contextlib.suppress(Exception):
            subprocess.run(
                ["virsh", "-q", "-c", libvirt_uri, "destroy", name], capture_output=True, timeout=60
            )


def test_a_console_that_cannot_start_is_said_in_the_status_bar(qtbot, window):
    with qtbot.waitSignal(window.ops.message) as said:
        assert not window.ops.open_console(["/nonexistent/virt-viewer", "--connect", "x", "y"])
    assert said.args == ["Could not start /nonexistent/virt-viewer"]


def test_the_launch_goes_through_this_machines_libvirt(window, monkeypatch):
    window.settings.set_libvirt_uris(["qemu+ssh://root@192.0.2.1/system"])
    assert window.ops.libvirt_uri() == ""  # the tests' defaults are none
    monkeypatch.setenv("IMAGEGUI_LIBVIRT_URIS", "qemu:///system")
    assert window.ops.libvirt_uri() == "qemu:///system"
    window.settings.set_libvirt_uris(["qemu+ssh://root@192.0.2.1/system", "test:///default"])
    assert window.ops.libvirt_uri() == "test:///default"


def test_a_vm_libvirt_defined_starts_with_its_own_settings(
    qtbot, window, open_dir, wait_plan, libvirt_uri, define_domain, shared_dir
):
    image = shared_dir / "d.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", image, "16M")
    dom = define_domain(disks=[image])
    window.settings.set_libvirt_uris([libvirt_uri])
    open_dir(shared_dir)
    dialog = open_launch(qtbot, window, str(image))
    dialog.runner.set_value("libvirt")
    plan = wait_plan(dialog)
    assert isinstance(plan, LibvirtLaunchPlan) and plan.domain == dom.name()
    assert not plan.refused, plan.describe()
    assert not dialog.memory.isEnabled() and not dialog.cpus.isEnabled()
    assert dialog.memory.toolTip() == f"{dom.name()} starts with its own settings"
    assert "as it is defined" in dialog.preview.toPlainText()
    dialog.runner.set_value("qemu")
    wait_plan(dialog)
    assert dialog.memory.isEnabled() and dialog.accel.toolTip().startswith("KVM runs")
    dialog.reject()
