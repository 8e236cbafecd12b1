"""Check in the window: what qemu-img check finds becomes the image's problems, and Repair is
offered through plan, preview and a worker."""

from __future__ import annotations

import json
import os

from damaged import check_report, leaky_qcow2, truncated_qcow2
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from imagegui.core.chains.diagnose import Kind
from imagegui.gui.dialogs.check_repair_dialog import CheckRepairDialog
from imagegui.gui.panels.chains_model import COLUMNS

STATE = COLUMNS.index("State")


def run_check(qtbot, window, path: str) -> QMessageBox:
    """Check ``path`` and wait for the job and the rescan it starts."""
    window.selection.set(path)
    with (
        qtbot.waitSignal(window.session.snapshotReady, timeout=30_000),
        qtbot.waitSignal(window.jobs.jobFinished, timeout=30_000),
    ):
        window.actions.check.trigger()
    return window.ops.last_box


def state_text(window, path: str) -> str:
    model = window.chains.model
    return model.index_of(path).siblingAtColumn(STATE).data()


def problem_groups(window) -> dict[str, list[str]]:
    model = window.problems.model
    groups = {}
    for g in range(model.rowCount()):
        group = model.index(g, 0)
        groups[group.data()] = [
            model.problem_at(model.index(r, 0, group)).path for r in range(model.rowCount(group))
        ]
    return groups


def test_check_of_a_truncated_image_shows_as_its_problem(
    qtbot, window, open_dir, wait_plan, make, tmp_path
):
    img = str(truncated_qcow2(tmp_path / "trunc.qcow2"))
    top = str(make.overlay("top.qcow2", "trunc.qcow2"))
    open_dir(tmp_path)
    assert window.session.snapshot.graph.problems == []  # the header alone looks fine
    assert state_text(window, img) == "ok"

    box = run_check(qtbot, window, img)
    assert box.isVisible() and "3 corruption" in box.informativeText()
    labels = [b.text() for b in box.buttons()]
    assert "Repair All…" in labels and "Repair Leaks…" not in labels
    box.close()

    snap = window.session.snapshot
    assert [p.kind for p in snap.graph.problems_for(img)] == [Kind.CHECK_ERRORS]
    assert "error" in state_text(window, img)
    assert snap.status[top].unusable  # an error breaks the chain above it
    assert problem_groups(window) == {"Damaged metadata (1)": [img]}
    window.selection.set(img)
    html = window.details.toHtml()
    assert "3 corruptions" in html and "Repair all…" in html
    text = window.details.toPlainText()  # named by its title; its code only in the tooltip
    assert "Damaged metadata: " in text and "check-errors" not in text

    # The details panel's fix link opens the repair; Repair all is never the default button.
    window.details.actionRequested.emit("repair-all")
    dialog = window.ops.dialog
    assert isinstance(dialog, CheckRepairDialog) and dialog.repair_mode == "all"
    cancel = dialog.buttons.button(dialog.buttons.StandardButton.Cancel)
    assert cancel.isDefault() and not dialog.ok_button.isDefault()
    wait_plan(dialog)
    assert "may be lost" in dialog.verdict.text()
    dialog.reject()


def test_repair_leaks_is_offered_and_runs(qtbot, window, open_dir, wait_plan, tmp_path):
    img = str(leaky_qcow2(tmp_path / "leak.qcow2"))
    open_dir(tmp_path)
    box = run_check(qtbot, window, img)
    assert [p.kind for p in window.session.snapshot.graph.problems_for(img)] == [
        Kind.LEAKED_CLUSTERS
    ]
    assert "warning" in state_text(window, img)
    assert problem_groups(window) == {"Leaked clusters (1)": [img]}
    (repair,) = [b for b in box.buttons() if b.text() == "Repair Leaks…"]
    repair.click()
    dialog = window.ops.dialog
    assert isinstance(dialog, CheckRepairDialog) and dialog.repair_mode == "leaks"
    plan = wait_plan(dialog)
    assert not plan.refused and dialog.ok_button.isEnabled()
    assert dialog.ok_button.isDefault()  # leaks only: no guest data changes
    preview = dialog.preview.toPlainText()
    assert "-r leaks" in preview and json.dumps(img) in preview
    with qtbot.waitSignal(window.ready, timeout=30_000):
        dialog.accept()
    assert "leaks" not in check_report(tmp_path / "leak.qcow2")
    assert window.session.snapshot.graph.problems_for(img) == []
    assert window.problems.model.rowCount() == 0
    assert state_text(window, img) == "ok"


def test_switching_to_repair_all_makes_cancel_the_default(qtbot, window, open_dir, tmp_path):
    img = str(leaky_qcow2(tmp_path / "leak.qcow2"))
    open_dir(tmp_path)
    run_check(qtbot, window, img).close()
    window.details.actionRequested.emit("repair-leaks")
    dialog = window.ops.dialog
    assert dialog.ok_button.isDefault()
    dialog.mode.set_value("all")
    cancel = dialog.buttons.button(dialog.buttons.StandardButton.Cancel)
    assert cancel.isDefault() and not dialog.ok_button.isDefault()
    assert "may lose" in dialog.ok_button.text()
    qtbot.keyClick(dialog, Qt.Key.Key_Return)  # Enter presses Cancel: nothing runs
    assert not dialog.isVisible() and window.jobs.active_count() == 0


def test_a_damaged_store_is_a_note_in_the_status_bar(qtbot, window, open_dir, tmp_path):
    img = str(truncated_qcow2(tmp_path / "trunc.qcow2"))
    with open(os.environ["IMAGEGUI_CHECKS"], "w") as f:  # the test's own scratch store
        f.write("{damaged")
    open_dir(tmp_path)
    assert "could not be read" in window.status.currentMessage()
    run_check(qtbot, window, img).close()  # the check rewrites the store whole
    assert [p.kind for p in window.session.snapshot.graph.problems_for(img)] == [Kind.CHECK_ERRORS]
