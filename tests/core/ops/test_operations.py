"""overlay / rebase / commit / flatten / check against the real qemu-img, with qemu-io data."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import qemu_info
from opshelpers import big_chain, create, overlay, pattern_at, qemu_io, same_content, sha256

from imagegui.core.jobs import CancelledError, CancelToken
from imagegui.core.ops import guards, journal
from imagegui.core.ops.check import check_problems, plan_check
from imagegui.core.ops.commit import plan_commit
from imagegui.core.ops.flatten import plan_flatten
from imagegui.core.ops.newfile import link_no_replace
from imagegui.core.ops.overlay import plan_overlay
from imagegui.core.ops.plan import GuardRefused, Plan
from imagegui.core.ops.rebase import plan_rebase, plan_undo_rebase
from imagegui.core.read.probe import probe_image


@pytest.fixture(autouse=True)
def _journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "state" / "journal.jsonl"
    monkeypatch.setenv("IMAGEGUI_JOURNAL", str(path))
    return path


def codes(plan: Plan) -> set[str]:
    return {f.code for f in plan.blocking()}


def chain(tmp_path: Path) -> tuple[Path, Path]:
    """base (0x11 over the first 2 MiB) <- top (0xab over 1 MiB at 1 MiB)."""
    base = create(tmp_path / "base.qcow2")
    qemu_io(base, "write -P 0x11 0 2M")
    top = overlay(tmp_path / "top.qcow2", base)
    qemu_io(top, "write -P 0xab 1M 1M")
    return base, top


def reference(img: Path, tmp_path: Path) -> Path:
    """A flat copy of what the guest sees now: the oracle for "no byte changed"."""
    ref = tmp_path / f"ref-{img.name}"
    plan_flatten(str(img), str(ref)).run()
    return ref


# --------------------------------------------------------------------------- overlay


def test_overlay_records_real_format_and_relative_name(tmp_path: Path):
    base = create(tmp_path / "images" / "base.img", fmt="raw")
    new = tmp_path / "clones" / "vm1.qcow2"
    new.parent.mkdir()
    plan = plan_overlay(str(base), str(new))
    assert plan.commands[0][:8] == [
        "qemu-img", "create", "-f", "qcow2", "-b", "../images/base.img", "-F", "raw",
    ]  # fmt: skip
    plan.run()
    info = qemu_info(new)
    assert info["backing-filename"] == "../images/base.img"
    assert info["backing-filename-format"] == "raw"
    assert info["virtual-size"] == 64 << 20


def test_overlay_absolute_and_larger(tmp_path: Path):
    base = create(tmp_path / "base.qcow2")
    new = tmp_path / "big.qcow2"
    plan_overlay(str(base), str(new), size=128 << 20, absolute=True).run()
    info = qemu_info(new)
    assert info["backing-filename"] == str(base)
    assert info["virtual-size"] == 128 << 20


def test_overlay_refuses_smaller_and_existing_target_untouched(tmp_path: Path):
    base = create(tmp_path / "base.qcow2")
    assert codes(plan_overlay(str(base), str(tmp_path / "x.qcow2"), size=1 << 20)) == {
        "smaller-than-base"
    }
    existing = tmp_path / "existing.qcow2"
    existing.write_bytes(b"precious")
    before = (sha256(existing), existing.stat().st_mtime_ns)
    plan = plan_overlay(str(base), str(existing))
    assert codes(plan) == {"target-exists"}
    with pytest.raises(GuardRefused, match="never overwrites"):
        plan.run()
    assert (sha256(existing), existing.stat().st_mtime_ns) == before


def test_plan_is_checked_again_before_running(tmp_path: Path):
    base = create(tmp_path / "base.qcow2")
    target = tmp_path / "late.qcow2"
    plan = plan_overlay(str(base), str(target))
    assert not plan.refused
    target.write_bytes(b"appeared meanwhile")
    with pytest.raises(GuardRefused):
        plan.run()
    assert target.read_bytes() == b"appeared meanwhile"


def test_overlay_on_broken_chain_refused(make):
    mid = make.overlay("mid.qcow2", "gone.qcow2")
    plan = plan_overlay(str(mid), str(make.root / "new.qcow2"))
    assert "missing-backing" in codes(plan)
    assert "rebase --unsafe" in plan.describe()


# --------------------------------------------------------------------------- commit


def test_commit_moves_data_into_base(tmp_path: Path):
    base, top = chain(tmp_path)
    assert not pattern_at(base, 0xAB, "1M", "1M")
    ref = reference(top, tmp_path)
    plan = plan_commit(str(top))
    assert plan.commands == [["qemu-img", "commit", "-p", "-f", "qcow2", str(top)]]
    seen: list[float] = []
    result = plan.run(seen.append)
    assert pattern_at(base, 0xAB, "1M", "1M") and pattern_at(base, 0x11, 0, "1M")
    assert same_content(top, ref)  # the overlay shows the same disk
    assert seen and seen[-1] == 1.0
    assert set(result.changed) == {str(base), str(top)}


def test_commit_into_shared_base_refused_naming_each_sibling(tmp_path: Path):
    base, top = chain(tmp_path)
    sib1 = overlay(tmp_path / "sibling1.qcow2", base)
    (tmp_path / "other").mkdir()
    sib2 = tmp_path / "other" / "sibling2.qcow2"
    plan_overlay(str(base), str(sib2)).run()
    before = sha256(base)
    plan = plan_commit(str(top))
    assert codes(plan) == {"shared-base"}
    msg = plan.blocking()[0].message
    assert str(sib1) in msg and str(sib2) in msg and str(top) not in msg.split("backing file of")[1]
    with pytest.raises(GuardRefused):
        plan.run()
    assert sha256(base) == before
    # A sibling in a directory outside the two images' is found through --root.
    far = tmp_path.parent / f"{tmp_path.name}-far"
    far.mkdir()
    plan_overlay(str(base), str(far / "far.qcow2"), absolute=True).run()
    assert str(far / "far.qcow2") in plan_commit(str(top), roots=(str(far),)).blocking()[0].message
    shutil.rmtree(far)


def test_commit_finds_clones_in_a_sibling_folder_and_says_where_it_looked(make, tmp_path: Path):
    """templates/base <- clones/mine, and another clone of the same base in vms/."""
    base = make.create("templates/base.qcow2")
    mine = make.overlay("clones/mine.qcow2", "../templates/base.qcow2")
    other = make.overlay("vms/other.qcow2", "../templates/base.qcow2")
    before = sha256(base)
    plan = plan_commit(str(mine))
    assert codes(plan) == {"shared-base"}
    assert str(other) in plan.blocking()[0].message
    searched = next(f for f in plan.findings if f.code == "searched")
    assert str(tmp_path) in searched.message
    with pytest.raises(GuardRefused):
        plan.run()
    assert sha256(base) == before


def test_commit_forced_into_shared_base(tmp_path: Path):
    base, top = chain(tmp_path)
    overlay(tmp_path / "sibling.qcow2", base)
    plan = plan_commit(str(top), force=True)
    assert not plan.refused and "[forced]" in plan.describe()
    plan.run()
    assert pattern_at(base, 0xAB, "1M", "1M")


def test_commit_refusals(make, tmp_path: Path):
    lone = create(tmp_path / "lone.qcow2")
    assert codes(plan_commit(str(lone))) == {"no-backing"}
    orphan = make.overlay("orphan.qcow2", "gone.qcow2")
    assert codes(plan_commit(str(orphan))) == {"missing-backing"}
    raw = create(tmp_path / "raw.img", fmt="raw")
    wrong = make.overlay("wrong.qcow2", "raw.img", backing_fmt="qcow2")
    plan = plan_commit(str(wrong))
    assert codes(plan) == {"backing-format-mismatch"}
    assert raw.exists()


@pytest.mark.slow
def test_commit_cancelled_midway_keeps_overlay_complete(tmp_path: Path):
    base, top = big_chain(tmp_path / "c", mib=256)
    token = CancelToken()
    seen: list[float] = []

    def progress(fraction: float) -> None:
        seen.append(fraction)
        token.cancel()

    files_before = sorted(os.listdir(tmp_path / "c"))
    # Read back, not assumed: the base may or may not have received data at that point.
    written = r"still holds all its data and shows its full content"
    with pytest.raises(CancelledError, match=rf"before anything was written|{written}"):
        plan_commit(str(top)).run(progress, token)
    assert seen[0] < 1.0 and len(seen) == 1
    assert sorted(os.listdir(tmp_path / "c")) == files_before
    # What the message promises: the overlay still shows all of its data.
    assert pattern_at(top, 0xAB, 0, "256M")
    assert probe_image(str(top)).backing_file == "base.qcow2"


# --------------------------------------------------------------------------- rebase


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


# --------------------------------------------------------------------------- flatten


def test_flatten_output_equal_and_independent(tmp_path: Path):
    base, top = chain(tmp_path)
    out = tmp_path / "flat.qcow2"
    plan = plan_flatten(str(top), str(out))
    assert plan.commands[0][:3] == ["qemu-img", "measure", "--output=json"]
    partial = plan.commands[1][-1]
    assert os.path.dirname(partial) == str(tmp_path) and partial != str(out)
    assert plan.required > 0
    plan.run()
    assert same_content(top, out)
    info = probe_image(str(out))
    assert info.format == "qcow2" and info.backing_file is None
    assert not os.path.exists(partial)


def test_flatten_never_touches_existing_out(tmp_path: Path):
    base, top = chain(tmp_path)
    out = tmp_path / "out.qcow2"
    out.write_bytes(b"keep me")
    with pytest.raises(GuardRefused, match="already exists"):
        plan_flatten(str(top), str(out)).run()
    assert out.read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")) == []


def test_flatten_refuses_without_free_space(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    _, top = chain(tmp_path)

    class Tiny:
        f_bavail, f_frsize = 10, 4096

    monkeypatch.setattr(guards.os, "statvfs", lambda _: Tiny)
    plan = plan_flatten(str(top), str(tmp_path / "o.qcow2"))
    assert codes(plan) == {"no-space"}
    assert "only 40 KiB is free" in plan.blocking()[0].message


def test_link_no_replace_refuses_a_target_that_appeared(tmp_path: Path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.write_bytes(b"new")
    dst.write_bytes(b"old")
    with pytest.raises(GuardRefused):
        link_no_replace(str(src), str(dst))
    assert dst.read_bytes() == b"old"


@pytest.mark.slow
def test_flatten_cancelled_midway_leaves_nothing(tmp_path: Path):
    base, top = big_chain(tmp_path / "f", mib=256)
    out = tmp_path / "f" / "flat.qcow2"
    plan = plan_flatten(str(top), str(out))
    token = CancelToken()
    seen: list[float] = []

    def progress(fraction: float) -> None:
        seen.append(fraction)
        token.cancel()

    before = {p: sha256(p) for p in (base, top)}
    with pytest.raises(CancelledError, match="no file was created"):
        plan.run(progress, token)
    assert seen[0] < 1.0
    assert sorted(os.listdir(tmp_path / "f")) == ["base.qcow2", "top.qcow2"]
    assert {p: sha256(p) for p in (base, top)} == before


# --------------------------------------------------------------------------- check


def test_check_clean_and_unsupported(tmp_path: Path):
    img = create(tmp_path / "a.qcow2")
    result = plan_check(str(img)).run()
    assert result.problems == [] and result.returncode == 0
    assert result.report["check-errors"] == 0
    raw = create(tmp_path / "a.img", fmt="raw")
    (p,) = plan_check(str(raw)).run().problems
    assert p.kind == "unsupported"


def test_check_problems_from_report():
    report = json.dumps({"corruptions": 2, "leaks": 5, "check-errors": 0})
    problems = check_problems("/x.qcow2", 2, report)
    assert [(p.kind, p.level) for p in problems] == [("corrupt", "error"), ("leaks", "warning")]
    assert "--repair leaks" in problems[1].cli_text and "--" not in problems[1].message
