"""Helpers for the operations tests: real qemu-io writes, byte comparisons, big chains, fake tools.

A module, not a conftest: ``tests/conftest.py`` is imported as ``conftest`` by other tests, and a
second conftest.py would shadow it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

QEMU_IO = shutil.which("qemu-io")


def qemu_io(path: str | os.PathLike, *commands: str, fmt: str = "qcow2") -> str:
    """Runs qemu-io commands (``write -P 0xab 0 1M``, ``read -P 0xab 0 1M``) on an image."""
    if QEMU_IO is None:
        pytest.fail("qemu-io is not installed (Debian: qemu-utils)")
    argv = [QEMU_IO, "-f", fmt]
    for c in commands:
        argv += ["-c", c]
    proc = subprocess.run([*argv, str(path)], capture_output=True, text=True)
    if proc.returncode != 0 or "fail" in proc.stdout.lower() or "pattern" in proc.stdout.lower():
        raise AssertionError(f"qemu-io {commands} on {path}: {proc.stdout}{proc.stderr}")
    return proc.stdout


def pattern_at(path: str | os.PathLike, pattern: int, offset: str, length: str) -> bool:
    """Whether the guest sees ``pattern`` over ``length`` bytes at ``offset`` (qemu-io read -P)."""
    proc = subprocess.run(
        [QEMU_IO or "qemu-io", "-f", "qcow2", "-r", "-U", "-c",
         f"read -P {pattern:#x} {offset} {length}", str(path)],
        capture_output=True, text=True,
    )  # fmt: skip
    return proc.returncode == 0 and "Pattern verification failed" not in proc.stdout


def same_content(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """``qemu-img compare``: the two images show the guest the same bytes (exit 0)."""
    proc = subprocess.run(["qemu-img", "compare", "-U", str(a), str(b)], capture_output=True)
    if proc.returncode not in (0, 1):
        raise AssertionError(proc.stderr.decode())
    return proc.returncode == 0


def sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def create(path: Path, size: str = "64M", fmt: str = "qcow2") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", fmt, str(path), size], check=True)
    return path


def overlay(path: Path, base: Path, base_fmt: str = "qcow2") -> Path:
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-b", base.name, "-F", base_fmt, str(path)],
        check=True,
    )
    return path


def big_chain(root: Path, mib: int = 512, pattern: int = 0xAB) -> tuple[Path, Path]:
    """base.qcow2 <- top.qcow2 with ``mib`` MiB of real data in the overlay, written in a few
    large writes: enough work that a cancel on the first progress update lands mid-way."""
    root.mkdir(parents=True, exist_ok=True)
    base = create(root / "base.qcow2", f"{max(mib, 64) * 2}M")
    top = overlay(root / "top.qcow2", base)
    step = 256
    writes = [f"write -P {pattern:#x} {o}M {min(step, mib - o)}M" for o in range(0, mib, step)]
    qemu_io(top, *writes)
    return base, top


def codes(plan) -> set[str]:
    """The codes of what blocks ``plan``."""
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
    from imagegui.core.ops.flatten import plan_flatten

    ref = tmp_path / f"ref-{img.name}"
    plan_flatten(str(img), str(ref)).run()
    return ref


def fake_qemu_img(root: Path, body: str) -> Path:
    """An executable standing in for qemu-img (for exit codes and signals real qemu-img won't
    produce on demand). ``body`` is POSIX sh; ``$@`` are the arguments."""
    path = root / "fake-qemu-img"
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path
