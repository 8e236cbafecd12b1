"""core.ops.rebase: safe and unsafe rebases, journalled and undone (real qemu-img, qemu-io data)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import qemu_info
from opshelpers import (
    chain,
    codes,
    create,
    overlay,
    qemu_io,
    reference,
    same_content,
)

from imagegui.core.ops import journal
from imagegui.core.ops.rebase import plan_rebase, plan_undo_rebase


@pytest.fixture(autouse=True)
def _journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "state" / "journal.jsonl"
    monkeypatch.setenv("IMAGEGUI_JOURNAL", str(path))
    return path


def test_safe_rebase_keeps_every_byte_and_is_journalled(tmp_path: Path, _journal: Path):
    base, top = chain(tmp_path)
    other = create(tmp_path / "other.qcow2")
    qemu_io(other, "write -P 0x22 0 4M")
    ref = reference(top, tmp_path)
    plan = plan_rebase(str(top), str(other))
    assert plan.commands[0] == [
        "qemu-img", "rebase", "-f", "qcow2", "-p", "-b", "other.qcow2", "-F", "qcow2", str(top),
    ]  # fmt: skip
    plan.run()
    assert same_content(top, ref)
    assert qemu_info(top)["backing-filename"] == "other.qcow2"
    (entry,) = journal.entries(str(top))
    assert (entry.old_backing, entry.old_format, entry.new_backing, entry.mode) == (
        "base.qcow2", "qcow2", "other.qcow2", "safe",
    )  # fmt: skip
    lines = _journal.read_text().splitlines()
    assert json.loads(lines[0])["old_backing"] == "base.qcow2"
    # Undo: back onto the old name, still the same bytes.
    plan_undo_rebase(str(top)).run()
    assert qemu_info(top)["backing-filename"] == "base.qcow2"
    assert same_content(top, ref)
    assert journal.last_undoable(str(top)) is None
    assert codes(plan_undo_rebase(str(top))) == {"no-journal"}


def test_safe_rebase_to_nothing_makes_independent(tmp_path: Path):
    base, top = chain(tmp_path)
    ref = reference(top, tmp_path)
    plan_rebase(str(top), "").run()
    assert "backing-filename" not in qemu_info(top)
    assert same_content(top, ref)
    assert codes(plan_rebase(str(top), "", unsafe=True)) >= {"unsafe-detach"}


def test_unsafe_rebase_repairs_a_moved_base(tmp_path: Path):
    base, top = chain(tmp_path)
    ref = reference(top, tmp_path)
    (tmp_path / "moved").mkdir()
    moved = tmp_path / "moved" / "base-renamed.qcow2"
    os.rename(base, moved)
    assert codes(plan_rebase(str(top), str(moved))) == {"missing-backing"}  # safe needs the old
    plan = plan_rebase(str(top), str(moved), unsafe=True)
    assert not plan.refused
    assert "-u" in plan.commands[0]
    plan.run()
    assert qemu_info(top)["backing-filename"] == "moved/base-renamed.qcow2"
    assert same_content(top, ref)
    assert journal.last_undoable(str(top)).old_backing == "base.qcow2"


def test_undo_of_a_repair_restores_the_missing_pointer(tmp_path: Path):
    """Undo puts back exactly what was there, even though that file is (still) missing."""
    base, top = chain(tmp_path)
    moved = tmp_path / "moved.qcow2"
    os.rename(base, moved)
    plan_rebase(str(top), str(moved), unsafe=True).run()
    undo = plan_undo_rebase(str(top))
    assert not undo.refused
    assert "restore-missing" in {f.code for f in undo.findings}
    undo.run()
    info = qemu_info(top)
    assert (info["backing-filename"], info["backing-filename-format"]) == ("base.qcow2", "qcow2")


def test_rebase_guards(make, tmp_path: Path):
    base = create(tmp_path / "base.qcow2")
    raw = create(tmp_path / "disk.img", fmt="raw")
    vmdk = create(tmp_path / "disk.vmdk", fmt="vmdk")
    for img, fmt in ((raw, "raw"), (vmdk, "vmdk")):
        plan = plan_rebase(str(img), str(base))
        assert "format-cannot-rebase" in codes(plan)
        assert f"is a {fmt} image: only qcow2 and qed" in plan.blocking()[0].message
    top = overlay(tmp_path / "top.qcow2", base)
    assert codes(plan_rebase(str(base), str(top))) == {"loop"}
    assert codes(plan_rebase(str(top), str(tmp_path / "nope.qcow2"))) == {"unreadable"}
