"""core.ops.convert: other hypervisors' disks into qcow2 and back, through a temporary file."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import qemu_img, qemu_info
from opshelpers import big_chain, chain, codes, create, qemu_io, sha256

from imagegui.core.jobs import CancelledError, CancelToken
from imagegui.core.ops import guards
from imagegui.core.ops.convert import plan_convert
from imagegui.core.ops.plan import GuardRefused
from imagegui.core.read.probe import probe_image


def identical(a: Path, a_fmt: str, b: Path, b_fmt: str) -> bool:
    """``qemu-img compare``: the guest sees the same bytes, and the disks are the same size
    (compare alone lets a larger image pass when its extra end is zeros)."""
    proc = subprocess.run(
        ["qemu-img", "compare", "-f", a_fmt, "-F", b_fmt, str(a), str(b)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr
    sizes = {qemu_info(a, a_fmt)["virtual-size"], qemu_info(b, b_fmt)["virtual-size"]}
    return proc.returncode == 0 and len(sizes) == 1


def source(tmp_path: Path, kind: str) -> tuple[Path, str]:
    """A disk of another hypervisor with data at three places (written by qemu-io)."""
    seed = create(tmp_path / "seed.qcow2", "100000256")  # not a round size: exact sizes matter
    qemu_io(seed, "write -P 0x5a 0 1M", "write -P 0xa5 40M 3M", "write -P 0x3c 95M 64k")
    fmt, opts = {
        "vmdk-sparse": ("vmdk", "subformat=monolithicSparse"),
        "vmdk-stream": ("vmdk", "subformat=streamOptimized"),
        "vhdx": ("vhdx", ""),
        "vpc": ("vpc", "force_size=on"),
    }[kind]
    path = tmp_path / f"src.{fmt}"
    qemu_img("convert", "-q", "-f", "qcow2", "-O", fmt, *(["-o", opts] if opts else []), seed, path)
    seed.unlink()
    return path, fmt


@pytest.mark.parametrize("kind", ["vmdk-sparse", "vmdk-stream", "vhdx", "vpc"])
def test_import_into_qcow2_compares_identical(tmp_path: Path, kind: str):
    src, fmt = source(tmp_path, kind)
    assert probe_image(str(src)).format == fmt
    dest = tmp_path / "imported.qcow2"
    plan = plan_convert(str(src), str(dest))
    assert not plan.refused, plan.describe()
    assert plan.commands[1][:7] == ["qemu-img", "convert", "-p", "-f", fmt, "-O", "qcow2"]
    plan.run()
    assert identical(src, fmt, dest, "qcow2")
    assert sorted(os.listdir(tmp_path)) == sorted([src.name, dest.name])  # no partial left


@pytest.mark.parametrize("out", ["vmdk", "vhdx", "vpc", "raw"])
def test_export_compares_identical(tmp_path: Path, out: str):
    src = create(tmp_path / "vm.qcow2", "100000256")
    qemu_io(src, "write -P 0x77 3M 2M")
    dest = tmp_path / f"vm.{out}"
    plan_convert(str(src), str(dest), out).run()
    assert probe_image(str(dest)).format == out
    assert identical(src, "qcow2", dest, out)


def test_compressed_qcow2_and_vmdk(tmp_path: Path):
    src = create(tmp_path / "vm.qcow2")
    qemu_io(src, "write -P 0x77 3M 2M")
    for out in ("qcow2", "vmdk"):
        dest = tmp_path / f"c.{out}"
        plan = plan_convert(str(src), str(dest), out, compress=True)
        assert "-c" in plan.commands[1]
        plan.run()
        assert identical(src, "qcow2", dest, out)
    assert "subformat=streamOptimized" in plan.commands[1]
    assert codes(plan_convert(str(src), str(tmp_path / "c.raw"), "raw", compress=True)) == {
        "compress"
    }


def test_overlay_is_flattened_by_default(tmp_path: Path):
    base, top = chain(tmp_path)
    dest = tmp_path / "flat.qcow2"
    plan = plan_convert(str(top), str(dest))
    assert "its backing chain (an independent image)" in plan.changes[0]
    plan.run()
    assert probe_image(str(dest)).backing_file is None
    assert identical(top, "qcow2", dest, "qcow2")


def test_overlay_keeping_its_backing(tmp_path: Path):
    base, top = chain(tmp_path)
    sub = tmp_path / "out"
    sub.mkdir()
    dest = sub / "kept.qcow2"
    plan = plan_convert(str(top), str(dest), keep_backing=True)
    assert plan.commands[1][-6:-2] == ["-B", "../base.qcow2", "-F", "qcow2"]
    # measured without the backing chain: only what the overlay holds
    assert (
        plan.commands[0][-1].startswith('json:{"driver":"qcow2"')
        and '"backing":null' in (plan.commands[0][-1])
    )
    plan.run()
    info = probe_image(str(dest))
    assert info.backing_file == "../base.qcow2" and info.backing_format == "qcow2"
    assert info.backing_path == str(base)
    assert identical(top, "qcow2", dest, "qcow2")
    # it holds only the overlay's own 1 MiB, not the base's data
    own = [e for e in qemu_info_map(dest) if e["depth"] == 0 and e["data"]]
    assert sum(e["length"] for e in own) == 1 << 20


def qemu_info_map(path: Path) -> list[dict]:
    import json

    return json.loads(qemu_img("map", "--output=json", path).stdout)


def test_keep_backing_refusals(tmp_path: Path):
    base, top = chain(tmp_path)
    assert codes(plan_convert(str(top), str(tmp_path / "o.vmdk"), "vmdk", keep_backing=True)) == {
        "keep-backing"
    }
    assert codes(plan_convert(str(base), str(tmp_path / "o.qcow2"), keep_backing=True)) == {
        "no-backing"
    }


def test_existing_target_and_missing_space_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    src = create(tmp_path / "vm.qcow2")
    qemu_io(src, "write -P 0x77 0 8M")
    dest = tmp_path / "vm.vmdk"
    dest.write_bytes(b"keep")
    with pytest.raises(GuardRefused, match="already exists"):
        plan_convert(str(src), str(dest), "vmdk").run()
    assert dest.read_bytes() == b"keep"

    class Tiny:
        f_bavail, f_frsize = 256, 4096  # 1 MiB

    monkeypatch.setattr(guards.os, "statvfs", lambda _: Tiny)
    plan = plan_convert(str(src), str(tmp_path / "vm.vhdx"), "vhdx")
    assert codes(plan) == {"no-space"}
    assert any(f.code == "estimate" for f in plan.findings)  # qemu cannot measure vhdx


@pytest.mark.slow
def test_cancelled_convert_leaves_no_partial_file(tmp_path: Path):
    base, top = big_chain(tmp_path / "c", mib=256)
    plan = plan_convert(str(top), str(tmp_path / "c" / "out.vmdk"), "vmdk")
    token = CancelToken()
    seen: list[float] = []

    def progress(fraction: float) -> None:
        seen.append(fraction)
        token.cancel()

    before = {p: sha256(p) for p in (base, top)}
    with pytest.raises(CancelledError, match="convert cancelled: no file was created"):
        plan.run(progress, token)
    assert seen[0] < 1.0
    assert sorted(os.listdir(tmp_path / "c")) == ["base.qcow2", "top.qcow2"]
    assert {p: sha256(p) for p in (base, top)} == before
