"""Our private runtime directory, VMs found again after their launcher is gone, and stopping
them through a control socket that is provably theirs."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest
from opshelpers import create

from imagegui.core.ops.launch import LaunchOptions, plan_launch
from imagegui.core.qemu.vm import RunningVM
from imagegui.core.qemu.vms import (
    FoundVM,
    RuntimeDirError,
    VmControlError,
    VmHandle,
    find_vms,
    qmp_call,
    runtime_dir,
)
from imagegui.core.read.locks import lock_state

TCG = LaunchOptions(memory=64, accel="tcg")


@pytest.fixture
def no_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """XDG_RUNTIME_DIR unset: the fallback goes under TMPDIR (here a test directory)."""
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    return tmp_path / f"imagegui-{os.geteuid()}"


def test_runtime_dir_is_private_even_under_umask_000(no_xdg: Path):
    old = os.umask(0)
    try:
        path = runtime_dir()
    finally:
        os.umask(old)
    assert path == str(no_xdg)
    st = os.lstat(path)
    assert stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == os.geteuid()


def test_a_runtime_dir_others_can_reach_is_refused(no_xdg: Path):
    no_xdg.mkdir(mode=0o777)
    os.chmod(no_xdg, 0o777)
    with pytest.raises(RuntimeDirError, match="not private"):
        runtime_dir()
    plan = plan_launch(str(create(no_xdg.parent / "vm.qcow2")), TCG)
    assert [f.code for f in plan.blocking()] == ["runtime-dir"]
    os.chmod(no_xdg, 0o700)
    if os.geteuid() == 0:  # root can hand it to someone else: then it is not ours
        os.chown(no_xdg, 65534, 65534)
        with pytest.raises(RuntimeDirError, match="belongs to user 65534"):
            runtime_dir()
        os.chown(no_xdg, 0, 0)


def test_a_link_in_place_of_the_runtime_dir_is_refused(no_xdg: Path, tmp_path: Path):
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    no_xdg.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(RuntimeDirError, match="not a directory of ours"):
        runtime_dir()


def test_a_socket_served_by_another_process_is_never_talked_to(tmp_path: Path):
    """A listener in our directory that is not the VM's (its peer is this test process)."""
    directory = runtime_dir()
    path = os.path.join(directory, "vm-deadbeef.ctl")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen(1)
        try:
            with pytest.raises(VmControlError, match="not by the VM"):
                qmp_call(path, 1, "quit", timeout=2)
        finally:
            os.unlink(path)


def test_a_vm_handle_is_what_the_window_uses_of_a_vm():
    """``VmHandle`` names what the VMs panel calls (mypy checks the signatures in core)."""
    found = FoundVM(pid=os.getpid(), image="/x/a.qcow2", name="imagegui:a", control_socket="")
    assert isinstance(found, VmHandle)

    class NoStop:
        pid, image, name = 1, "/x/a.qcow2", ""

        def running(self) -> bool:
            return True

    assert not isinstance(NoStop(), VmHandle)


@pytest.mark.slow
def test_a_vm_is_found_again_and_stopped_without_its_launcher_handle(no_xdg: Path, tmp_path: Path):
    img = create(tmp_path / "a,b.qcow2")
    old = os.umask(0)
    try:
        vm = plan_launch(str(img), TCG).run().vm
    finally:
        os.umask(old)
    try:
        assert stat.S_IMODE(os.lstat(runtime_dir()).st_mode) == 0o700
        (found,) = find_vms()
        assert (found.pid, found.image, found.name) == (vm.pid, str(img), "imagegui:a,b.qcow2")
        assert found.launcher == os.getpid()
        # The panel holds either kind as a VmHandle: both have what it uses.
        assert isinstance(vm, RunningVM) and isinstance(vm, VmHandle)
        assert isinstance(found, FoundVM) and isinstance(found, VmHandle)
        assert found.status() == "running"
        # A stale socket (its VM is gone) is cleaned away, not listed.
        stale = os.path.join(runtime_dir(), "vm-00000000.ctl")
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(stale)
        assert [v.pid for v in find_vms()] == [vm.pid]
        assert not os.path.exists(stale)
        found.stop(timeout=0.5)  # SeaBIOS ignores the power-down: quit after the timeout
        assert not found.running() and vm.wait(10) == 0
        assert not lock_state(str(img)).in_use
        assert find_vms() == []
    finally:
        vm.stop(timeout=0)
