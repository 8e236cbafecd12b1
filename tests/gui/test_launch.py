"""Launch in QEMU…: a base with overlays only as a snapshot; a running VM listed with Stop."""

from __future__ import annotations

import pytest

from imagegui.gui.panels import vms as vms_panel


def test_a_base_with_overlays_launches_only_as_a_snapshot(
    qtbot, window, open_dir, wait_plan, make, tmp_path
):
    base = str(make.create("base.qcow2", "qcow2", "64M"))
    make.overlay("top.qcow2", "base.qcow2")
    open_dir(tmp_path)
    window.selection.set(base)
    window.actions.launch.trigger()
    dialog = window.ops.dialog
    assert not dialog.disk.buttons["writable"].isEnabled()
    assert dialog.disk.value() == "snapshot"
    plan = wait_plan(dialog)
    assert "snapshot=on" in dialog.preview.toPlainText()
    assert not plan.refused
    dialog.disk.buttons["writable"].setEnabled(True)  # even if forced on, it is refused
    dialog.disk.set_value("writable")
    assert wait_plan(dialog) is None
    assert not dialog.ok_button.isEnabled()
    dialog.reject()


@pytest.mark.slow
def test_launch_shows_the_vm_and_the_in_use_badge(
    qtbot, window, open_dir, wait_plan, make, tmp_path, monkeypatch
):
    monkeypatch.setattr(vms_panel, "STOP_TIMEOUT", 0.5)  # SeaBIOS ignores ACPI power-down
    make.create("base.qcow2", "qcow2", "64M")
    top = str(make.overlay("top.qcow2", "base.qcow2"))
    open_dir(tmp_path)
    window.selection.set(top)
    window.actions.launch.trigger()
    dialog = window.ops.dialog
    dialog.memory.setValue(64)
    dialog.headless.setChecked(True)
    dialog.accel.setCurrentIndex(dialog.accel.findData("tcg"))  # KVM may be absent or nested
    assert not wait_plan(dialog).refused
    with qtbot.waitSignal(window.vms.vmsChanged, timeout=60_000):
        dialog.accept()
    (record,) = window.vms.records
    assert record.state == "running"
    qtbot.waitUntil(lambda: window.session.snapshot.status[top].in_use, timeout=30_000)
    assert window.session.snapshot.status[top].writer
    # The details name the VM that holds it (looked up on a worker), not just "in use".
    window.selection.set(top)
    qtbot.waitUntil(
        lambda: (
            f'yes, written by the VM "imagegui:top.qcow2" (PID {record.vm.pid}'
            in window.details.toPlainText()
        ),
        timeout=30_000,
    )
    with qtbot.waitSignal(window.vms.vmsChanged, timeout=60_000):
        record.stop.click()
    assert record.state == "stopped"
    qtbot.waitUntil(lambda: not window.session.snapshot.status[top].in_use, timeout=30_000)
    assert window.settings.memory_mib() == 64  # remembered
    assert window.settings.accel() == "tcg"
