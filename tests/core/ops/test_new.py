"""core.ops.newimage: a blank image under a temporary name, renamed when complete."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from conftest import qemu_info
from opshelpers import codes, fake_qemu_img

from imagegui.core.jobs import CancelledError, CancelToken
from imagegui.core.ops import guards
from imagegui.core.ops.newimage import plan_new
from imagegui.core.ops.plan import GuardRefused
from imagegui.core.read.probe import probe_image


@pytest.mark.parametrize(
    ("fmt", "prealloc"), [("qcow2", "off"), ("qcow2", "metadata"), ("raw", "off"), ("raw", "full")]
)
def test_new_image_has_the_size_and_format_asked_for(tmp_path: Path, fmt: str, prealloc: str):
    path = tmp_path / f"disk.{fmt}"
    plan = plan_new(str(path), 64 << 20, fmt, prealloc)
    assert not plan.refused, plan.describe()
    partial = plan.commands[0][-2]
    assert os.path.basename(partial).startswith(".disk.") and partial.endswith(".partial")
    plan.run()
    info = qemu_info(path, fmt)
    assert info["format"] == fmt and info["virtual-size"] == 64 << 20
    assert probe_image(str(path)).virtual_size == 64 << 20
    assert os.listdir(tmp_path) == [path.name]  # the temporary name is gone
    assert os.stat(path).st_mode & 0o077 == 0  # 0600: nothing wider than asked
    if prealloc == "full":
        assert os.stat(path).st_blocks * 512 >= 64 << 20


def test_existing_target_is_refused_and_untouched(tmp_path: Path):
    path = tmp_path / "disk.qcow2"
    path.write_bytes(b"keep me")
    plan = plan_new(str(path), 1 << 20)
    assert codes(plan) == {"target-exists"}
    with pytest.raises(GuardRefused, match="already exists"):
        plan.run()
    assert path.read_bytes() == b"keep me" and os.listdir(tmp_path) == ["disk.qcow2"]


def test_bad_sizes_and_options_are_refused(tmp_path: Path):
    assert codes(plan_new(str(tmp_path / "a"), 1000)) == {"size"}
    assert "use 1,024 bytes" in plan_new(str(tmp_path / "a"), 1000).describe()
    assert codes(plan_new(str(tmp_path / "a"), 0)) == {"size"}
    assert codes(plan_new(str(tmp_path / "a"), 1 << 20, "raw", "metadata")) == {"preallocation"}
    assert codes(plan_new(str(tmp_path / "a"), 1 << 20, "vmdk")) == {"format"}
    assert codes(plan_new(str(tmp_path / "no" / "a"), 1 << 20)) == {"no-directory"}
    assert os.listdir(tmp_path) == []


def test_preallocated_image_needs_its_space(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    class Tiny:
        f_bavail, f_frsize = 1024, 4096  # 4 MiB free

    monkeypatch.setattr(guards.os, "statvfs", lambda _: Tiny)
    full = plan_new(str(tmp_path / "a.raw"), 1 << 30, "raw", "full")
    assert codes(full) == {"no-space"} and full.required == 1 << 30
    assert "only 4 MiB is free" in full.blocking()[0].message
    assert not plan_new(str(tmp_path / "a.qcow2"), 1 << 30, "qcow2", "off").refused


def test_cancelled_creation_leaves_no_file(tmp_path: Path):
    fifo = tmp_path / "ready"
    os.mkfifo(fifo)
    fake = fake_qemu_img(
        tmp_path,
        'case "$1" in\n'
        'measure) echo \'{"required": 1000, "fully-allocated": 2000}\' ;;\n'
        'create) n=$(($# - 1)); eval "f=\\${$n}"; echo data > "$f"\n'
        f"  echo ready > {fifo}; exec sleep 300 ;;\n"
        "esac",
    )
    work = tmp_path / "work"
    work.mkdir()
    plan = plan_new(str(work / "big.raw"), 1 << 30, "raw", "full", qemu_img=str(fake))
    token = CancelToken()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            plan.run(cancel=token)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    with open(fifo) as f:  # the fake create has written into the temporary file
        assert f.read() == "ready\n"
    assert [p for p in os.listdir(work) if p.endswith(".partial")]
    token.cancel()
    worker.join(30)
    assert not worker.is_alive()
    (exc,) = errors
    assert isinstance(exc, CancelledError) and "no file was left" in str(exc)
    assert os.listdir(work) == []
