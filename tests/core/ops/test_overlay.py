"""core.ops.overlay: a qcow2 overlay on a base, its real format recorded (real qemu-img)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import qemu_info
from opshelpers import (
    codes,
    create,
    sha256,
)

from imagegui.core.ops.overlay import plan_overlay
from imagegui.core.ops.plan import GuardRefused


@pytest.fixture(autouse=True)
def _journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "state" / "journal.jsonl"
    monkeypatch.setenv("IMAGEGUI_JOURNAL", str(path))
    return path


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
