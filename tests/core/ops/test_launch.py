"""Launching with a real qemu-system-x86_64 (TCG, no display, SeaBIOS waiting for a boot disk)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from opshelpers import create, overlay, sha256

from imagegui.core.ops.check import plan_check
from imagegui.core.ops.commit import plan_commit
from imagegui.core.ops.flatten import plan_flatten
from imagegui.core.ops.launch import LaunchOptions, build_argv, plan_launch
from imagegui.core.ops.overlay import plan_overlay
from imagegui.core.ops.plan import GuardRefused
from imagegui.core.ops.rebase import plan_rebase
from imagegui.core.qemu import qemuimg
from imagegui.core.qemu.vm import LaunchError, RunningVM
from imagegui.core.read.locks import lock_state

TCG = LaunchOptions(memory=64, accel="tcg")


def test_argv_options():
    argv = build_argv("/v/a,b.qcow2", "qcow2", "/run/s.qmp", LaunchOptions(snapshot=True))
    drive = argv[argv.index("-drive") + 1]
    assert drive == "file=/v/a,,b.qcow2,format=qcow2,if=virtio,snapshot=on"
    assert argv[argv.index("-name") + 1] == "imagegui:a,,b.qcow2"
    qmps = [argv[i + 1] for i, a in enumerate(argv) if a == "-qmp"]
    assert qmps == ["unix:/run/s.ctl,server=on,wait=off", "unix:/run/s.qmp"]
    argv = build_argv("/v/x.qcow2", "qcow2", "/r,un/s.qmp", LaunchOptions())
    assert "unix:/r,,un/s.qmp" in argv
    assert "-display" in argv
    argv = build_argv("/a", "raw", "/s", LaunchOptions(readonly=True, headless=False, accel="kvm"))
    assert argv[argv.index("-drive") + 1].endswith(",readonly=on")
    assert "-display" not in argv and "q35,accel=kvm" in argv and "host" in argv


def test_base_with_overlays_only_launches_snapshot_or_readonly(tmp_path: Path):
    base = create(tmp_path / "base.qcow2")
    child = overlay(tmp_path / "child.qcow2", base)
    plan = plan_launch(str(base), TCG)
    (finding,) = plan.blocking()
    assert finding.code == "base-has-overlays" and str(child) in finding.message
    assert not plan_launch(str(base), LaunchOptions(snapshot=True, accel="tcg")).refused
    assert not plan_launch(str(base), LaunchOptions(readonly=True, accel="tcg")).refused


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, RunningVM]]:
    """One VM for the module: runs top.qcow2 (writable), whose base is base.qcow2."""
    root = tmp_path_factory.mktemp("vm")
    base = create(root / "base.qcow2")
    top = overlay(root / "top.qcow2", base)
    vm = plan_launch(str(top), TCG).run().vm
    try:
        yield base, top, vm
    finally:
        vm.stop(timeout=1)


@pytest.mark.slow
def test_running_vm_is_running_and_holds_locks(running):
    base, top, vm = running
    assert vm.status() == "running"
    assert lock_state(str(top)).writer
    base_state = lock_state(str(base))
    assert base_state.in_use and not base_state.writer


@pytest.mark.slow
def test_writing_operations_on_a_running_image_are_refused(running, tmp_path: Path):
    base, top, vm = running
    before = sha256(base)
    refusals = {
        "commit": plan_commit(str(top)),
        "rebase": plan_rebase(str(top), str(base), unsafe=True),
        "repair": plan_check(str(top), repair="leaks"),
        "launch": plan_launch(str(top), TCG),
        "overlay on it": plan_overlay(str(top), str(tmp_path / "new.qcow2")),
        "flatten": plan_flatten(str(top), str(tmp_path / "flat.qcow2")),
    }
    for what, plan in refusals.items():
        msgs = [f.message for f in plan.blocking() if f.code == "in-use"]
        assert msgs, what
        assert f'the VM "imagegui:top.qcow2" (PID {vm.pid}, qemu-system-x86_64)' in msgs[0], what
        with pytest.raises(GuardRefused):
            plan.run()
    # The base of a running VM is not written either (a sibling's commit would change it).
    sibling = overlay(base.parent / "sibling.qcow2", base)
    plan = plan_commit(str(sibling), force=True)
    assert "in-use" in {f.code for f in plan.blocking()}
    assert "a backing file of a running VM" in plan.describe()
    assert sha256(base) == before
    # A read-only check still works (shared view, with a warning).
    check = plan_check(str(top))
    assert not check.refused and "-U" in check.commands[0]
    sibling.unlink()


@pytest.mark.slow
def test_qemu_img_lock_error_names_the_vm(running):
    _, top, vm = running
    with pytest.raises(qemuimg.ImageInUseError, match=rf'"imagegui:top.qcow2" \(PID {vm.pid},'):
        qemuimg.run(qemuimg.commit_argv(str(top), "qcow2"))


@pytest.mark.slow
def test_second_start_fails_with_qemus_reason(running):
    _, top, vm = running
    plan = plan_launch(str(top), TCG)
    with pytest.raises(LaunchError, match=rf"in use by the VM .* \(PID {vm.pid},"):
        RunningVM.start(plan.commands[0], str(top), plan.qmp_socket, timeout=30)


@pytest.mark.slow
def test_snapshot_launch_leaves_image_untouched(tmp_path: Path):
    base = create(tmp_path / "base.qcow2")
    overlay(tmp_path / "child.qcow2", base)
    before = sha256(base)
    vm = plan_launch(str(base), LaunchOptions(memory=64, snapshot=True, accel="tcg")).run().vm
    try:
        assert vm.status() == "running"
        state = lock_state(str(base))
        assert state.in_use and not state.writer
    finally:
        vm.stop(timeout=1)
    assert sha256(base) == before


@pytest.mark.slow
def test_automatic_accelerator_falls_back_to_tcg_when_kvm_fails(tmp_path: Path, monkeypatch):
    """A KVM that is there but breaks at start-up (nested virtualisation) is simulated by a
    wrapper that refuses accel=kvm the way such a qemu dies; the TCG run is the real qemu."""
    import shutil

    import imagegui.core.ops.launch as launch

    wrapper = tmp_path / "qemu-system-wrapper"
    wrapper.write_text(
        "#!/bin/sh\n"
        'case "$*" in *accel=kvm*)\n'
        '  echo "error: failed to set MSR 0x10a to 0x69" >&2; exit 1;;\n'
        "esac\n"
        f'exec {shutil.which("qemu-system-x86_64")} "$@"\n'
    )
    wrapper.chmod(0o755)
    monkeypatch.setattr(launch, "kvm_usable", lambda: True)
    img = create(tmp_path / "vm.qcow2")
    plan = plan_launch(str(img), LaunchOptions(memory=64, binary=str(wrapper)))
    assert "q35,accel=kvm" in plan.commands[0]
    vm = plan.run().vm
    try:
        assert vm.status() == "running"
        assert "TCG" in vm.note and "failed to set MSR" in vm.note
    finally:
        vm.stop(timeout=1)
    # A KVM chosen on purpose is not second-guessed.
    kvm = plan_launch(str(img), LaunchOptions(memory=64, binary=str(wrapper), accel="kvm"))
    with pytest.raises(LaunchError, match="failed to set MSR"):
        kvm.run()


def test_writable_launch_of_a_base_finds_clones_in_a_sibling_folder(make, tmp_path: Path):
    base = make.create("templates/base.qcow2")
    make.overlay("vms/clone.qcow2", "../templates/base.qcow2")
    plan = plan_launch(str(base), TCG)
    assert {f.code for f in plan.blocking()} == {"base-has-overlays"}
    assert "vms/clone.qcow2" in plan.blocking()[0].message
    assert not plan_launch(str(base), LaunchOptions(memory=64, snapshot=True, accel="tcg")).refused
