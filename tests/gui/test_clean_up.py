"""File ▸ Clean Up…: the reclaimable files by kind with their sizes and the total ticked, an age
that changes which unused images are listed, the plan, the run to the Trash, and the choices
remembered."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from PySide6.QtCore import Qt

from imagegui.core.units import human_size

PATH = Qt.ItemDataRole.UserRole


def aged(path: Path, days: float) -> Path:
    then = time.time() - days * 86400
    os.utime(path, (then, then))
    return path


def write_data(path: Path) -> None:
    """Guest data of the overlay's own (qemu-io writes it), so it is not an empty overlay."""
    subprocess.run(
        ["qemu-io", "-f", "qcow2", "-c", "write -P 0xab 0 1M", str(path)],
        check=True,
        capture_output=True,
    )


def on_disk(path: str | Path) -> int:
    return os.lstat(path).st_blocks * 512


def listed(dialog) -> dict[str, list[tuple[str, str]]]:
    """Each kind's rows: (path, size shown), in the list's order."""
    out: dict[str, list[tuple[str, str]]] = {}
    tree = dialog.tree
    for g in range(tree.topLevelItemCount()):
        group = tree.topLevelItem(g)
        rows = [
            (group.child(r).data(0, Qt.ItemDataRole.UserRole), group.child(r).text(1))
            for r in range(group.childCount())
        ]
        out[group.data(0, Qt.ItemDataRole.UserRole + 1)] = rows
    return out


def open_clean_up(qtbot, window):
    action = window.actions.clean_up
    assert action.isEnabled()
    with qtbot.waitSignal(window.ops.dialogOpened) as opened:
        action.trigger()
    dialog = opened.args[0]
    qtbot.waitUntil(lambda: dialog.items is not None, timeout=30_000)
    return dialog


def test_clean_up_lists_what_can_go_with_sizes_and_the_total(
    qtbot, window, open_dir, wait_plan, make, tmp_path, trash_home, settings
):
    base = make.create("base.qcow2")
    used = make.overlay("used.qcow2", "base.qcow2")
    write_data(used)
    aged(base, 90)
    aged(used, 90)  # old, but base has an overlay and used holds data: neither is listed...
    empty = str(aged(make.overlay("empty.qcow2", "base.qcow2"), 40))  # ...this one stores nothing
    # An overlay made a minute ago is empty because its VM has not started yet: not offered.
    make.overlay("new-empty.qcow2", "base.qcow2")
    old = make.create("old.qcow2")
    write_data(old)
    old = str(aged(old, 40))
    fresh = make.create("fresh.qcow2")
    write_data(fresh)
    partial = tmp_path / ".flat.qcow2.0badcafe.partial"
    partial.write_bytes(os.urandom(300_000))
    partial = str(aged(partial, 1))
    open_dir(tmp_path)
    dialog = open_clean_up(qtbot, window)
    from gui.test_a11y import unnamed_controls

    assert unnamed_controls(dialog) == []
    rows = listed(dialog)
    # used.qcow2 is listed as orphan only once it is unused *and* old: it is both, so it is.
    assert rows["leftover"] == [(partial, human_size(on_disk(partial)))]
    assert rows["empty-overlay"] == [(empty, human_size(on_disk(empty)))]
    assert sorted(p for p, _ in rows["orphan"]) == sorted([old, str(used)])
    assert rows["nova-unused-base"] == []
    group = dialog.group_item("nova-unused-base")
    assert group.text(2).startswith("none found")
    assert not group.flags() & Qt.ItemFlag.ItemIsUserCheckable
    assert not dialog.nova_note.isVisible()
    everything = [partial, empty, old, str(used)]
    total = sum(on_disk(p) for p in everything)
    assert dialog.total.text() == (
        f"Selected: 4 files, {human_size(total)} (of {human_size(total)} that could go)"
    )
    assert dialog.cancel_button.isDefault()  # Enter must not delete
    plan = wait_plan(dialog)
    assert plan is not None and not plan.refused
    assert dialog.ok_button.text() == "Move 4 Files to Trash"

    # A file unticked stays unticked when a new age lists it again.
    orphans = dialog.group_item("orphan")
    (row,) = [orphans.child(r) for r in range(2) if orphans.child(r).data(0, PATH) == str(used)]
    row.setCheckState(0, Qt.CheckState.Unchecked)
    assert orphans.checkState(0) == Qt.CheckState.PartiallyChecked
    # A longer age leaves out the files written 40 days ago (used.qcow2: 90 days, still in).
    dialog.days.setValue(60)
    qtbot.waitUntil(lambda: dialog.items is not None, timeout=30_000)
    assert [p for p, _ in listed(dialog)["orphan"]] == [str(used)]
    assert listed(dialog)["empty-overlay"] == []
    dialog.days.setValue(30)
    qtbot.waitUntil(lambda: dialog.items is not None and len(dialog.items) == 4, timeout=30_000)
    orphans = dialog.group_item("orphan")
    states = {
        orphans.child(r).data(0, PATH): orphans.child(r).checkState(0)
        for r in range(orphans.childCount())
    }
    assert states == {str(used): Qt.CheckState.Unchecked, old: Qt.CheckState.Checked}

    # Untick the unused images: the total and the plan follow.
    dialog.group_item("orphan").setCheckState(0, Qt.CheckState.Unchecked)
    kept = [partial, empty]
    assert dialog.total.text().startswith(
        f"Selected: 2 files, {human_size(sum(on_disk(p) for p in kept))} "
    )
    plan = wait_plan(dialog)
    assert sorted(i.path for i in plan.items) == sorted(kept)
    assert dialog.ok_button.text() == "Move 2 Files to Trash"
    with qtbot.waitSignal(window.ready, timeout=30_000):
        dialog.accept()
    assert not os.path.exists(partial) and not os.path.exists(empty)
    assert os.path.exists(old) and os.path.exists(used) and os.path.exists(base)
    assert sorted(os.listdir(trash_home / "Trash" / "files")) == sorted(
        os.path.basename(p) for p in kept
    )
    assert window.status.currentMessage().startswith("Moved 2 files (")
    # Remembered: the age and the kinds left unticked.
    assert settings.cleanup_days() == 30
    assert settings.cleanup_unticked() == ["orphan"]
    dialog = open_clean_up(qtbot, window)
    assert dialog.group_item("orphan").checkState(0) == Qt.CheckState.Unchecked
    dialog.reject()


def test_clean_up_with_nothing_to_clean_says_so(
    qtbot, window, open_dir, wait_plan, make, tmp_path, trash_home
):
    write_data(make.create("fresh.qcow2"))
    open_dir(tmp_path)
    dialog = open_clean_up(qtbot, window)
    assert all(rows == [] for rows in listed(dialog).values())
    assert dialog.total.text() == "Nothing to clean up: nothing of these kinds was found."
    assert dialog.verdict.text() == "Nothing to clean up."
    assert not dialog.ok_button.isEnabled()
    dialog.reject()


def test_clean_up_of_a_nova_cache_offers_the_unused_base_with_the_shared_base_warning(
    qtbot, window, open_dir, wait_plan, tmp_path, trash_home
):
    from imagegui.core.demo import build_demo

    root = build_demo(str(tmp_path / "demo"))
    open_dir(root)
    graph = window.session.snapshot.graph
    unused = [
        p for p in graph.nodes if (b := graph.nova_base(p)) is not None and b.nova_would_remove
    ]
    assert len(unused) == 1
    dialog = open_clean_up(qtbot, window)
    assert [p for p, _ in listed(dialog)["nova-unused-base"]] == unused
    assert dialog.nova_note.isVisible()
    assert "Other compute hosts that share this _base folder" in dialog.nova_note.text()
    used = [p for p in graph.nodes if graph.nova_base(p) is not None and p not in unused]
    everything = {p for rows in listed(dialog).values() for p, _ in rows}
    assert used and not everything & set(used)  # a base an instance uses is never offered
    dialog.reject()
