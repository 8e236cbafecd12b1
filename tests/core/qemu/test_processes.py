"""Children tied to imagegui's life, and holders named by what the user calls them."""

from __future__ import annotations

import concurrent.futures
import os
import select
import signal
import subprocess
import sys
import textwrap

import pytest

from imagegui.core.qemu.processes import popen
from imagegui.core.read.holders import Holder, split_qemu_opts, vm_name


def test_qemu_option_lists_split_with_doubled_commas():
    assert split_qemu_opts("guest=a,,b,debug-threads=on") == ["guest=a,b", "debug-threads=on"]
    assert split_qemu_opts("file=/x,,,,y,format=raw") == ["file=/x,,y", "format=raw"]
    assert split_qemu_opts("") == [""]


def test_vm_name_from_a_command_line():
    assert vm_name(["qemu-system-x86_64", "-name", "imagegui:a,,b.qcow2"]) == "imagegui:a,b.qcow2"
    libvirt = ["qemu-system-x86_64", "-name", "guest=web01,debug-threads=on", "-m", "1"]
    assert vm_name(libvirt) == "web01"
    assert vm_name(["qemu-img", "convert"]) == ""


def test_a_holder_is_named_by_its_vm_name_and_pid():
    vm = Holder(42, "qemu-system-x86", ("/usr/bin/qemu-system-x86_64", "-name", "guest=web01"))
    assert vm.describe() == 'the VM "web01" (PID 42, qemu-system-x86_64)'
    assert Holder(7, "qemu-img", ("qemu-img", "convert")).describe() == "PID 7 (qemu-img)"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def _await_exit(pid: int, timeout: float = 20) -> None:
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        select.select([fd], [], [], timeout)
    finally:
        os.close(fd)


def test_a_child_started_from_a_short_lived_thread_dies_only_with_the_process(tmp_path):
    """The kernel's parent-death signal follows the forking *thread*: a child started from a
    worker that then ends must live on, and die when the whole process is killed."""
    script = textwrap.dedent(
        """
        import sys, threading
        from imagegui.core.qemu.processes import popen
        out = []
        t = threading.Thread(target=lambda: out.append(popen(["sleep", "300"])))
        t.start(); t.join()
        print(out[0].pid, flush=True)
        sys.stdin.read()  # until the test has looked
        print("looked", flush=True)
        threading.Event().wait()
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        child = int(proc.stdout.readline())
        assert _alive(child)  # the worker thread ended; the child did not
        proc.stdin.close()
        assert proc.stdout.readline() == "looked\n"
        assert _alive(child)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        _await_exit(child)
        assert not _alive(child)
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("die_with_us", [True, False])
@pytest.mark.parametrize("in_thread", [False, True])
def test_popen_child_leads_its_own_process_group(die_with_us, in_thread):
    """Ctrl-C in the terminal must not reach qemu-img directly (we cancel it ourselves), on every
    Python: 3.10's Popen has no ``process_group``, the child sets it itself there."""

    def start():
        return popen(
            [sys.executable, "-c", "import os; print(os.getpgid(0))"],
            die_with_us=die_with_us, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip

    if in_thread:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            proc = pool.submit(start).result()
    else:
        proc = start()
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert int(out) == proc.pid != os.getpgid(0)
