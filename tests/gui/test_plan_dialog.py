"""The plan dialog's verdict names a list of files by count: the checks below list them once."""

from __future__ import annotations

from imagegui.gui.dialogs.launch_dialog import LaunchDialog
from imagegui.gui.dialogs.plan_dialog import count_paths


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
