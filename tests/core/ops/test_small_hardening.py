"""Issue 8's smaller items: sizes qemu refuses, raw LUKS volumes, exact --size, the free-space
margin said out loud, and a corrupt flag that a check must not call "no problems"."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from conftest import qemu_img, qemu_info
from hypothesis import given
from hypothesis import strategies as st
from imagebytes import qcow2_set_incompatible
from opshelpers import create, overlay

from imagegui.cli import run_cli
from imagegui.core.ops import guards
from imagegui.core.ops.check import plan_check
from imagegui.core.ops.flatten import plan_flatten
from imagegui.core.ops.guards import SPACE_MARGIN
from imagegui.core.read.formats import luks
from imagegui.core.read.formats.base import BytesReader, ParseError
from imagegui.core.read.probe import ProbeError, probe_image
from imagegui.core.read.scan import scan_directory
from imagegui.core.units import parse_size


@pytest.mark.parametrize("size", [(1 << 64) - 1, 1 << 63, (1 << 63) + 512])
def test_a_size_field_qemu_refuses_is_refused(tmp_path: Path, size: int):
    path = create(tmp_path / "huge.qcow2")
    with open(path, "r+b") as f:
        f.seek(24)
        f.write(struct.pack(">Q", size))
    proc = qemu_img("info", path, check=False)
    assert proc.returncode != 0  # 2^64-1: "File too large"; 2^63: "Image is too big"
    with pytest.raises(ProbeError):
        probe_image(str(path))
    result = scan_directory(str(tmp_path))
    assert not result.images and result.errors[0].looked_like_image
    if size == (1 << 64) - 1:  # qcow2's own checks wrap around here; qemu's generic one does not
        assert "File too large" in proc.stderr and "8 EiB" in result.errors[0].message


def test_a_large_size_qemu_opens_is_still_accepted(make, tmp_path: Path):
    path = make.create("big.qcow2", "qcow2", "1P", "cluster_size=2M")
    assert probe_image(str(path)).virtual_size == qemu_info(path)["virtual-size"] == 1 << 50


def test_a_raw_luks_volume_is_luks_as_qemu_says(make, tmp_path: Path):
    path = (
        make.create("vol.img", "luks", "16M", "key-secret=s0", "iter-time=10")
        if False
        else tmp_path / "vol.img"
    )
    qemu_img(
        "create", "-q", "-f", "luks", "--object", "secret,id=s0,data=pw", "-o",
        "key-secret=s0,iter-time=10", path, "16M",
    )  # fmt: skip
    q = qemu_info(path)
    info = probe_image(str(path))
    assert (
        (info.format, info.virtual_size) == (q["format"], q["virtual-size"]) == ("luks", 16 << 20)
    )
    assert info.flags["encrypted"] is True
    top = overlay(tmp_path / "top.qcow2", path, base_fmt="luks")
    from imagegui.core.chains.graph import ChainGraph

    g = ChainGraph(scan_directory(str(tmp_path)))
    assert g.problems_for(str(top)) == []  # -F luks is the right backing format now


@pytest.mark.parametrize(
    ("text", "n"),
    [
        ("9223372036854775807", (1 << 63) - 1),  # through a float this became ...808
        ("9007199254740993", (1 << 53) + 1),
        ("1.5G", 3 << 29),
        ("0.5k", 512),
        ("8E", None),
        ("1.5", None),
    ],
)
def test_parse_size_is_exact(text: str, n: int | None):
    if n is None:
        with pytest.raises(ValueError):
            parse_size(text)
    else:
        assert parse_size(text) == n


def test_flatten_plan_states_the_free_space_margin(tmp_path: Path, monkeypatch):
    base = create(tmp_path / "base.qcow2")
    top = overlay(tmp_path / "top.qcow2", base)
    plan = plan_flatten(str(top), str(tmp_path / "flat.qcow2"))
    pct = f"{SPACE_MARGIN:.0%}"
    space = [f.message for f in plan.findings if f.code == "space"]
    assert len(space) == 1 and f"{pct} margin" in space[0] and "free" in space[0]
    assert f"{pct} margin" in plan.describe()

    class Tiny:
        f_bavail, f_frsize = 10, 4096

    monkeypatch.setattr(guards.os, "statvfs", lambda _: Tiny)
    refused = plan_flatten(str(top), str(tmp_path / "flat.qcow2"))
    assert f"{pct} margin" in refused.blocking()[0].message


def test_check_image_on_an_image_flagged_corrupt_is_not_no_problems(tmp_path: Path, capsys):
    path = create(tmp_path / "c.qcow2")
    qcow2_set_incompatible(path, 2)
    result = plan_check(str(path)).run()
    assert "no problems" not in result.message
    assert [p.kind for p in result.problems] == ["corrupt"]
    assert run_cli(["check-image", str(path)]) == 1
    assert "no problems" not in capsys.readouterr().out


@given(st.binary(min_size=0, max_size=700), st.integers(0, 1 << 40))
def test_luks_parser_only_returns_a_header_or_its_error(tail: bytes, size: int):
    data = luks.MAGIC + b"\0\1" + tail
    reader = BytesReader(data)
    reader.size = max(size, len(data))
    try:
        header = luks.parse(reader)
    except ParseError:
        return
    assert header.format == "luks" and 0 <= header.virtual_size <= reader.size
