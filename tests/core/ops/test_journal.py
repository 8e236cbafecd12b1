"""The rebase journal under attack: an undo applies only to the very image the journal recorded,
unchanged since, and never changes what the guest reads; a broken journal never half-runs."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import qemu_info
from opshelpers import create, overlay, pattern_at, qemu_io, sha256

from imagegui.cli import run_cli
from imagegui.core.ops import journal
from imagegui.core.ops.commit import plan_commit
from imagegui.core.ops.rebase import plan_rebase, plan_undo_rebase


@pytest.fixture(autouse=True)
def _journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "state" / "journal.jsonl"
    monkeypatch.setenv("IMAGEGUI_JOURNAL", str(path))
    return path


def refusals(plan) -> set[str]:
    return {f.code for f in plan.blocking()}


def repaired(tmp_path: Path) -> tuple[Path, Path, Path]:
    """base <- top (0xab at 1M), base copied to copy.qcow2, top rebased --unsafe onto the copy."""
    base = create(tmp_path / "base.qcow2")
    qemu_io(base, "write -P 0x11 0 2M")
    top = overlay(tmp_path / "top.qcow2", base)
    qemu_io(top, "write -P 0xab 1M 1M")
    copy = tmp_path / "copy.qcow2"
    shutil.copyfile(base, copy)
    plan_rebase(str(top), str(copy), unsafe=True).run()
    return base, copy, top


def test_undo_of_an_unchanged_repair_still_works(tmp_path: Path):
    base, copy, top = repaired(tmp_path)
    plan = plan_undo_rebase(str(top))
    assert not plan.refused, plan.describe()
    assert "same-content" in {f.code for f in plan.findings}
    plan.run()
    assert qemu_info(top)["backing-filename"] == "base.qcow2"


def test_undo_refuses_an_unrelated_image_now_at_the_journalled_path(tmp_path: Path):
    base, copy, top = repaired(tmp_path)
    os.unlink(top)  # the overlay is deleted; an unrelated image takes its name (and maybe inode)
    other = tmp_path / "other-base.qcow2"
    create(other)
    unrelated = overlay(top, other)
    before = sha256(unrelated)
    plan = plan_undo_rebase(str(unrelated))
    assert "changed-since" in refusals(plan)
    assert run_cli(["rebase", str(unrelated), "--undo"]) == 2
    assert sha256(unrelated) == before


def test_undo_refuses_an_unrelated_image_in_a_reused_inode(tmp_path: Path, _journal: Path):
    """The journal found by inode: what the lookup sees after the overlay's inode was reused."""
    base, copy, top = repaired(tmp_path)
    os.unlink(top)
    unrelated = overlay(tmp_path / "elsewhere.qcow2", create(tmp_path / "b2.qcow2"))
    st = os.stat(unrelated)
    entry = json.loads(_journal.read_text())
    entry["file_key"] = f"{st.st_dev}:{st.st_ino}"
    _journal.write_text(json.dumps(entry) + "\n")
    assert journal.last_undoable(str(unrelated)) is not None  # it is found...
    before = sha256(unrelated)
    plan = plan_undo_rebase(str(unrelated))
    assert "changed-since" in refusals(plan)  # ...and refused
    assert "different file" in plan.blocking()[0].message or "written since" in plan.describe()
    assert run_cli(["rebase", str(unrelated), "--undo"]) == 2
    assert sha256(unrelated) == before


def test_undo_after_a_commit_into_the_new_backing_is_refused(tmp_path: Path):
    base, copy, top = repaired(tmp_path)
    plan_commit(str(top)).run()  # top's 0xab now lives in copy.qcow2; top is empty
    assert pattern_at(top, 0xAB, "1M", "1M")
    plan = plan_undo_rebase(str(top))
    assert "changed-since" in refusals(plan)
    assert run_cli(["rebase", str(top), "--undo"]) == 2
    assert pattern_at(top, 0xAB, "1M", "1M")  # the guest still reads its data
    assert qemu_info(top)["backing-filename"] == "copy.qcow2"


def test_unsafe_undo_is_refused_when_the_old_backing_no_longer_matches(tmp_path: Path):
    base, copy, top = repaired(tmp_path)
    qemu_io(copy, "write -P 0x77 0 512k")  # the base the overlay uses now moved on
    plan = plan_undo_rebase(str(top))
    assert "guest-data" in refusals(plan)
    assert str(tmp_path / "base.qcow2") in plan.blocking()[0].message
    assert run_cli(["rebase", str(top), "--undo"]) == 2
    assert pattern_at(top, 0x77, 0, "512k")


def test_entries_without_a_fingerprint_are_refused_with_the_reason(tmp_path, _journal: Path):
    base, copy, top = repaired(tmp_path)
    entry = json.loads(_journal.read_text())
    del entry["fingerprint"]  # as written by imagegui before fingerprints
    _journal.write_text(json.dumps(entry) + "\n")
    plan = plan_undo_rebase(str(top))
    assert refusals(plan) == {"unverifiable"}
    assert "predates image fingerprints" in plan.blocking()[0].message


def test_an_unwritable_journal_refuses_before_the_image_is_written(tmp_path, monkeypatch, capsys):
    base = create(tmp_path / "base.qcow2")
    top = overlay(tmp_path / "top.qcow2", base)
    moved = tmp_path / "moved.qcow2"
    os.rename(base, moved)
    (tmp_path / "blocker").write_text("a file where the journal's directory should be")
    monkeypatch.setenv("IMAGEGUI_JOURNAL", str(tmp_path / "blocker" / "journal.jsonl"))
    before = sha256(top)
    assert run_cli(["rebase", str(top), str(moved), "--unsafe"]) == 2
    assert "journal" in capsys.readouterr().err
    assert sha256(top) == before
    assert qemu_info(top)["backing-filename"] == "base.qcow2"


def test_a_journal_broken_between_plan_and_run_still_refuses(tmp_path, monkeypatch):
    base = create(tmp_path / "base.qcow2")
    top = overlay(tmp_path / "top.qcow2", base)
    os.rename(base, tmp_path / "moved.qcow2")
    plan = plan_rebase(str(top), str(tmp_path / "moved.qcow2"), unsafe=True)
    assert not plan.refused
    monkeypatch.setattr(journal, "writable_problem", lambda: None)  # the plan's check passes...
    (tmp_path / "blocker").write_text("")
    monkeypatch.setenv("IMAGEGUI_JOURNAL", str(tmp_path / "blocker" / "journal.jsonl"))
    before = sha256(top)
    from imagegui.core.ops.plan import GuardRefused

    with pytest.raises(GuardRefused, match="journal"):  # ...the open before writing does not
        plan.run()
    assert sha256(top) == before


def test_malformed_journal_lines_are_skipped_with_a_note(tmp_path: Path, _journal: Path, capsys):
    base, copy, top = repaired(tmp_path)
    good = _journal.read_bytes()
    wrong_types = (
        b'{"op": "rebase", "id": 5, "time": 1, "image": null, "old_backing": 1, '
        b'"old_format": null, "new_backing": null, "new_format": null, "mode": "safe"}'
    )
    junk = [b"{torn by a cr", b"[1, 2]", b'{"op": "rebase"}', b"\xff\xfe\n", b'"text"', wrong_types]
    _journal.write_bytes(b"\n".join(junk) + b"\n" + good + b"{half")
    notes: list[str] = []
    assert journal.last_undoable(str(top), notes).old_backing == "base.qcow2"
    assert len(notes) == 7 and "line 1 skipped" in notes[0]
    plan = plan_undo_rebase(str(top))
    assert not plan.refused
    assert sum(f.code == "journal-line" for f in plan.findings) == 7
    assert run_cli(["rebase", str(top), "--undo"]) == 0
    assert "journal line 2 skipped" in capsys.readouterr().err
    assert qemu_info(top)["backing-filename"] == "base.qcow2"


def test_undo_that_would_record_a_wrong_format_again_is_refused(tmp_path: Path):
    base = create(tmp_path / "base.qcow2")
    qemu_io(base, "write -P 0x11 0 1M")
    top = overlay(tmp_path / "top.qcow2", base, base_fmt="raw")  # the guest reads garbage
    plan_rebase(str(top), str(base), unsafe=True).run()  # the repair: record qcow2
    assert pattern_at(top, 0x11, 0, "1M")
    plan = plan_undo_rebase(str(top))
    assert "guest-data" in refusals(plan)
    assert run_cli(["rebase", str(top), "--undo"]) == 2
    assert qemu_info(top)["backing-filename-format"] == "qcow2"
