"""The VM panel: Force off always there, the power-down countdown, VMs of an earlier session found
again, and the question on quit (Power off / Keep running / Cancel, Cancel the default).

Real TCG qemu-system-x86_64 with no OS: SeaBIOS never obeys an ACPI power-down, exactly the
guest for which Force off exists.
"""

from __future__ import annotations

import pytest
from opshelpers import create
from PySide6.QtWidgets import QMessageBox

from imagegui.core.ops.launch import LaunchOptions, plan_launch
from imagegui.core.read.locks import lock_state
from imagegui.gui.panels import vms as vms_panel

TCG = LaunchOptions(memory=64, accel="tcg")


@pytest.fixture
def vm(tmp_path):
    """A VM started here (not through the window), stopped at the end whatever happened."""
    started = plan_launch(str(create(tmp_path / "guest.qcow2")), TCG).run().vm
    yield started
    started.stop(timeout=0)


@pytest.mark.slow
def test_force_off_ends_a_stop_that_waits_for_the_guest(qtbot, window, vm, monkeypatch):
    monkeypatch.setattr(vms_panel, "STOP_TIMEOUT", 600.0)  # the guest will never power down
    record = window.vms.add(vm)
    assert record.force.isEnabled() and record.stop.isEnabled()
    record.stop.click()
    assert not record.stop.isEnabled() and record.force.isEnabled()  # Force off stays
    qtbot.waitUntil(lambda: "off in " in record.status.text(), timeout=30_000)
    assert record.status.text().startswith("powering down… off in ")
    with qtbot.waitSignal(window.vms.vmsChanged, timeout=60_000):
        record.force.click()
    assert record.state == "stopped" and not vm.running()
    assert not lock_state(vm.image).in_use


@pytest.mark.slow
def test_force_off_without_a_stop_first(qtbot, window, vm):
    record = window.vms.add(vm)
    with qtbot.waitSignal(window.vms.vmsChanged, timeout=60_000):
        record.force.click()
    assert record.state == "stopped" and not vm.running()


@pytest.mark.slow
def test_a_vm_of_an_earlier_session_is_found_and_stopped(qtbot, window, vm, monkeypatch):
    monkeypatch.setattr(vms_panel, "STOP_TIMEOUT", 0.5)
    vm.close()  # the launcher's handle is gone, as after a crash or "Keep running"
    with qtbot.waitSignal(window.vms.discovered, timeout=30_000) as found:
        window.vms.discover()
    assert found.args == [1]
    (record,) = window.vms.records
    assert record.found and record.vm.pid == vm.pid and record.vm.image == vm.image
    assert "guest.qcow2" in record.row.findChildren(vms_panel.QLabel)[1].text()
    with qtbot.waitSignal(window.vms.discovered, timeout=30_000) as again:
        window.vms.discover()  # listed once, not twice
    assert again.args == [0] and len(window.vms.records) == 1
    with qtbot.waitSignal(window.vms.vmsChanged, timeout=60_000):
        record.stop.click()
    assert record.state == "stopped"
    assert vm.wait(30) == 0  # qemu quit after the power-down wait
    assert not lock_state(vm.image).in_use


def test_the_quit_question_defaults_to_cancel(window, vm):
    record = window.vms.add(vm)
    box = window.vm_quit_box([record, record])
    assert box.text() == "2 VMs running: guest.qcow2, guest.qcow2"
    texts = [b.text().replace("&", "") for b in box.buttons()]
    assert sorted(texts) == ["Cancel", "Keep running", "Power off"]
    assert box.defaultButton() is box.button(QMessageBox.StandardButton.Cancel)
    assert box.escapeButton() is box.button(QMessageBox.StandardButton.Cancel)


@pytest.mark.slow
def test_quit_cancel_keep_and_power_off(qtbot, window, vm, monkeypatch):
    monkeypatch.setattr(vms_panel, "STOP_TIMEOUT", 0.5)
    window.ask_before_closing = True
    window.vms.add(vm)
    answers = ["cancel"]
    monkeypatch.setattr(window, "ask_about_vms", lambda vms: answers.pop(0))
    assert not window.close()
    assert window.isVisible() and vm.running()
    answers.append("power-off")
    assert not window.close()  # closes by itself once the VM is off
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=60_000)
    assert not vm.running()


@pytest.mark.slow
def test_keep_running_leaves_the_vm_running(qtbot, window, vm, monkeypatch):
    window.ask_before_closing = True
    window.vms.add(vm)
    monkeypatch.setattr(window, "ask_about_vms", lambda vms: "keep")
    assert window.close()
    assert vm.running() and vm.status() == "running"
