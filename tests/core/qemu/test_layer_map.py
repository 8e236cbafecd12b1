"""``qemuimg.layer_map``: one layer's map by ``qemu-img map`` with its backing file not opened,
for every format qemu opens, compared with qemu's own depth-0 extents of the whole chain."""

from __future__ import annotations

import os

import pytest
from maporacle import qemu_depth0, qemu_io, same_map

from imagegui.core.jobs import CancelledError, CancelToken
from imagegui.core.qemu import qemuimg
from imagegui.core.read.extents import MapUnavailable
from imagegui.core.read.probe import probe_image

FORMATS = ["qcow2", "qed", "vmdk", "vpc", "vhdx", "raw", "qcow"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_matches_qemu(make, fmt):
    path = make.create(f"disk.{fmt}", fmt, "32M")
    qemu_io(path, fmt, "write -P 7 1M 192k", "write -z 8M 1M", "write -P 9 20M 4k")
    got = qemuimg.layer_map(str(path), fmt)
    want = qemu_depth0(path, fmt)
    assert same_map(got, want), (got, want)
    assert got.source == "qemu-img map"
    assert got.guest_data > 0


def test_overlay_alone_zero_over_data_and_missing_backing(make):
    base = make.create("base.qcow2", "qcow2", "16M")
    qemu_io(base, "qcow2", "write -P 1 0 4M")
    top = make.overlay("top.qcow2", "base.qcow2")
    qemu_io(top, "qcow2", "write -P 2 64k 64k", "write -z 1M 128k")
    got = qemuimg.layer_map(str(top), "qcow2")
    assert same_map(got, qemu_depth0(top, "qcow2"))
    assert got.data == ((65536, 131072),)
    assert got.zero == ((1 << 20, (1 << 20) + 131072),)
    # The backing file is never opened: its loss changes nothing.
    os.unlink(base)
    assert same_map(qemuimg.layer_map(str(top), "qcow2"), got)


@pytest.mark.parametrize("name", ['a,b "c" \\d.qcow2', "sp ace,,x=y.qcow2", "naïve.qcow2"])
def test_awkward_paths(make, name):
    path = make.create(name, "qcow2", "4M")
    qemu_io(path, "qcow2", "write -P 3 0 64k")
    assert qemuimg.layer_map(str(path), "qcow2").data == ((0, 65536),)


def test_path_not_utf8(make, tmp_path):
    src = make.create("plain.qcow2", "qcow2", "4M")
    qemu_io(src, "qcow2", "write -P 3 64k 64k")
    odd = os.fsencode(tmp_path) + b"/odd\xff,name.qcow2"
    os.rename(src, odd)
    path = os.fsdecode(odd)
    assert "--image-opts" in qemuimg.layer_map_argv(path, "qcow2")
    assert qemuimg.layer_map(path, "qcow2").data == ((65536, 131072),)


def test_not_an_image_of_that_format(tmp_path):
    junk = tmp_path / "junk.qcow2"
    junk.write_bytes(b"not a qcow2 image" * 100)
    with pytest.raises(MapUnavailable, match="junk.qcow2"):
        qemuimg.layer_map(str(junk), "qcow2")


def test_missing_file_and_missing_program(tmp_path, make):
    with pytest.raises(MapUnavailable, match="gone.qcow2"):
        qemuimg.layer_map(str(tmp_path / "gone.qcow2"), "qcow2")
    path = make.create("x.qcow2", "qcow2", "1M")
    with pytest.raises(MapUnavailable, match="qemu-utils|cannot run"):
        qemuimg.layer_map(str(path), "qcow2", qemu_img=str(tmp_path / "no-qemu-img"))


def test_cancelled_before_start(make):
    path = make.create("x.qcow2", "qcow2", "1M")
    token = CancelToken()
    token.cancel()
    with pytest.raises(CancelledError):
        qemuimg.layer_map(str(path), "qcow2", cancel=token)


def test_parse_layer_map_ignores_deeper_and_absent_extents():
    text = """[
    {"start": 0, "length": 512, "depth": 0, "present": true, "zero": false, "data": true},
    {"start": 512, "length": 512, "depth": 0, "present": true, "zero": false, "data": true},
    {"start": 1024, "length": 1024, "depth": 1, "present": true, "zero": false, "data": true},
    {"start": 2048, "length": 512, "depth": 0, "present": true, "zero": true, "data": false},
    {"start": 2560, "length": 512, "depth": 0, "present": false, "zero": true, "data": false},
    {"start": 3072, "length": 1024, "depth": 0, "present": true, "zero": true, "data": true}]"""
    got = qemuimg.parse_layer_map(text)
    assert got.virtual_size == 4096
    assert got.data == ((0, 1024), (3072, 4096))
    assert got.zero == ((2048, 2560),)


def test_read_layer_map_falls_back_to_qemu_img(make):
    path = make.create("d.vhdx", "vhdx", "8M")
    got = qemuimg.read_layer_map(probe_image(str(path)))
    assert got.source == "qemu-img map"
    assert same_map(got, qemu_depth0(path, "vhdx"))


def test_read_layer_map_native_raw(make):
    path = make.create("d.raw", "raw", "8M")
    qemu_io(path, "raw", "write -P 5 1M 8k")
    got = qemuimg.read_layer_map(probe_image(str(path)))
    assert got.source == "native"
    assert same_map(got, qemu_depth0(path, "raw"))


def test_read_layer_map_native_qcow2_equals_qemu_img(make):
    base = make.create("base.qcow2", "qcow2", "16M")
    top = make.overlay("top.qcow2", "base.qcow2")
    qemu_io(top, "qcow2", "write -P 1 1M 1M", "write -z 8M 2M")
    info = probe_image(str(top))
    native = qemuimg.read_layer_map(info)
    slow = qemuimg.layer_map(info.path, info.format)
    assert native.source == "native"
    assert (native.virtual_size, native.data, native.zero) == (
        slow.virtual_size,
        slow.data,
        slow.zero,
    )
    assert base.exists()


def test_read_layer_map_damaged_qcow2_is_not_handed_to_qemu_img(make):
    path = make.create("cut.qcow2", "qcow2", "8M")
    qemu_io(path, "qcow2", "write -P 1 0 1M")
    info = probe_image(str(path))
    with open(path, "rb") as f:
        head = f.read(48)
    l1_offset = int.from_bytes(head[40:48], "big")
    os.truncate(path, l1_offset + 4)  # the L1 table cut short
    with pytest.raises(MapUnavailable, match="cut.qcow2 is damaged: its L1 table"):
        qemuimg.read_layer_map(info, qemu_img="/nonexistent/qemu-img")


@pytest.mark.parametrize("sub", ["twoGbMaxExtentSparse", "monolithicFlat", "streamOptimized"])
def test_vmdk_with_extent_files_and_compressed_grains(make, sub):
    path = make.create(f"{sub}.vmdk", "vmdk", "64M", f"subformat={sub}")
    qemu_io(path, "vmdk", "write -P 1 1M 128k")
    got = qemuimg.layer_map(str(path), "vmdk")
    assert same_map(got, qemu_depth0(path, "vmdk"))
    assert (1 << 20, (1 << 20) + (128 << 10)) in got.data or got.data == ((0, 64 << 20),)
