"""The plan dialog's verdict names a list of files by count: the checks below list them once; a
plan made for fields that have changed since never shows."""

from __future__ import annotations

import threading

from imagegui.core.ops.check import plan_check
from imagegui.core.ops.commit import plan_commit
from imagegui.core.ops.leftovers import plan_clean_leftovers
from imagegui.gui.dialogs.launch_dialog import LaunchDialog
from imagegui.gui.dialogs.plan_dialog import PlanDialog, count_paths, plan_html


def test_count_paths_names_three_or_more_files_by_count():
    assert count_paths("/a/b is the backing file of /x/1, /x/2, /x/3: no") == (
        "/a/b is the backing file of 3 images (listed below): no"
    )
    assert count_paths("/a/b is the backing file of /x/1, /x/2: no") == (
        "/a/b is the backing file of /x/1, /x/2: no"
    )


def test_a_launch_refusal_lists_the_overlays_once(
    qtbot, window, open_dir, wait_plan, make, tmp_path
):
    base = make.create("base.qcow2", "qcow2", "64M")
    names = [f"clone-{n}.qcow2" for n in range(5)]
    for name in names:
        make.overlay(name, "base.qcow2")
    open_dir(tmp_path)
    info = window.session.snapshot.graph.image(str(base))
    # Told of no overlays, the dialog offers a writable boot; the guard finds them and refuses.
    dialog = LaunchDialog(info, 0, str(tmp_path), 256, 1, parent=window)
    dialog.open()
    plan = wait_plan(dialog)
    assert plan.refused
    assert "5 images (listed below)" in dialog.verdict.text()
    assert not any(name in dialog.verdict.text() for name in names)
    assert all(dialog.preview.toPlainText().count(name) == 1 for name in names)
    dialog.reject()


class GatedDialog(PlanDialog):
    """Plans a check of ``self.image``; each image's planning waits for its own gate, so a test
    decides which plan comes back first."""

    def __init__(self, image: str, gates: dict[str, threading.Event], parent=None):
        super().__init__("Check", "Check", parent)
        self.image = image
        self.gates = gates

    def planner(self):
        image, gate = self.image, self.gates[self.image]

        def make():
            gate.wait(30)
            return plan_check(image)

        return make


def test_a_plan_for_fields_that_changed_never_arrives(qtbot, window, make):
    old = str(make.create("old.qcow2"))
    new = str(make.create("new.qcow2"))
    gates = {old: threading.Event(), new: threading.Event()}
    dialog = GatedDialog(old, gates, window)
    dialog._debounce.stop()
    dialog.replan()
    first = dialog._planning.handle
    dialog.image = new
    dialog.fields_changed()
    dialog.replan()
    assert first.token.cancelled
    gates[old].set()  # the old plan is made anyway, and dropped
    qtbot.waitUntil(lambda: first.done, timeout=10_000)
    assert dialog.plan is None and dialog.planning
    with qtbot.waitSignal(dialog.planReady, timeout=10_000) as blocker:
        gates[new].set()
    assert blocker.args[0] is dialog.plan
    assert [line for line in dialog.plan.command_lines() if "new.qcow2" in line]
    assert not [line for line in dialog.plan.command_lines() if "old.qcow2" in line]
    dialog.reject()


def test_the_preview_says_where_it_looked_for_other_overlays(make, tmp_path):
    """The folders a commit searched for the base's other overlays, in the window's words,
    once: its note says it with what was not looked at, so no second line repeats it."""
    make.create("templates/base.qcow2")
    mine = make.overlay("clones/mine.qcow2", "../templates/base.qcow2")
    html = plan_html(plan_commit(str(mine)))
    assert f"under {tmp_path}; clones kept anywhere else are not seen" in html
    assert "Looked for" not in html
    leftover = tmp_path / "d" / ".out.qcow2.0123abcd.partial"
    leftover.parent.mkdir()
    leftover.write_bytes(b"x")
    html = plan_html(plan_clean_leftovers([str(leftover)]))
    assert f"Looked for images backing onto these files in {tmp_path / 'd'}" in html
