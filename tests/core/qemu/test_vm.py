"""A running VM (core.qemu.vm.RunningVM): status, QMP, stop and its power-down wait, with a real
TCG qemu-system-x86_64 started through a launch plan."""

from __future__ import annotations

from pathlib import Path

import pytest
from opshelpers import create

from imagegui.core.ops.launch import LaunchOptions, plan_launch
from imagegui.core.read.locks import lock_state

TCG = LaunchOptions(memory=64, accel="tcg")


def test_the_qemu_layer_does_not_reach_up():
    """core/qemu runs programs; what is safe to run is decided above it (chains, ops)."""
    import ast

    import imagegui.core.qemu as qemu

    for path in Path(qemu.__path__[0]).glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith(("imagegui.core.ops", "imagegui.core.chains")), path


@pytest.mark.slow
def test_launch_and_stop_release_the_lock(tmp_path: Path):
    img = create(tmp_path / "solo.qcow2")
    plan = plan_launch(str(img), TCG)
    assert not plan.refused
    vm = plan.run().vm
    try:
        assert vm.status() == "running"
        assert lock_state(str(img)).writer
        assert vm.qmp("query-name") == {"name": "imagegui:solo.qcow2"}
    finally:
        rc = vm.stop(timeout=1)  # SeaBIOS ignores ACPI: power-down times out, then quit
    assert rc == 0
    assert vm.status() == "exited"
    assert not lock_state(str(img)).in_use
    vm.stop()  # idempotent


@pytest.mark.slow
def test_stop_reports_the_power_down_wait_and_cancel_forces_it_off(tmp_path: Path):
    from imagegui.core.jobs import CancelToken

    img = create(tmp_path / "vm.qcow2")
    vm = plan_launch(str(img), TCG).run().vm
    seen: list[float] = []
    token = CancelToken()

    def progress(fraction: float) -> None:
        seen.append(fraction)
        if len(seen) == 3:  # SeaBIOS never powers down: give up waiting, as the user would
            token.cancel()

    rc = vm.stop(timeout=600, progress=progress, cancel=token)
    assert rc == 0 and vm.status() == "exited"
    assert len(seen) == 3 and 0 <= seen[0] <= seen[1] <= seen[2] < 0.01
    assert not lock_state(str(img)).in_use


@pytest.mark.slow
def test_an_image_with_a_comma_in_its_name_starts(tmp_path: Path):
    img = create(tmp_path / "a,b.qcow2")
    vm = plan_launch(str(img), TCG).run().vm
    try:
        assert vm.status() == "running"
        assert vm.qmp("query-name") == {"name": "imagegui:a,b.qcow2"}
        assert vm.name == "imagegui:a,b.qcow2"
        assert lock_state(str(img)).writer
    finally:
        vm.stop(timeout=0.5)
