"""Undo names what it undoes, acts on the journal's last change whatever is selected, and is
disabled (saying why) when there is nothing to undo."""

from __future__ import annotations

import shutil

from conftest import qemu_info

from imagegui.core.ops import journal


def _plain(action) -> str:
    return action.text().replace("&", "").rstrip("…")


def test_undo_target_from_the_journal(make, tmp_path, monkeypatch):
    from imagegui.core.ops.rebase import plan_rebase, plan_undo_rebase

    monkeypatch.setenv("IMAGEGUI_JOURNAL", str(tmp_path / "j" / "journal.jsonl"))
    empty = journal.undo_target()
    assert empty.entry is None and "no rebase has been recorded" in empty.reason
    make.create("old.qcow2")
    make.create("new.qcow2")
    web = make.overlay("web06.qcow2", "old.qcow2")
    plan_rebase(str(web), str(tmp_path / "new.qcow2"), unsafe=True).run()
    target = journal.undo_target()
    assert target.entry is not None and target.name == "web06.qcow2"
    assert target.entry.old_backing == "old.qcow2"
    plan_undo_rebase(str(web)).run()
    done = journal.undo_target()
    assert done.entry is None and "the last rebase (web06.qcow2) was already undone" in done.reason


def test_undo_names_the_last_change_and_ignores_the_selection(
    qtbot, window, open_dir, wait_plan, make, tmp_path
):
    make.create("images/base.qcow2")
    web = str(make.overlay("web06.qcow2", "images/base.qcow2"))
    other = str(make.create("other.qcow2"))
    (tmp_path / "archive").mkdir()
    shutil.move(tmp_path / "images" / "base.qcow2", tmp_path / "archive" / "base.qcow2")
    open_dir(tmp_path)
    undo = window.actions.undo_rebase
    qtbot.waitUntil(lambda: window.ops.undo is not None, timeout=10_000)
    assert not undo.isEnabled()
    assert "Unavailable: nothing to undo: no rebase has been recorded yet" in undo.toolTip()

    # Repair (a journalled rebase) through the window.
    window.selection.set(web)
    window.actions.repair.trigger()
    dialog = window.ops.dialog
    assert not wait_plan(dialog).refused
    with qtbot.waitSignal(window.ready, timeout=30_000):
        dialog.accept()
    assert qemu_info(web)["backing-filename"] == "archive/base.qcow2"
    assert undo.isEnabled()
    assert _plain(undo) == "Undo rebase of web06.qcow2"
    assert web in undo.toolTip()

    # Whatever is selected - another image, or nothing - the undo acts on web06.
    window.selection.set(other)
    assert undo.isEnabled() and _plain(undo) == "Undo rebase of web06.qcow2"
    window.selection.set(None)
    assert undo.isEnabled()
    undo.trigger()
    dialog = window.ops.dialog
    assert dialog.windowTitle() == "Undo rebase of web06.qcow2"
    assert "web06.qcow2" in dialog.intro.text() and "images/base.qcow2" in dialog.intro.text()
    plan = wait_plan(dialog)
    assert not plan.refused and plan.image == web
    with qtbot.waitSignal(window.ready, timeout=30_000):
        dialog.accept()
    assert qemu_info(web)["backing-filename"] == "images/base.qcow2"
    assert qemu_info(other).get("backing-filename") is None
    assert window.selection.node == web  # the undone image is shown

    # The last entry is an undo now: nothing left to undo, and the tooltip says so.
    assert not undo.isEnabled()
    assert "the last rebase (web06.qcow2) was already undone" in undo.toolTip()
    assert "already undone" in undo.statusTip()


def test_undo_updates_when_an_operation_finishes(qtbot, window, make, tmp_path):
    """Without a directory open (no rescan follows), a job's end re-reads the journal."""
    from imagegui.core.jobs import Job
    from imagegui.core.ops.rebase import plan_rebase

    make.create("old.qcow2")
    make.create("new.qcow2")
    web = make.overlay("web06.qcow2", "old.qcow2")
    qtbot.waitUntil(lambda: window.ops.undo is not None, timeout=10_000)
    assert not window.actions.undo_rebase.isEnabled()
    plan = plan_rebase(str(web), str(tmp_path / "new.qcow2"), unsafe=True)
    with qtbot.waitSignal(window.ops.undoChanged, timeout=30_000):
        window.jobs.start(Job("Rebase web06.qcow2", plan.run))
    assert _plain(window.actions.undo_rebase) == "Undo rebase of web06.qcow2"
