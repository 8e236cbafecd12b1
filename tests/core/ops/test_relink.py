"""core.ops.relink: backing names made relative or absolute, leading to the same files (real
qemu-img, qemu-io data); a relative tree then survives being moved as a whole."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import qemu_info
from opshelpers import create, qemu_io, same_content, sha256

from imagegui.core.chains.diagnose import Kind
from imagegui.core.chains.graph import ChainGraph
from imagegui.core.demo import drop_backing_format
from imagegui.core.ops import journal
from imagegui.core.ops.rebase import plan_undo_rebase
from imagegui.core.ops.relink import plan_relink
from imagegui.core.read.scan import scan_directory


@pytest.fixture(autouse=True)
def _journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "state" / "journal.jsonl"
    monkeypatch.setenv("IMAGEGUI_JOURNAL", str(path))
    return path


def overlay(path: Path, backing: str, fmt: str | None = "qcow2") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    argv = ["qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", backing]
    argv += ["-F", fmt] if fmt else []
    subprocess.run([*argv, str(path), "64M"], check=True)
    return path


def stored(path: Path) -> str:
    return qemu_info(path)["backing-filename"]


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    """pool/base.qcow2 <- pool/vm/a.qcow2 (absolute) <- pool/vm/b.qcow2 (absolute), and
    pool/c.qcow2 (relative already); each with data of its own."""
    pool = tmp_path / "pool"
    base = create(pool / "base.qcow2")
    qemu_io(base, "write -P 0x11 0 2M")
    a = overlay(pool / "vm" / "a.qcow2", str(base))
    qemu_io(a, "write -P 0x22 1M 1M")
    b = overlay(pool / "vm" / "b.qcow2", str(a))
    qemu_io(b, "write -P 0x33 0 512K")
    c = overlay(pool / "c.qcow2", "base.qcow2")
    return {"base": base, "a": a, "b": b, "c": c}


def flat_copies(tmp_path: Path, images: dict[str, Path]) -> dict[str, Path]:
    refs = tmp_path / "refs"
    refs.mkdir()
    out = {}
    for k, p in images.items():
        out[k] = refs / f"{k}.qcow2"
        subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(p), str(out[k])], check=True)
    return out


def kinds(root: Path, portable: bool = False) -> list[str]:
    graph = ChainGraph(scan_directory(str(root)), portable=portable)
    return sorted(f"{p.kind} {os.path.relpath(p.path, root)}" for p in graph.problems)


def test_relative_then_moving_the_folder_keeps_every_chain(tmp_path: Path, tree):
    refs = flat_copies(tmp_path, tree)
    pool = tmp_path / "pool"
    assert kinds(pool, portable=True) == [
        f"{Kind.ABSOLUTE_BACKING} vm/a.qcow2",
        f"{Kind.ABSOLUTE_BACKING} vm/b.qcow2",
    ]
    assert kinds(pool) == []  # off unless asked for
    plan = plan_relink([str(pool)], absolute=False)
    assert not plan.refused, plan.describe()
    assert [os.path.basename(r.image) for r in plan.relinks] == ["a.qcow2", "b.qcow2"]
    assert any(f.code == "already" for f in plan.findings)  # c.qcow2
    result = plan.run()
    assert result.rewritten == [str(tree["a"]), str(tree["b"])]
    assert stored(tree["a"]) == "../base.qcow2" and stored(tree["b"]) == "a.qcow2"
    assert qemu_info(tree["a"])["backing-filename-format"] == "qcow2"
    assert kinds(pool, portable=True) == []
    # Now the whole tree moves as one (a plain rename, as mv or a file manager would).
    moved = tmp_path / "elsewhere" / "pool-2"
    moved.parent.mkdir()
    os.rename(pool, moved)
    assert kinds(moved, portable=True) == []
    for k in tree:
        assert same_content(moved / os.path.relpath(tree[k], pool), refs[k]), k
    # And back to absolute, each a journalled rewrite that rebase --undo can take back.
    plan_relink([str(moved / "vm")], absolute=True).run()
    assert stored(moved / "vm" / "b.qcow2") == str(moved / "vm" / "a.qcow2")
    assert kinds(moved) == []
    plan_undo_rebase(str(moved / "vm" / "b.qcow2")).run()
    assert stored(moved / "vm" / "b.qcow2") == "a.qcow2"
    assert len(journal.entries()) == 5


def test_each_rewrite_is_journalled_as_the_image_was_left(tmp_path: Path, tree):
    plan_relink([str(tmp_path / "pool" / "vm")], absolute=False).run()
    entries = journal.entries()
    assert [e.image for e in entries] == [str(tree["a"]), str(tree["b"])]
    a, b = entries
    assert (a.old_backing, a.new_backing) == (str(tree["base"]), "../base.qcow2")
    assert (b.old_backing, b.new_backing) == (str(tree["a"]), "a.qcow2")
    for e, k in ((a, "a"), (b, "b")):
        assert (e.old_format, e.new_format, e.mode) == ("qcow2", "qcow2", "unsafe")
        assert e.undo_of is None and e.move == ""
        assert e.state == journal.Fingerprint.of(str(tree[k])), k


def test_a_selection_of_images_and_an_image_that_must_stay_as_it_is(tmp_path: Path, tree):
    os.chmod(tree["b"], 0o444)
    try:
        before = sha256(tree["b"])
        plan = plan_relink([str(tree["a"]), str(tree["b"])], absolute=False)
        assert not plan.refused  # a.qcow2 can still be rewritten
        assert [f.code for f in plan.kept] == ["read-only"]
        assert [r.image for r in plan.relinks] == [str(tree["a"])]
        result = plan.run()
        assert result.rewritten == [str(tree["a"])] and len(result.kept) == 1
        assert sha256(tree["b"]) == before
        # Forced, the owner's read-only mark is overridden.
        plan = plan_relink([str(tree["b"])], absolute=False, force=True)
        assert not plan.refused and [r.image for r in plan.relinks] == [str(tree["b"])]
    finally:
        os.chmod(tree["b"], 0o644)
    # Only the read-only one: nothing left to do, the plan is refused.
    os.chmod(tree["b"], 0o444)
    try:
        assert plan_relink([str(tree["b"])], absolute=False).refused
    finally:
        os.chmod(tree["b"], 0o644)


def test_a_missing_backing_file_is_kept_and_named(tmp_path: Path):
    lost = overlay(tmp_path / "lost.qcow2", str(tmp_path / "gone.qcow2"))
    plan = plan_relink([str(tmp_path)], absolute=False)
    assert plan.refused and [f.code for f in plan.kept] == ["missing-backing"]
    assert stored(lost) == str(tmp_path / "gone.qcow2")


def test_an_unrecorded_format_gets_recorded(tmp_path: Path):
    base = create(tmp_path / "base.qcow2")
    top = overlay(tmp_path / "top.qcow2", str(base))
    drop_backing_format(str(top))  # as an image made before -F existed
    plan = plan_relink([str(top)], absolute=False)
    assert "qcow2 recorded" in plan.changes[0]
    plan.run()
    info = qemu_info(top)
    assert (info["backing-filename"], info["backing-filename-format"]) == ("base.qcow2", "qcow2")


def test_nothing_to_do_is_said(tmp_path: Path, tree):
    plan = plan_relink([str(tree["c"])], absolute=False)
    assert not plan.refused and not plan.commands
    assert any(f.code == "nothing" for f in plan.findings)
