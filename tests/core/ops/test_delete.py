"""core.ops.delete: guarded deletion to the Trash (journalled, restorable) or permanently."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from opshelpers import create, overlay, sha256

from imagegui.core.ops import journal
from imagegui.core.ops.delete import plan_delete, plan_restore, plan_restore_entries
from imagegui.core.ops.plan import GuardRefused


@pytest.fixture(autouse=True)
def _journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "state" / "journal.jsonl"
    monkeypatch.setenv("IMAGEGUI_JOURNAL", str(path))
    return path


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    """base <- mid <- top, base <- other; and an unrelated orphan."""
    d = tmp_path / "images"
    base = create(d / "base.qcow2")
    mid = overlay(d / "mid.qcow2", base)
    return {
        "base": base,
        "mid": mid,
        "top": overlay(d / "top.qcow2", mid),
        "other": overlay(d / "other.qcow2", base),
        "orphan": create(d / "orphan.qcow2"),
    }


def test_a_base_with_overlays_is_refused_naming_them(tree, trash_home):
    plan = plan_delete([tree["mid"]])
    assert plan.refused and plan.items == []
    (f,) = plan.blocking()
    assert f.code == "has-overlays" and str(tree["top"]) in f.message
    assert f.paths == (str(tree["top"]),)
    with pytest.raises(GuardRefused):
        plan.run()
    assert tree["mid"].exists() and not (trash_home / "Trash").exists()


def test_an_orphan_goes_to_the_trash_journalled_and_comes_back(tree, trash_home):
    orphan = tree["orphan"]
    digest = sha256(orphan)
    plan = plan_delete([orphan])
    assert not plan.refused, plan.describe()
    assert plan.changes == [
        f"moves {orphan} ({plan.items[0].on_disk // 1024} KiB on disk) to the Trash "
        f"({trash_home / 'Trash'})"
    ]
    result = plan.run()
    assert not orphan.exists()
    (moved,) = result.trashed
    assert moved.trashed == str(trash_home / "Trash" / "files" / "orphan.qcow2")
    assert result.in_trash == plan.items[0].on_disk and result.freed == 0
    (entry,) = journal.in_trash()
    assert (entry.original, entry.trashed, entry.trashinfo) == (
        str(orphan),
        moved.trashed,
        moved.trashinfo,
    )
    target = journal.undo_target()
    assert target.kind == "delete" and target.name == "orphan.qcow2"
    assert target.batch == (entry,)

    restored = plan_restore([orphan])
    assert not restored.refused, restored.describe()
    assert restored.run().restored == [str(orphan)]
    assert sha256(orphan) == digest
    assert not os.path.lexists(moved.trashinfo)
    assert journal.in_trash() == []
    assert "already restored" in journal.undo_target().reason


def test_with_overlays_deletes_the_whole_tree_tops_first_as_one_batch(tree, trash_home):
    plan = plan_delete([tree["base"]], with_overlays=True)
    assert not plan.refused, plan.describe()
    order = [Path(i.path).name for i in plan.items]
    assert set(order) == {"base.qcow2", "mid.qcow2", "top.qcow2", "other.qcow2"}
    assert order.index("top.qcow2") < order.index("mid.qcow2") < order.index("base.qcow2")
    assert order[-1] == "base.qcow2"
    assert {i.overlay_of for i in plan.items if i.path == str(tree["top"])} == {str(tree["mid"])}
    plan.run()
    assert not any(tree[k].exists() for k in ("base", "mid", "top", "other"))
    assert tree["orphan"].exists()
    target = journal.undo_target()
    assert len(target.batch) == 4
    restore = plan_restore_entries(target.batch)
    assert not restore.refused
    restore.run()
    assert all(tree[k].exists() for k in ("base", "mid", "top", "other"))


def test_a_file_written_after_the_plan_is_kept(tree, trash_home):
    plan = plan_delete([tree["orphan"]])
    with open(tree["orphan"], "ab") as f:
        f.write(b"\0" * 512)
    with pytest.raises(GuardRefused, match="changed since this plan"):
        plan.run()
    assert tree["orphan"].exists()


def test_permanent_unlinks_and_journals_nothing(tree, trash_home):
    plan = plan_delete([tree["orphan"]], permanent=True)
    assert not plan.refused
    assert any(f.code == "permanent" and "cannot be restored" in f.message for f in plan.findings)
    result = plan.run()
    assert result.removed == [str(tree["orphan"])] and result.freed > 0
    assert not tree["orphan"].exists() and not (trash_home / "Trash").exists()
    assert journal.in_trash() == []


def test_links_directories_and_missing_files_are_refused_saying_why(tmp_path, trash_home):
    img = create(tmp_path / "real.qcow2")
    link = tmp_path / "link.qcow2"
    link.symlink_to(img.name)
    plan = plan_delete([link, tmp_path, tmp_path / "nope.qcow2"])
    got = {f.code: f.message for f in plan.blocking()}
    assert "symbolic link (to real.qcow2)" in got["symlink"]
    assert "a directory, not an image file" in got["not-a-file"]
    assert "does not exist" in got["gone"]
    assert img.exists() and link.is_symlink()


def test_partial_keeps_a_refused_file_and_deletes_the_rest(tree, trash_home):
    plan = plan_delete([tree["base"], tree["orphan"]], partial=True)
    assert not plan.refused and [f.code for f in plan.kept] == ["has-overlays"]
    result = plan.run()
    assert [t.original for t in result.trashed] == [str(tree["orphan"])]
    assert tree["base"].exists()


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A real qemu-system-x86_64 (TCG, paused) holding top.qcow2 and its base."""
    base = create(tmp_path / "vm" / "base.qcow2")
    top = overlay(tmp_path / "vm" / "top.qcow2", base)
    pidfile = tmp_path / "qemu.pid"
    # -daemonize returns only once the VM has its images open (and locked).
    subprocess.run(
        ["qemu-system-x86_64", "-machine", "accel=tcg", "-display", "none", "-S", "-daemonize",
         "-pidfile", str(pidfile), "-drive", f"file={top},format=qcow2,if=virtio"],
        check=True,
    )  # fmt: skip
    pid = int(pidfile.read_text())
    try:
        yield base, top
    finally:
        os.kill(pid, 9)


def test_an_image_a_running_vm_holds_is_refused(running, trash_home):
    base, top = running
    plan = plan_delete([top])
    (f,) = plan.blocking()
    assert f.code == "in-use" and "qemu-system-x86_64" in f.message
    with_tree = plan_delete([base], with_overlays=True)
    assert {f.code for f in with_tree.blocking()} == {"in-use"}
    assert top.exists() and base.exists()


@pytest.fixture
def flat_vmdk(tmp_path: Path) -> tuple[Path, Path]:
    """A monolithicFlat VMDK: the descriptor d.vmdk and its data in d-flat.vmdk."""
    d = tmp_path / "vmdk"
    d.mkdir()
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "vmdk", "-o", "subformat=monolithicFlat",
         str(d / "d.vmdk"), "8M"],
        check=True,
    )  # fmt: skip
    return d / "d.vmdk", d / "d-flat.vmdk"


def test_an_extent_is_refused_naming_its_image(flat_vmdk, trash_home):
    descriptor, flat = flat_vmdk
    plan = plan_delete([flat])
    (f,) = plan.blocking()
    assert f.code == "holds-data" and str(descriptor) in f.message
    assert flat.exists()


def test_an_image_goes_with_its_extents_and_comes_back_with_them(flat_vmdk, trash_home):
    descriptor, flat = flat_vmdk
    plan = plan_delete([descriptor])
    assert not plan.refused, plan.describe()
    assert [(i.path, i.extent_of) for i in plan.items] == [
        (str(descriptor), None),
        (str(flat), str(descriptor)),
    ]
    plan.run()
    assert not descriptor.exists() and not flat.exists()
    target = journal.undo_target()
    assert target.name == "d.vmdk" and len(target.batch) == 2
    restore = plan_restore([descriptor])
    assert [e.original for e in restore.entries] == [str(flat), str(descriptor)]
    restore.run()
    assert descriptor.exists() and flat.exists()


def test_a_base_named_with_everything_that_depends_on_it_goes_with_them(tree, trash_home):
    named = [tree["base"], tree["mid"], tree["top"], tree["other"]]
    plan = plan_delete(named)
    assert not plan.refused, plan.describe()
    order = [Path(i.path).name for i in plan.items]
    assert order.index("top.qcow2") < order.index("mid.qcow2") < order.index("base.qcow2")
    # One overlay left out: the base is refused, naming it.
    partly = plan_delete([tree["base"], tree["mid"], tree["top"]])
    assert {f.code for f in partly.blocking()} == {"has-overlays"}
    assert str(tree["other"]) in partly.blocking()[0].message


def test_a_plan_scans_each_folder_once_however_many_files(tmp_path, trash_home, monkeypatch):
    import imagegui.core.read.scan as scan

    d = tmp_path / "many"
    files = [create(d / f"img{i}.qcow2", "1M") for i in range(12)]
    calls: list[str] = []
    real = scan.scan_directory

    def counting(root, *args, **kwargs):
        calls.append(root)
        return real(root, *args, **kwargs)

    monkeypatch.setattr(scan, "scan_directory", counting)
    plan = plan_delete(files)
    assert not plan.refused and len(plan.items) == 12
    assert calls == [str(d)]
    calls.clear()
    plan.run()
    assert calls == [str(d)] * 2  # the run plans again, then scans as it starts
    assert not any(f.exists() for f in files)


def test_a_cancel_between_files_keeps_the_rest_in_place(tmp_path, trash_home):
    from imagegui.core.jobs import CancelToken

    files = [create(tmp_path / "c" / f"img{i}.qcow2", "1M") for i in range(3)]
    token = CancelToken()
    result = plan_delete(files).run(lambda _fraction: token.cancel(), token)
    assert [t.original for t in result.trashed] == [str(files[0])]
    assert [f.code for f in result.kept] == ["cancelled", "cancelled"]
    assert not files[0].exists() and files[1].exists() and files[2].exists()
    assert [e.original for e in journal.in_trash()] == [str(files[0])]
