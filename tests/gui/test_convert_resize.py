"""Convert… and Resize… in the window: the dialog's plan, the run, the new state read back."""

from __future__ import annotations

import subprocess

from conftest import qemu_info
from opshelpers import create, overlay, qemu_io


def test_convert_to_vmdk_and_the_copy_appears(qtbot, window, open_dir, wait_plan, tmp_path):
    img = create(tmp_path / "vm.qcow2")
    qemu_io(img, "write -P 0x61 1M 1M")
    open_dir(tmp_path)
    window.selection.set(str(img))
    assert window.actions.convert.isEnabled()
    window.actions.convert.trigger()
    dialog = window.ops.dialog
    assert dialog.format.currentData() == "vmdk" and dialog.out_path == str(tmp_path / "vm.vmdk")
    plan = wait_plan(dialog)
    assert not plan.refused
    assert "qemu-img convert -p -f qcow2 -O vmdk" in dialog.preview.toPlainText()
    assert not dialog.keep.isVisible()  # no backing file to keep
    with qtbot.waitSignal(window.ready, timeout=60_000):
        dialog.accept()
    assert window.jobs.records[-1].state == "done"
    assert window.selection.node == str(tmp_path / "vm.vmdk")
    proc = subprocess.run(["qemu-img", "compare", "-F", "vmdk", img, tmp_path / "vm.vmdk"])
    assert proc.returncode == 0


def test_resize_grows_and_refuses_a_base(qtbot, window, open_dir, wait_plan, tmp_path):
    base = create(tmp_path / "base.qcow2", "64M")
    child = overlay(tmp_path / "child.qcow2", base)
    open_dir(tmp_path)
    window.selection.set(str(base))
    window.actions.resize.trigger()
    dialog = window.ops.dialog
    plan = wait_plan(dialog)
    assert plan.refused and not dialog.ok_button.isEnabled()
    assert "does not see the new space until that overlay is resized too" in dialog.verdict.text()
    dialog.reject()
    window.selection.set(str(child))
    window.actions.resize.trigger()
    dialog = window.ops.dialog
    dialog.size.setText("+64M")
    plan = wait_plan(dialog)
    assert not plan.refused and plan.new_size == 128 << 20
    with qtbot.waitSignal(window.ready, timeout=60_000):
        dialog.accept()
    assert qemu_info(child)["virtual-size"] == 128 << 20
    dialog = None
    window.selection.set(str(child))
    window.actions.resize.trigger()
    dialog = window.ops.dialog
    dialog.size.setText("64M")
    plan = wait_plan(dialog)
    assert plan.refused and "Shrink the guest's partitions" in dialog.verdict.text()
    dialog.shrink.setChecked(True)
    plan = wait_plan(dialog)
    assert not plan.refused and dialog.ok_button.text() == "Shrink and cut off the end"
    dialog.reject()


def test_resize_off_for_formats_qemu_cannot_resize(window, open_dir, tmp_path):
    vmdk = create(tmp_path / "d.vmdk", "64M", "vmdk")
    open_dir(tmp_path)
    window.selection.set(str(vmdk))
    assert not window.actions.resize.isEnabled()
    assert "qemu cannot resize a vmdk image" in window.actions.resize.toolTip()
    assert window.actions.convert.isEnabled()


def test_new_image_from_the_file_menu(qtbot, window, open_dir, wait_plan, tmp_path):
    create(tmp_path / "other.qcow2")
    open_dir(tmp_path)
    assert window.actions.new_image.isEnabled()
    window.actions.new_image.trigger()
    dialog = window.ops.dialog
    assert dialog.new_path == str(tmp_path / "disk.qcow2")
    dialog.size.setText("96M")
    plan = wait_plan(dialog)
    assert not plan.refused and plan.size == 96 << 20
    dialog.format.setCurrentIndex(1)  # raw: no metadata to preallocate
    plan = wait_plan(dialog)
    assert dialog.new_path == str(tmp_path / "disk.raw") and plan.format == "raw"
    assert "metadata" not in [dialog.prealloc.itemData(i) for i in range(dialog.prealloc.count())]
    with qtbot.waitSignal(window.ready, timeout=60_000):
        dialog.accept()
    assert qemu_info(tmp_path / "disk.raw", "raw")["virtual-size"] == 96 << 20
    assert window.selection.node == str(tmp_path / "disk.raw")
