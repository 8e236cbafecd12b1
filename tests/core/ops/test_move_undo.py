"""core.ops.move_undo and the journal's move entry: a move is one undoable unit (Undo offers
"move of NAME", not one of its pointer rewrites), undone exactly, refused when anything changed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import qemu_info
from opshelpers import create, qemu_io, same_content

from imagegui.core.chains.graph import ChainGraph
from imagegui.core.jobs import CancelledError, CancelToken
from imagegui.core.ops import journal
from imagegui.core.ops.move import plan_move
from imagegui.core.ops.move_undo import plan_undo_move
from imagegui.core.ops.plan import GuardRefused
from imagegui.core.ops.rebase import plan_undo_rebase
from imagegui.core.read.scan import scan_directory


@pytest.fixture(autouse=True)
def _journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "state" / "journal.jsonl"
    monkeypatch.setenv("IMAGEGUI_JOURNAL", str(path))
    return path


def overlay(path: Path, backing: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    argv = ["qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", backing, "-F", "qcow2"]
    subprocess.run([*argv, str(path), "64M"], check=True)
    return path


@pytest.fixture
def vms(tmp_path: Path) -> dict[str, Path]:
    vms = tmp_path / "vms"
    base = create(vms / "base.qcow2")
    qemu_io(base, "write -P 0x11 0 2M")
    rel = overlay(vms / "rel.qcow2", "./base.qcow2")  # a form a recomputed name would not keep
    qemu_io(rel, "write -P 0x22 1M 1M")
    ab = overlay(vms / "abs.qcow2", str(base))
    refs = tmp_path / "refs"
    refs.mkdir()
    for p in (rel, ab):
        subprocess.run(
            ["qemu-img", "convert", "-O", "qcow2", str(p), str(refs / p.name)], check=True
        )
    return {"base": base, "rel": rel, "abs": ab, "refs": refs}


def problems(root: Path) -> list[str]:
    return [f"{p.kind} {p.path}" for p in ChainGraph(scan_directory(str(root))).problems]


def test_undo_offers_the_move_not_one_of_its_rewrites(tmp_path: Path, vms):
    plan_move([str(vms["base"])], str(tmp_path / "vms" / "golden.qcow2")).run()
    target = journal.undo_target()
    assert target.kind == journal.MOVE_OP
    assert target.name == "base.qcow2"
    assert target.entry is not None and target.entry.image == str(tmp_path / "vms/golden.qcow2")
    # Nor does a rebase undo of a rewritten overlay take the move apart.
    assert journal.last_undoable(str(vms["rel"])) is None
    assert plan_undo_rebase(str(vms["rel"])).refused


def test_undo_of_a_move_puts_back_names_and_exact_pointers(tmp_path: Path, vms):
    dest = tmp_path / "store"
    dest.mkdir()
    plan_move([str(vms["base"])], str(dest)).run()
    assert qemu_info(vms["rel"])["backing-filename"] == "../store/base.qcow2"
    plan = plan_undo_move()
    assert not plan.refused, plan.describe()
    assert plan.title == "undo move of base.qcow2"
    result = plan.run()
    assert vms["base"].exists() and not (dest / "base.qcow2").exists()
    assert result.moved == [(str(dest / "base.qcow2"), str(vms["base"]))]
    assert qemu_info(vms["rel"])["backing-filename"] == "./base.qcow2"  # exactly as it was
    assert qemu_info(vms["abs"])["backing-filename"] == str(vms["base"])
    assert problems(tmp_path / "vms") == []
    for k in ("rel", "abs"):
        assert same_content(vms[k], vms["refs"] / vms[k].name), k
    target = journal.undo_target()
    assert target.entry is None and "already undone" in target.reason
    assert plan_undo_move().refused  # nothing left to undo


def test_undo_refused_when_a_file_changed_or_the_old_name_is_taken(tmp_path: Path, vms):
    new = tmp_path / "vms" / "golden.qcow2"
    plan_move([str(vms["base"])], str(new)).run()
    create(vms["base"])  # the old name taken again
    plan = plan_undo_move()
    assert plan.refused
    assert any(f.code == "target-exists" for f in plan.blocking()), plan.describe()
    vms["base"].unlink()
    qemu_io(vms["rel"], "write -P 0x55 0 64k")  # an overlay written since
    plan = plan_undo_move()
    assert [f.code for f in plan.blocking()] == ["changed"]
    with pytest.raises(GuardRefused):
        plan.run()
    assert new.exists() and qemu_info(vms["rel"])["backing-filename"] == "golden.qcow2"


def test_a_move_killed_part_way_leaves_its_rewrites_undoable_one_by_one(tmp_path: Path, vms):
    # Its rebase entries exist but no move entry: rebase undo is the way back.
    entry = journal.RebaseEntry(
        id=journal.new_id(),
        time=0.0,
        image=str(vms["rel"]),
        old_backing="./base.qcow2",
        old_format="qcow2",
        new_backing="x.qcow2",
        new_format="qcow2",
        mode="unsafe",
        move="dead-move",
    )
    journal.record(entry)
    assert journal.last_undoable(str(vms["rel"])) == entry
    assert journal.undo_target().kind == "rebase"


def test_undo_of_a_folder_move(tmp_path: Path, vms):
    far = overlay(tmp_path / "clones" / "far.qcow2", "../vms/base.qcow2")
    dest = tmp_path / "store"
    dest.mkdir()
    plan_move([str(tmp_path / "vms")], str(dest)).run()
    assert qemu_info(far)["backing-filename"] == "../store/vms/base.qcow2"
    plan = plan_undo_move(str(tmp_path / "vms"))
    assert not plan.refused, plan.describe()
    plan.run()
    assert vms["base"].exists() and not (dest / "vms").exists()
    assert qemu_info(far)["backing-filename"] == "../vms/base.qcow2"
    assert problems(tmp_path) == []


def put_back(undo_id: str) -> list[journal.RebaseEntry]:
    return [e for e in journal.entries() if e.move == undo_id]


def test_an_undo_journals_each_pointer_as_the_undo_of_the_moves_rewrite(tmp_path: Path, vms):
    # A folder move: the overlays moved too, so the undo journals each under its old name
    # (where it is once the files are back) with its state read where it is now.
    dest = tmp_path / "store"
    dest.mkdir()
    far = overlay(tmp_path / "clones" / "far.qcow2", "../vms/base.qcow2")
    plan_move([str(tmp_path / "vms")], str(dest)).run()
    move = journal.last_move()
    assert move is not None
    rewrites = {w["image"]: w for w in move.rewrites}
    plan_undo_move().run()
    undo = journal.move_entries()[-1]
    assert undo.undo_of == move.id
    back = put_back(undo.id)
    assert sorted(e.image for e in back) == sorted(rewrites) and str(far) in rewrites
    for e in back:
        w = rewrites[e.image]
        assert (e.old_backing, e.old_format) == (w["new_backing"], w["new_format"])
        assert (e.new_backing, e.new_format) == (w["old_backing"], w["old_format"])
        assert e.undo_of == w["entry"] and e.mode == "unsafe"
        assert e.state == journal.Fingerprint.of(e.image), e.image


def test_an_undo_cancelled_part_way_puts_the_move_back_and_journals_it(tmp_path: Path, vms):
    dest = tmp_path / "store"
    dest.mkdir()
    plan_move([str(vms["base"])], str(dest)).run()
    move = journal.last_move()
    assert move is not None and len(move.rewrites) == 2
    first = move.rewrites[0]
    cancel = CancelToken()
    with pytest.raises(CancelledError, match="as the move left them"):
        plan_undo_move().run(progress=lambda _done: cancel.cancel(), cancel=cancel)
    assert (dest / "base.qcow2").exists() and not vms["base"].exists()
    for k in ("rel", "abs"):
        assert qemu_info(vms[k])["backing-filename"].endswith("store/base.qcow2"), k
    assert problems(tmp_path) == []
    # The one pointer put back, then set again: both journalled, each as the image was left.
    undo_ids = {e.move for e in journal.entries()} - {move.id}
    assert len(undo_ids) == 1
    there, again = put_back(undo_ids.pop())
    assert there.image == again.image == first["final"]
    assert (there.new_backing, there.undo_of) == (first["old_backing"], first["entry"])
    assert (again.old_backing, again.new_backing) == (first["old_backing"], first["new_backing"])
    assert (again.old_format, again.new_format) == (first["old_format"], first["new_format"])
    assert again.undo_of is None and again.mode == "unsafe"
    assert again.state == journal.Fingerprint.of(first["final"])
    assert journal.last_move() == move  # the undo was never recorded: the move is still there
