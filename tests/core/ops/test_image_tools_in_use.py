"""resize, snapshot and convert with a real qemu-system-x86_64 running the image (TCG, no
display): every change is refused naming the VM, the image is untouched; reading is allowed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from opshelpers import create, overlay, sha256

from imagegui.core.ops.convert import plan_convert
from imagegui.core.ops.launch import LaunchOptions, plan_launch
from imagegui.core.ops.plan import GuardRefused
from imagegui.core.ops.resize import plan_resize
from imagegui.core.ops.snapshot import plan_snapshot
from imagegui.core.qemu.vm import RunningVM
from imagegui.core.read.snapshots import read_snapshots


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, RunningVM]]:
    """top.qcow2 (with a snapshot) running writable in a VM; base.qcow2 below it."""
    from conftest import qemu_img

    root = tmp_path_factory.mktemp("vm")
    base = create(root / "base.qcow2")
    top = overlay(root / "top.qcow2", base)
    qemu_img("snapshot", "-c", "s1", top)
    qemu_img("snapshot", "-c", "b1", base)
    vm = plan_launch(str(top), LaunchOptions(memory=64, accel="tcg")).run().vm
    try:
        yield base, top, vm
    finally:
        vm.stop(timeout=1)


@pytest.mark.slow
def test_changes_to_a_running_image_are_refused_naming_the_vm(running, tmp_path: Path):
    base, top, vm = running
    before = {p: sha256(p) for p in (base, top)}
    plans = {
        "grow": plan_resize(str(top), 128 << 20),
        "grow its base": plan_resize(str(base), 128 << 20, force=True),
        "snapshot create": plan_snapshot(str(top), "create", "s2"),
        "snapshot apply": plan_snapshot(str(top), "apply", "s1"),
        "snapshot delete": plan_snapshot(str(top), "delete", "s1"),
        "snapshot delete in its base": plan_snapshot(str(base), "delete", "b1"),
        "convert": plan_convert(str(top), str(tmp_path / "out.qcow2")),
    }
    for what, plan in plans.items():
        msgs = [f.message for f in plan.blocking() if f.code == "in-use"]
        assert msgs, (what, plan.describe())
        assert f"(PID {vm.pid}, qemu-system-x86_64)" in msgs[0], what
        with pytest.raises(GuardRefused):
            plan.run()
    assert {p: sha256(p) for p in (base, top)} == before
    assert not (tmp_path / "out.qcow2").exists()
    # Listing reads the table natively, VM or not; converting the base (only read) is allowed.
    assert [s.name for s in read_snapshots(str(top))] == ["s1"]
    assert not plan_convert(str(base), str(tmp_path / "b.qcow2")).refused
