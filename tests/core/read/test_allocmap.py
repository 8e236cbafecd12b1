"""``core.read.allocmap``: native allocation maps equal ``qemu-img map``'s depth-0 extents on
real images (raw by SEEK_DATA/SEEK_HOLE; qcow2 by its L1/L2 tables)."""

from __future__ import annotations

import os
import subprocess

import pytest
from maporacle import qemu_depth0, same_map

from imagegui.core.read import allocmap
from imagegui.core.read.extents import LayerMap, MapUnavailable
from imagegui.core.read.probe import probe_image


def qemu_io(path, fmt: str, *commands: str) -> None:
    argv = ["qemu-io", "-f", fmt]
    for c in commands:
        argv += ["-c", c]
    subprocess.run([*argv, str(path)], check=True, capture_output=True)


def native(path) -> LayerMap:
    got = allocmap.native_map(probe_image(str(path)))
    assert got is not None
    assert got.source == "native"
    return got


# --------------------------------------------------------------------------- raw


def test_raw_made_by_qemu_img_has_its_first_block(make):
    path = make.create("d.raw", "raw", "1M")
    got = native(path)
    assert same_map(got, qemu_depth0(path, "raw"))
    assert got.data == ((0, 4096),)  # qemu-img create allocates the first block
    assert got.zero == ((4096, 1 << 20),)


def test_raw_sparse_writes(make):
    path = make.create("d.raw", "raw", "64M")
    qemu_io(path, "raw", "write -P 1 1M 64k", "write -P 2 10M 3M", "write -P 3 63M 1M")
    got = native(path)
    assert same_map(got, qemu_depth0(path, "raw"))
    assert got.covers == ((0, 64 << 20),)


@pytest.mark.parametrize("size", [1000, 5000, 10000])
def test_raw_odd_sizes(tmp_path, size):
    path = tmp_path / "odd.img"
    with open(path, "wb") as f:
        if size < 8000:
            f.write(os.urandom(size))
        else:
            f.truncate(size)
    got = native(path)
    assert same_map(got, qemu_depth0(path, "raw"))


def test_raw_unreadable(tmp_path):
    with pytest.raises(MapUnavailable, match="gone.img"):
        allocmap.raw_map(str(tmp_path / "gone.img"), 4096)


def test_not_native_format_is_none(make):
    path = make.create("d.vhdx", "vhdx", "8M")
    assert allocmap.native_map(probe_image(str(path))) is None
