"""core.ops.change_undo: a new image, a convert, a snapshot taken and a disk grown are journalled
and undone exactly - and refused, naming why, when the result is no longer what was made."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import qemu_img, qemu_info
from opshelpers import create, overlay, pattern_at, qemu_io, sha256

from imagegui.core.ops import journal
from imagegui.core.ops.change_undo import plan_undo_change
from imagegui.core.ops.convert import plan_convert
from imagegui.core.ops.newimage import plan_new
from imagegui.core.ops.plan import GuardRefused
from imagegui.core.ops.resize import plan_resize
from imagegui.core.ops.snapshot import plan_snapshot
from imagegui.core.read.snapshots import read_snapshots


@pytest.fixture(autouse=True)
def _journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "state" / "journal.jsonl"
    monkeypatch.setenv("IMAGEGUI_JOURNAL", str(path))
    return path


def codes(plan) -> set[str]:
    return {f.code for f in plan.blocking()}


def names(path: Path) -> list[str]:
    return [s.name for s in read_snapshots(str(path))]


# --------------------------------------------------------------------------- new / convert


def test_new_is_undone_to_the_trash_and_undo_is_offered_by_name(tmp_path: Path, trash_home):
    path = tmp_path / "fresh.qcow2"
    plan = plan_new(str(path), 64 << 20)
    assert "undoable" in {f.code for f in plan.findings}
    plan.run()
    target = journal.undo_target()
    assert target.kind == journal.NEW_OP and target.name == "fresh.qcow2"
    undo = plan_undo_change(journal.NEW_OP, str(path))
    assert not undo.refused, undo.describe()
    result = undo.run()
    assert not path.exists()
    trashed = trash_home / "Trash" / "files" / "fresh.qcow2"
    assert trashed.exists() and qemu_info(trashed)["virtual-size"] == 64 << 20
    assert "fresh.qcow2" in result.message
    # Undone once: nothing to undo, and a second undo is refused.
    assert journal.undo_target().entry is None
    assert "already undone" in journal.undo_target().reason
    assert "no-journal" in codes(plan_undo_change(journal.NEW_OP, str(path)))
    # It can be put back from the Trash like any delete.
    assert journal.last_deletion(str(path)) is not None


def test_new_undo_refused_with_an_overlay_or_another_file_there(tmp_path: Path):
    path = tmp_path / "base.qcow2"
    plan_new(str(path), 64 << 20).run()
    top = overlay(tmp_path / "top.qcow2", path)
    assert "has-overlays" in codes(plan_undo_change(journal.NEW_OP, str(path)))
    top.unlink()
    # Replaced by another file of the same name: not the one created.
    other = create(tmp_path / "other.qcow2")
    os.replace(other, path)
    refused = plan_undo_change(journal.NEW_OP, str(path))
    assert "changed-identity" in codes(refused)
    with pytest.raises(GuardRefused):
        refused.run()
    assert path.exists()


def test_new_undo_refused_while_in_use(tmp_path: Path):
    import subprocess

    path = tmp_path / "busy.qcow2"
    plan_new(str(path), 64 << 20).run()
    # qemu-io holds the image's write lock while it waits on stdin.
    proc = subprocess.Popen(
        ["qemu-io", "-f", "qcow2", str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        proc.stdin.write(b"help\n")
        proc.stdin.flush()
        proc.stdout.readline()  # qemu-io answered: it has the image open
        assert "in-use" in codes(plan_undo_change(journal.NEW_OP, str(path)))
    finally:
        proc.communicate(b"quit\n", timeout=30)
    assert path.exists()


def test_convert_undo_trashes_the_output_and_leaves_the_source(tmp_path: Path, trash_home):
    src = create(tmp_path / "src.qcow2")
    qemu_io(src, "write -P 0x5a 0 1M")
    before = sha256(src)
    dest = tmp_path / "out.vmdk"
    plan_convert(str(src), str(dest), "vmdk").run()
    assert journal.undo_target().kind == journal.CONVERT_OP
    undo = plan_undo_change(journal.CONVERT_OP, str(dest))
    assert not undo.refused, undo.describe()
    assert "source-kept" in {f.code for f in undo.findings}
    undo.run()
    assert not dest.exists() and sha256(src) == before
    assert (trash_home / "Trash" / "files" / "out.vmdk").exists()


def test_convert_undo_is_not_a_new_undo(tmp_path: Path):
    """Each command undoes its own kind: new --undo of a converted file finds nothing."""
    src = create(tmp_path / "src.qcow2")
    dest = tmp_path / "out.qcow2"
    plan_convert(str(src), str(dest)).run()
    assert "no-journal" in codes(plan_undo_change(journal.NEW_OP, str(dest)))


# --------------------------------------------------------------------------- snapshot create


def test_snapshot_create_undone_deletes_exactly_that_snapshot(tmp_path: Path):
    img = create(tmp_path / "vm.qcow2")
    qemu_img("snapshot", "-c", "older", img)
    plan = plan_snapshot(str(img), "create", "before-upgrade")
    assert "undoable" in {f.code for f in plan.findings}
    plan.run()
    target = journal.undo_target()
    assert target.kind == journal.SNAPSHOT_OP
    assert target.name == "before-upgrade of vm.qcow2"
    undo = plan_undo_change(journal.SNAPSHOT_OP, str(img))
    assert not undo.refused, undo.describe()
    assert undo.commands[0][:2] == ["qemu-img", "snapshot"]
    assert undo.commands[0][-3:-1] == ["-d", "before-upgrade"]
    undo.run()
    assert names(img) == ["older"]


def test_snapshot_undo_refused_when_gone_or_taken_again(tmp_path: Path):
    img = create(tmp_path / "vm.qcow2")
    plan_snapshot(str(img), "create", "s").run()
    qemu_img("snapshot", "-d", "s", img)
    assert "snapshot-gone" in codes(plan_undo_change(journal.SNAPSHOT_OP, str(img)))
    qemu_img("snapshot", "-c", "s", img)  # the same name, another snapshot (another id)
    refused = plan_undo_change(journal.SNAPSHOT_OP, str(img))
    assert "snapshot-replaced" in codes(refused)
    with pytest.raises(GuardRefused):
        refused.run()
    assert names(img) == ["s"]


def test_snapshot_apply_and_delete_say_they_cannot_be_undone(tmp_path: Path):
    img = create(tmp_path / "vm.qcow2")
    qemu_img("snapshot", "-c", "s", img)
    for action in ("apply", "delete"):
        found = {f.code: f.message for f in plan_snapshot(str(img), action, "s").findings}
        assert "cannot be undone" in found["not-undoable"]
    plan_snapshot(str(img), "delete", "s").run()
    assert journal.undo_target().entry is None  # not journalled


# --------------------------------------------------------------------------- resize


def test_grow_undone_shrinks_back_when_nothing_was_written_past(tmp_path: Path):
    img = create(tmp_path / "vm.qcow2", "64M")
    qemu_io(img, "write -P 0x33 63M 1M")  # data right up to the old end
    plan_resize(str(img), 128 << 20).run()
    assert journal.undo_target().kind == journal.RESIZE_OP
    undo = plan_undo_change(journal.RESIZE_OP, str(img))
    assert not undo.refused, undo.describe()
    assert "nothing-past" in {f.code for f in undo.findings}
    assert "shrink" not in {f.code for f in undo.findings}  # no partitions to shrink: said why
    undo.run()
    assert qemu_info(img)["virtual-size"] == 64 << 20
    assert pattern_at(img, 0x33, "63M", "1M")


def test_grow_undo_refused_once_data_was_written_past_the_old_size(tmp_path: Path):
    img = create(tmp_path / "vm.qcow2", "64M")
    plan_resize(str(img), 128 << 20).run()
    qemu_io(img, "write -P 0x44 100M 64k")
    refused = plan_undo_change(journal.RESIZE_OP, str(img))
    assert "written-past" in codes(refused)
    with pytest.raises(GuardRefused):
        refused.run()
    assert qemu_info(img)["virtual-size"] == 128 << 20


def test_grow_undo_reads_back_the_block_holding_the_old_end(tmp_path: Path):
    """An old size inside a cluster: the cluster was allocated before the grow, so the map
    alone cannot tell; bytes written just past the old end refuse, zeros there do not."""
    img = create(tmp_path / "vm.qcow2", "1000K")  # not a multiple of the 64 KiB cluster
    qemu_io(img, "write -P 0x55 960K 40K")  # the last cluster allocated, up to the old end
    plan_resize(str(img), 2 << 20).run()
    assert not plan_undo_change(journal.RESIZE_OP, str(img)).refused
    qemu_io(img, "write -P 0x66 1000K 4K")  # same cluster, past the old end
    assert "written-past" in codes(plan_undo_change(journal.RESIZE_OP, str(img)))


def test_raw_grow_undone(tmp_path: Path):
    img = create(tmp_path / "disk.raw", "64M", fmt="raw")
    qemu_io(img, "write -P 0x77 0 1M", fmt="raw")
    plan_resize(str(img), 96 << 20).run()
    plan_undo_change(journal.RESIZE_OP, str(img)).run()
    assert os.path.getsize(img) == 64 << 20
    assert img.read_bytes()[: 1 << 20] == b"\x77" * (1 << 20)


def test_grow_undo_refused_when_resized_again_or_a_base_now(tmp_path: Path):
    img = create(tmp_path / "vm.qcow2", "64M")
    plan_resize(str(img), 128 << 20).run()
    top = overlay(tmp_path / "top.qcow2", img)
    assert "base-has-overlays" in codes(plan_undo_change(journal.RESIZE_OP, str(img)))
    top.unlink()
    qemu_img("resize", img, "192M")
    assert "resized-since" in codes(plan_undo_change(journal.RESIZE_OP, str(img)))


def test_shrink_says_it_cannot_be_undone_and_is_not_journalled(tmp_path: Path):
    img = create(tmp_path / "vm.qcow2", "64M")
    plan = plan_resize(str(img), 32 << 20, shrink=True)
    assert "cannot be undone" in {f.code: f.message for f in plan.findings}["not-undoable"]
    plan.run()
    assert journal.undo_target().entry is None


def test_an_unreadable_journal_line_is_skipped(tmp_path: Path, _journal: Path):
    img = create(tmp_path / "vm.qcow2")
    plan_snapshot(str(img), "create", "s").run()
    with open(_journal, "a") as f:
        f.write('{"op": "snapshot-create", "id": 5}\n')
    undo = plan_undo_change(journal.SNAPSHOT_OP, str(img))
    assert not undo.refused
    assert "journal-line" in {f.code for f in undo.findings}
    shutil.rmtree(tmp_path / "state")
