"""Internal snapshots: the native list (equal to qemu's), create -> apply -> delete, the guards,
and the warnings of the operations that do not carry snapshots along."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import qemu_img, qemu_info
from opshelpers import chain, codes, create, overlay, pattern_at, qemu_io, sha256

from imagegui.core.ops.commit import plan_commit
from imagegui.core.ops.convert import plan_convert
from imagegui.core.ops.flatten import plan_flatten
from imagegui.core.ops.plan import GuardRefused
from imagegui.core.ops.rebase import plan_rebase
from imagegui.core.ops.snapshot import plan_snapshot
from imagegui.core.read.snapshots import find_snapshot, read_snapshots


@pytest.fixture(autouse=True)
def _journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEGUI_JOURNAL", str(tmp_path / "state" / "journal.jsonl"))


def qemu_list(path: Path) -> list[tuple[str, str, str, str]]:
    """``qemu-img snapshot -l``'s rows: (id, tag, date, vm clock)."""
    rows = []
    for line in qemu_img("snapshot", "-l", path).stdout.splitlines()[2:]:
        m = re.match(r"(\S+)\s+(.+?)\s+\d+(?:\.\d+)? \S?i?B\s+(\S+ \S+)\s+(\S+)", line)
        assert m, line
        rows.append(m.groups())
    return rows


@pytest.mark.parametrize("compat", ["1.1", "0.10"])
def test_native_list_equals_qemus(tmp_path: Path, compat: str):
    img = tmp_path / "d.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-o", f"compat={compat}", img, "64M")
    for name in ("first", "with space", "ünïcode", "2"):
        qemu_img("snapshot", "-c", name, img)
    qemu_img("resize", img, "128M") if compat == "1.1" else None
    qemu_img("snapshot", "-c", "after-resize", img) if compat == "1.1" else None
    ours = read_snapshots(str(img))
    theirs = qemu_info(img)["snapshots"]
    assert [
        {
            "id": s.id, "name": s.name, "vm-state-size": s.vm_state_size, "date-sec": s.date_sec,
            "date-nsec": s.date_nsec, "vm-clock-sec": s.vm_clock_nsec // 10**9,
            "vm-clock-nsec": s.vm_clock_nsec % 10**9, **({"icount": s.icount} if s.icount is not
            None else {}),
        }
        for s in ours
    ] == theirs  # fmt: skip
    assert [(s.id, s.name, s.date_text, s.vm_clock_text) for s in ours] == qemu_list(img)
    if compat == "1.1":
        assert [s.disk_size for s in ours] == [64 << 20] * 4 + [128 << 20]
    # qemu's matching: apply takes an id first, delete only names
    assert find_snapshot(ours, "2").name == "with space"
    assert find_snapshot(ours, "2", by_id=False).id == "4"


def test_create_list_write_apply_restores_then_delete(tmp_path: Path):
    img = create(tmp_path / "d.qcow2", "64M")
    qemu_io(img, "write -P 0xa1 0 1M")
    plan_snapshot(str(img), "create", "clean").run()
    (snap,) = read_snapshots(str(img))
    assert snap.name == "clean" and [r[1] for r in qemu_list(img)] == ["clean"]
    qemu_io(img, "write -P 0xb2 0 1M")
    assert pattern_at(img, 0xB2, 0, "1M")
    apply = plan_snapshot(str(img), "apply", "clean")
    (w,) = apply.warnings
    assert w.code == "apply-discards" and "everything written to it since" in w.message
    assert "current state is replaced by snapshot 'clean'" in apply.changes[0]
    apply.run()
    assert pattern_at(img, 0xA1, 0, "1M")
    assert [s.name for s in read_snapshots(str(img))] == ["clean"]  # the snapshot is kept
    plan_snapshot(str(img), "delete", "clean").run()
    assert read_snapshots(str(img)) == [] and qemu_list(img) == []
    assert pattern_at(img, 0xA1, 0, "1M")


def test_apply_brings_back_the_size_the_snapshot_was_taken_with(tmp_path: Path):
    img = create(tmp_path / "d.qcow2", "64M")
    plan_snapshot(str(img), "create", "small").run()
    qemu_img("resize", img, "128M")
    plan = plan_snapshot(str(img), "apply", "small")
    assert any(f.code == "snapshot-size" and "64 MiB again" in f.message for f in plan.findings)
    plan.run()
    assert qemu_info(img)["virtual-size"] == 64 << 20


def test_names_and_formats_refused(tmp_path: Path):
    img = create(tmp_path / "d.qcow2", "64M")
    qemu_img("snapshot", "-c", "one", img)
    assert codes(plan_snapshot(str(img), "create", "one")) == {"snapshot-exists"}
    assert codes(plan_snapshot(str(img), "create", "1")) == {"snapshot-exists"}  # an id
    assert codes(plan_snapshot(str(img), "apply", "two")) == {"no-such-snapshot"}
    assert "its snapshots: 'one'" in plan_snapshot(str(img), "apply", "two").describe()
    assert codes(plan_snapshot(str(img), "delete", "1")) == {"no-such-snapshot"}  # names only
    assert not plan_snapshot(str(img), "apply", "1").refused
    raw = create(tmp_path / "d.raw", "64M", "raw")
    assert codes(plan_snapshot(str(raw), "create", "x")) == {"format-no-snapshots"}
    before = sha256(img)
    with pytest.raises(GuardRefused):
        plan_snapshot(str(img), "create", "one").run()
    assert sha256(img) == before


def test_apply_on_a_base_with_overlays_refused_create_allowed(tmp_path: Path):
    base = create(tmp_path / "base.qcow2", "64M")
    qemu_img("snapshot", "-c", "s", base)
    child = overlay(tmp_path / "child.qcow2", base)
    plan = plan_snapshot(str(base), "apply", "s")
    (f,) = plan.blocking()
    assert f.code == "base-has-overlays" and f.overridable and str(child) in f.message
    assert not plan_snapshot(str(base), "create", "t").refused
    assert not plan_snapshot(str(base), "delete", "s").refused


def test_missing_backing_refused_but_listed(tmp_path: Path):
    base = create(tmp_path / "base.qcow2")
    top = overlay(tmp_path / "top.qcow2", base)
    qemu_img("snapshot", "-c", "s", top)
    base.unlink()
    assert "missing-backing" in codes(plan_snapshot(str(top), "delete", "s"))
    assert [s.name for s in read_snapshots(str(top))] == ["s"]


def test_operations_warn_that_snapshots_are_not_carried_along(tmp_path: Path):
    base, top = chain(tmp_path)
    qemu_img("snapshot", "-c", "keepme", top)

    def warned(plan) -> str:
        (f,) = [f for f in plan.findings if f.code == "snapshots-not-carried"]
        assert not f.refuses and "'keepme'" in f.message and str(top) in f.message
        return f.message

    assert "the new image has none of them" in warned(plan_flatten(str(top), str(tmp_path / "f")))
    assert "a convert copies" in warned(plan_convert(str(top), str(tmp_path / "c")))
    assert "not committed into the base" in warned(plan_commit(str(top)))
    new = create(tmp_path / "new.qcow2")
    assert "not rebased" in warned(plan_rebase(str(top), str(new)))
    # An unsafe rebase only rewrites the pointer (a repair to the same data): nothing to say.
    unsafe = plan_rebase(str(top), str(base), unsafe=True)
    assert not [f for f in unsafe.findings if f.code == "snapshots-not-carried"]
    # The warning is true: after a commit, reverting no longer gives what was recorded.
    qemu_io(top, "write -P 0xcd 0 1M")  # over what the snapshot reads from the base
    plan_commit(str(top), force=True).run()
    qemu_img("snapshot", "-a", "keepme", top)
    assert pattern_at(top, 0xAB, "1M", "1M")  # what it stored itself
    assert not pattern_at(top, 0x11, 0, "1M")  # what it recorded through the base: changed


def test_json_plan(tmp_path: Path):
    img = create(tmp_path / "d.qcow2")
    doc = plan_snapshot(str(img), "create", "x").to_json()
    assert doc["op"] == "snapshot" and doc["commands"][0][:4] == [
        "qemu-img", "snapshot", "--image-opts", "-c",
    ]  # fmt: skip
    json.dumps(doc)
