"""The dialogs name a file a chain would read from outside the folder and offer to allow exactly
that file, as a deliberate, unticked box; ticking it plans again and lets the run go ahead."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from conftest import qemu_img
from opshelpers import create

from imagegui.gui.dialogs.flatten_dialog import FlattenDialog


def test_flatten_dialog_offers_to_allow_the_outside_file_it_names(
    qtbot, window, open_dir, wait_plan, tmp_path: Path
):
    outside = create(tmp_path / "private" / "base.qcow2")
    outside.chmod(0o600)
    vms = tmp_path / "library" / "shelf" / "vms"
    vms.mkdir(parents=True)
    top = vms / "top.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-b", outside, "-F", "qcow2", top)
    open_dir(vms)
    window.selection.set(str(top))
    window.actions.flatten.trigger()
    dialog = window.ops.dialog
    assert isinstance(dialog, FlattenDialog)
    plan = wait_plan(dialog)
    assert plan.refused and plan.blocking()[0].subject == str(outside)
    assert not dialog.ok_button.isEnabled()
    assert str(outside) in dialog.verdict.text()
    box = dialog.allow_boxes[str(outside)]
    assert box.isVisibleTo(dialog) and not box.isChecked()
    assert str(outside) in box.text() and "--" not in box.text()
    with qtbot.waitSignal(dialog.planReady, timeout=30_000):
        box.click()
    plan = dialog.plan
    assert not plan.refused and plan.allow == (str(outside),)
    assert dialog.ok_button.isEnabled()
    assert dialog.allow_boxes[str(outside)].isChecked()  # stays, ticked, to untick again
    out = dialog.out_path
    with qtbot.waitSignal(window.ready, timeout=60_000):
        dialog.accept()
    assert window.jobs.records[-1].state == "done"
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600  # as private as its source
