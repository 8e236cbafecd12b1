"""Linked-clone VMs in the journal: read beside rebases, undone once, offered by Undo when last."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from imagegui.core.ops import journal


@pytest.fixture(autouse=True)
def _journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "journal.jsonl"
    monkeypatch.setenv("IMAGEGUI_JOURNAL", str(path))
    return path


def _entry(name: str, uri: str = "qemu:///system", **kw) -> journal.CloneVmEntry:
    data = dict(
        id=journal.new_id() + name,
        time=time.time(),
        uri=uri,
        name=name,
        uuid="0" * 8 + "-0000-0000-0000-" + "0" * 12,
        overlay=f"/images/{name}.qcow2",
        base="/images/base.qcow2",
        template="web01",
    )
    data.update(kw)
    return journal.CloneVmEntry(**data)


def test_clones_are_read_back_and_undone_once(tmp_path: Path):
    first = _entry("web02")
    journal.record_clone(first)
    again = _entry("web02", uri="qemu:///session")
    journal.record_clone(again)
    assert journal.clone_entries() == [first, again]
    assert journal.last_clone("web02") == again
    assert journal.last_clone("web02", "qemu:///system") == first
    assert journal.last_clone("web03") is None
    journal.record_clone(_entry("web02", uri="qemu:///session", undo_of=again.id))
    assert journal.last_clone("web02") == first
    assert journal.entries() == []  # the rebase reader skips them


def test_undo_offers_the_last_change_whatever_its_kind(_journal: Path):
    journal.record(
        journal.RebaseEntry(
            id="r1",
            time=time.time(),
            image="/images/web06.qcow2",
            old_backing="old.qcow2",
            old_format="qcow2",
            new_backing="new.qcow2",
            new_format="qcow2",
            mode="unsafe",
        )
    )
    assert journal.undo_target().kind == "rebase"
    clone = _entry("web02")
    journal.record_clone(clone)
    target = journal.undo_target()
    assert (target.kind, target.name, target.entry) == ("clone-vm", "web02", clone)
    journal.record_clone(_entry("web02", undo_of=clone.id))
    done = journal.undo_target()
    assert done.entry is None
    assert "the last linked-clone VM (web02) was already undone" in done.reason


def test_an_unreadable_clone_line_is_noted_and_skipped(_journal: Path):
    journal.record_clone(_entry("web02"))
    with open(_journal, "a") as f:
        f.write('{"op": "clone-vm", "id": "x", "name": 3}\n')
    notes: list[str] = []
    assert [e.name for e in journal.clone_entries(notes)] == ["web02"]
    assert len(notes) == 1 and "journal line 2 skipped" in notes[0]
