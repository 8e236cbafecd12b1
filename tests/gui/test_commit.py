"""Commit…: the overlays that share the base are listed and the commit is refused."""

from __future__ import annotations

from conftest import qemu_info


def test_commit_dialog_lists_the_siblings_and_refuses(
    qtbot, window, open_dir, wait_plan, make, tmp_path
):
    base = make.create("base.qcow2", "qcow2", "1G")
    top = str(make.overlay("top.qcow2", "base.qcow2"))
    make.overlay("sibling.qcow2", "base.qcow2")
    make.overlay("nested.qcow2", "sibling.qcow2")
    before = base.read_bytes()[:4096]
    open_dir(tmp_path)
    window.selection.set(top)
    window.actions.commit.trigger()
    dialog = window.ops.dialog

    listed = [dialog.others.item(i).text() for i in range(dialog.others.count())]
    assert listed == ["nested.qcow2", "sibling.qcow2"]  # the sibling and what is built on it
    plan = wait_plan(dialog)
    assert plan.refused
    assert any(f.code == "shared-base" for f in plan.blocking())
    assert not dialog.ok_button.isEnabled()
    assert "Refused" in dialog.verdict.text()
    dialog.accept()  # refused: nothing runs
    assert window.jobs.records == []
    assert base.read_bytes()[:4096] == before

    dialog.force.setChecked(True)  # the explicit confirmation lifts the refusal
    plan = wait_plan(dialog)
    assert not plan.refused
    assert dialog.ok_button.isEnabled()
    assert dialog.ok_button.text() == "Commit and corrupt them"
    dialog.reject()


def test_commit_into_an_unshared_base_runs(qtbot, window, open_dir, wait_plan, make, tmp_path):
    make.create("base.qcow2", "qcow2", "1G")
    top = str(make.overlay("top.qcow2", "base.qcow2"))
    open_dir(tmp_path)
    window.selection.set(top)
    window.actions.commit.trigger()
    dialog = window.ops.dialog
    assert dialog.others.count() == 0
    assert not wait_plan(dialog).refused
    assert "qemu-img commit -p -f qcow2" in dialog.preview.toPlainText()
    with qtbot.waitSignal(window.ready, timeout=30_000):
        dialog.accept()
    assert window.jobs.records[-1].state == "done"
    assert qemu_info(top)["backing-filename"] == "base.qcow2"
