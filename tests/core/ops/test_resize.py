"""core.ops.resize: grow, shrink only when asked, never a base under its overlays."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import qemu_img, qemu_info
from opshelpers import codes, create, overlay, pattern_at, qemu_io, sha256

from imagegui.core.ops.plan import GuardRefused
from imagegui.core.ops.resize import plan_resize
from imagegui.core.read.probe import probe_image


@pytest.mark.parametrize("fmt", ["qcow2", "raw"])
def test_grow_keeps_the_data_and_the_size_is_what_qemu_reports(tmp_path: Path, fmt: str):
    img = create(tmp_path / f"d.{fmt}", "64M", fmt)
    qemu_io(img, "write -P 0x5c 63M 1M", fmt=fmt)
    plan = plan_resize(str(img), 256 << 20)
    assert plan.commands == [["qemu-img", "resize", "-f", fmt, str(img), str(256 << 20)]]
    result = plan.run()
    assert "grow its partitions and file systems" in result.message
    assert qemu_info(img, fmt)["virtual-size"] == 256 << 20 == probe_image(str(img)).virtual_size
    qemu_io(img, "read -P 0x5c 63M 1M", "read -P 0 64M 192M", fmt=fmt)  # new space: zeros


def test_relative_growth(tmp_path: Path):
    img = create(tmp_path / "d.qcow2", "64M")
    plan = plan_resize(str(img), 32 << 20, relative=True)
    assert plan.new_size == 96 << 20 and plan.commands[0][-1] == str(96 << 20)
    plan.run()
    assert qemu_info(img)["virtual-size"] == 96 << 20


@pytest.mark.parametrize("fmt", ["qcow2", "raw"])
def test_shrink_only_when_asked_and_warned(tmp_path: Path, fmt: str):
    img = create(tmp_path / f"d.{fmt}", "64M", fmt)
    before = sha256(img)
    plan = plan_resize(str(img), 32 << 20)
    assert codes(plan) == {"shrink"}
    (f,) = plan.blocking()
    assert "Shrink the guest's partitions and file systems first" in f.message
    assert "--shrink" in f.fix_cli and "--shrink" not in f.message
    with pytest.raises(GuardRefused):
        plan.run()
    assert sha256(img) == before
    plan = plan_resize(str(img), -(32 << 20), relative=True, shrink=True)
    assert not plan.refused and "--shrink" in plan.commands[0]
    assert any(w.code == "shrink" and "must already" in w.message for w in plan.warnings)
    plan.run()
    assert qemu_info(img, fmt)["virtual-size"] == 32 << 20 == probe_image(str(img)).virtual_size


def test_base_with_overlays_refused_explaining_why(tmp_path: Path):
    base = create(tmp_path / "base.qcow2", "64M")
    child = overlay(tmp_path / "child.qcow2", base)
    grow = plan_resize(str(base), 128 << 20)
    (f,) = grow.blocking()
    assert f.code == "base-has-overlays" and f.overridable and str(child) in f.message
    assert "each overlay keeps its own virtual size" in f.message
    assert "does not see the new space until that overlay is resized too" in f.message
    assert grow.searched == (str(tmp_path),)
    shrink = plan_resize(str(base), 32 << 20, shrink=True, force=True)
    assert codes(shrink) == {"base-has-overlays"}  # force never lifts a shrink
    assert "cuts off data those overlays read" in shrink.blocking()[0].message
    forced = plan_resize(str(base), 128 << 20, force=True)
    assert not forced.refused
    forced.run()
    assert qemu_info(base)["virtual-size"] == 128 << 20
    assert qemu_info(child)["virtual-size"] == 64 << 20  # the overlay keeps its own size


def test_overlay_grows_and_shows_zeros_past_its_old_end(tmp_path: Path):
    base = create(tmp_path / "base.qcow2", "128M")
    qemu_io(base, "write -P 0x11 100M 1M")
    top = tmp_path / "top.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", top, "64M")
    plan_resize(str(top), 128 << 20).run()
    assert qemu_info(top)["virtual-size"] == 128 << 20
    assert pattern_at(top, 0, "100M", "1M")  # not the base's data beyond the old end


def test_formats_qemu_cannot_resize_are_refused(tmp_path: Path):
    vmdk = create(tmp_path / "d.vmdk", "64M", "vmdk")
    plan = plan_resize(str(vmdk), 128 << 20)
    assert codes(plan) == {"format-cannot-resize"}
    assert "convert it to qcow2" in plan.blocking()[0].message
    qed = create(tmp_path / "d.qed", "64M", "qed")
    assert codes(plan_resize(str(qed), 32 << 20, shrink=True)) == {"qed-shrink"}
    assert not plan_resize(str(qed), 128 << 20).refused
    img = create(tmp_path / "d.qcow2", "64M")
    assert codes(plan_resize(str(img), 64 << 20)) == {"same-size"}
    assert codes(plan_resize(str(img), (64 << 20) + 100)) == {"size"}


def test_internal_snapshots_v2_refused_v3_noted(tmp_path: Path):
    v2 = tmp_path / "v2.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-o", "compat=0.10", v2, "64M")
    qemu_img("snapshot", "-c", "s1", v2)
    assert codes(plan_resize(str(v2), 128 << 20)) == {"snapshots-v2"}
    v3 = create(tmp_path / "v3.qcow2", "64M")
    qemu_img("snapshot", "-c", "s1", v3)
    plan = plan_resize(str(v3), 128 << 20)
    assert not plan.refused
    assert any(f.code == "snapshots-keep-size" for f in plan.findings)
    plan.run()
    assert qemu_info(v3)["virtual-size"] == 128 << 20


def test_v2_overlay_cannot_grow_over_its_base(tmp_path: Path):
    create(tmp_path / "base.qcow2", "128M")
    top = tmp_path / "top.qcow2"
    qemu_img(
        "create", "-q", "-f", "qcow2", "-o", "compat=0.10", "-b", "base.qcow2", "-F", "qcow2",
        top, "64M",
    )  # fmt: skip
    assert codes(plan_resize(str(top), 128 << 20)) == {"v2-overlay-grow"}


def test_missing_backing_refused(tmp_path: Path):
    base = create(tmp_path / "base.qcow2")
    top = overlay(tmp_path / "top.qcow2", base)
    base.unlink()
    assert "missing-backing" in codes(plan_resize(str(top), 128 << 20))
