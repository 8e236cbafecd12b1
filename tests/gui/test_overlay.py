"""Create overlay…: the dialog previews the exact command, the file appears, the graph shows it."""

from __future__ import annotations

import os

from conftest import qemu_info


def test_create_overlay_via_the_dialog(qtbot, window, open_dir, wait_plan, make, tmp_path):
    base = str(make.create("base.qcow2", "qcow2", "1G"))
    open_dir(tmp_path)
    window.selection.set(base)
    window.actions.overlay.trigger()
    dialog = window.ops.dialog
    assert dialog.target.path() == str(tmp_path / "base-overlay.qcow2")  # prefilled

    new = str(tmp_path / "clones" / "web.qcow2")
    os.mkdir(tmp_path / "clones")
    dialog.target.set_path(new)
    dialog.size.setText("2G")
    plan = wait_plan(dialog)
    assert not plan.refused
    shown = dialog.preview.toPlainText()
    assert "qemu-img create -f qcow2 -b ../base.qcow2 -F qcow2" in shown
    assert "2147483648" in shown

    with qtbot.waitSignal(window.ready, timeout=30_000):  # runs, then the graph is redrawn
        dialog.accept()
    assert os.path.exists(new)
    info = qemu_info(new)
    assert info["backing-filename"] == "../base.qcow2"
    assert info["backing-filename-format"] == "qcow2"
    assert window.scene.shown(new)  # the graph shows it ...
    assert window.session.snapshot.graph.backing_of(new) == base  # ... on its base
    assert window.selection.node == new  # and selects it
    assert window.jobs.records[-1].state == "done"


def test_overlay_refuses_an_existing_file(qtbot, window, open_dir, wait_plan, make, tmp_path):
    base = str(make.create("base.qcow2", "qcow2", "1G"))
    taken = str(make.create("taken.qcow2", "qcow2", "1G"))
    open_dir(tmp_path)
    window.selection.set(base)
    window.actions.overlay.trigger()
    dialog = window.ops.dialog
    dialog.target.set_path(taken)
    plan = wait_plan(dialog)
    assert plan.refused
    assert not dialog.ok_button.isEnabled()
    assert "already exists" in dialog.verdict.text()
    dialog.accept()  # refused: stays open, runs nothing
    assert dialog.isVisible()
    assert window.jobs.records == []
    dialog.reject()
