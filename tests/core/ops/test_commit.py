"""core.ops.commit: data into the base, refused while other overlays share it (real qemu-img)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from opshelpers import (
    big_chain,
    chain,
    codes,
    create,
    overlay,
    pattern_at,
    reference,
    same_content,
    sha256,
)

from imagegui.core.jobs import CancelledError, CancelToken
from imagegui.core.ops.commit import plan_commit
from imagegui.core.ops.overlay import plan_overlay
from imagegui.core.ops.plan import GuardRefused
from imagegui.core.read.probe import probe_image


@pytest.fixture(autouse=True)
def _journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "state" / "journal.jsonl"
    monkeypatch.setenv("IMAGEGUI_JOURNAL", str(path))
    return path


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
