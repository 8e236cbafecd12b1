"""A base that moved: the problems panel lists it, Repair points the clone at it, Undo restores."""

from __future__ import annotations

import shutil

from conftest import qemu_info

from imagegui.core.chains.diagnose import Kind


def test_problems_panel_lists_a_missing_backing_and_repair_fixes_it(
    qtbot, window, open_dir, wait_plan, make, tmp_path
):
    make.create("images/base.qcow2", "qcow2", "64M")
    clone = str(make.overlay("clones/clone.qcow2", "../images/base.qcow2"))
    (tmp_path / "archive").mkdir()
    shutil.move(tmp_path / "images" / "base.qcow2", tmp_path / "archive" / "base.qcow2")
    moved = str(tmp_path / "archive" / "base.qcow2")
    make.create("decoy.qcow2", "qcow2", "2G")  # not the same name, not the same size
    open_dir(tmp_path)

    model = window.problems.model
    group = model.index(0, 0)
    assert group.data() == "Missing backing file (1)"
    problem = model.problem_at(model.index(0, 0, group))
    assert problem.kind == Kind.MISSING_BACKING and problem.path == clone

    window.problems.tree.doubleClicked.emit(model.index(0, 0, group))
    assert window.selection.node == clone
    assert window.actions.repair.isEnabled()
    window.actions.repair.trigger()
    dialog = window.ops.dialog
    assert [c.path for c in dialog.candidates] == [moved]  # found by its name, best first
    assert dialog.chosen() == moved
    plan = wait_plan(dialog)
    assert "qemu-img rebase -f qcow2 -u -b ../archive/base.qcow2 -F qcow2" in (
        dialog.preview.toPlainText()
    )
    assert not plan.refused
    with qtbot.waitSignal(window.ready, timeout=30_000):
        dialog.accept()

    assert qemu_info(clone)["backing-filename"] == "../archive/base.qcow2"
    graph = window.session.snapshot.graph
    assert graph.problems == []
    assert graph.backing_of(clone) == moved
    assert window.problems.model.rowCount() == 0
    assert window.windowTitle().endswith("— 3 images, 0 problems — imagegui")

    # Undo Last Rebase puts back exactly the old pointer from the journal, even though the old
    # base is still gone (the plan says so), and the problem is back.
    window.selection.set(clone)
    window.actions.undo_rebase.trigger()
    dialog = window.ops.dialog
    plan = wait_plan(dialog)
    assert not plan.refused
    assert "restore-missing" in {f.code for f in plan.findings}
    assert "-b ../images/base.qcow2" in dialog.preview.toPlainText()
    with qtbot.waitSignal(window.ready, timeout=30_000):
        dialog.accept()
    graph = window.session.snapshot.graph
    assert [p.kind for p in graph.problems_for(clone)] == [Kind.MISSING_BACKING]
    assert qemu_info(clone)["backing-filename"] == "../images/base.qcow2"


def test_record_format_fix_from_the_details_panel(
    qtbot, window, open_dir, wait_plan, make, tmp_path
):
    from imagebytes import qcow2_drop_backing_format

    make.create("base.qcow2", "qcow2", "64M")
    old = make.overlay("old.qcow2", "base.qcow2")
    qcow2_drop_backing_format(old)
    open_dir(tmp_path)
    window.selection.set(str(old))
    assert "Record the backing format" in window.details.toHtml()
    window.details.actionRequested.emit("record-format")
    dialog = window.ops.dialog
    assert dialog.mode.value() == "unsafe"
    assert not wait_plan(dialog).refused
    with qtbot.waitSignal(window.ready, timeout=30_000):
        dialog.accept()
    assert qemu_info(old)["backing-filename-format"] == "qcow2"
    assert window.session.snapshot.graph.problems == []
