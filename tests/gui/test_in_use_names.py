"""An image in use names its holder - the VM by its name, and its PID - in the list's tooltip and
on its card, as the details do; the lookup in /proc happens with the scan, on the worker."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from imagegui.core.read.locks import lock_state
from imagegui.gui.snapshot import holder_label


@pytest.fixture
def vm(make, tmp_path: Path, qtbot):
    """A real TCG qemu-system-x86_64 named "web01", paused before boot, holding top.qcow2."""
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        pytest.skip("qemu-system-x86_64 is not installed")
    base = str(make.create("base.qcow2", "qcow2", "64M"))
    top = str(make.overlay("top.qcow2", "base.qcow2"))
    argv = [qemu, "-name", "web01", "-machine", "pc,accel=tcg", "-m", "64", "-nodefaults"]
    argv += ["-display", "none", "-S", "-drive", f"file={top},format=qcow2,if=virtio"]
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        # qemu locks the overlay and its base one after the other: wait for both.
        qtbot.waitUntil(
            lambda: (lock_state(top).in_use and lock_state(base).in_use) or proc.poll() is not None,
            timeout=30_000,
        )
        assert proc.poll() is None, proc.stderr.read().decode()
        yield top, proc.pid
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.slow
def test_the_tooltip_and_the_card_name_the_vm(qtbot, window, open_dir, vm, tmp_path):
    top, pid = vm
    open_dir(tmp_path)
    snap = window.session.snapshot
    assert snap.status[top].in_use and snap.status[top].writer
    (holder,) = snap.holders[top]
    assert (holder.pid, holder.vm) == (pid, "web01")
    model = window.chains.model
    tip = model.data(model.index_of(top), Qt.ItemDataRole.ToolTipRole)
    assert f"in use: written by the VM &quot;web01&quot; (PID {pid}, qemu-system-x86_64)" in tip
    layer = window.scene.layers[snap.layout.component_of[top]]
    _, line2, broken = layer.detail_lines(top)
    assert not broken
    # Elided in the middle if the card is too narrow: the start and the PID always show.
    assert line2.startswith("in use (rw) by") and line2.endswith(f"(PID {pid})"), line2
    if "…" not in line2:
        assert line2 == f"in use (rw) by web01 (PID {pid})"
    base = str(tmp_path / "base.qcow2")  # read by the VM through the overlay
    assert holder_label(snap.holders.get(base)) == f"web01 (PID {pid})"
    window.view.set_scale(1.0)
    window.view.viewport().grab()  # paints it without a warning
