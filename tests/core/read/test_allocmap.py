"""``core.read.allocmap``: native allocation maps equal ``qemu-img map``'s depth-0 extents on
real images (raw by SEEK_DATA/SEEK_HOLE; qcow2 by its L1/L2 tables)."""

from __future__ import annotations

import os
import struct
import subprocess

import pytest
from conftest import qemu_img
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from maporacle import qemu_depth0, qemu_io, same_map

from imagegui.core.read import allocmap
from imagegui.core.read.extents import LayerMap, MapUnavailable
from imagegui.core.read.probe import probe_image


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


# --------------------------------------------------------------------------- qcow2

PATTERN = (
    "write -P 1 1k 3M",  # unaligned start: the first cluster is data
    "write -P 2 20M 512",
    "write -z 24M 4M",
    "write -P 3 63M 1M",  # the last cluster
)


def check_qcow2(path) -> LayerMap:
    got = native(path)
    want = qemu_depth0(path, "qcow2")
    assert same_map(got, want), (got, want)
    return got


@pytest.mark.parametrize("cluster", ["512", "64k", "2M"])
@pytest.mark.parametrize("compat", ["0.10", "1.1"])
def test_qcow2_cluster_sizes_and_versions(make, cluster, compat):
    path = make.create("d.qcow2", "qcow2", "64M", f"cluster_size={cluster}", f"compat={compat}")
    qemu_io(path, "qcow2", *PATTERN)
    got = check_qcow2(path)
    assert got.guest_data > 0
    # A v2 image has no zero flag: qemu writes the zeroes as data (or leaves them unallocated).
    assert (got.zero == ()) == (compat == "0.10")


def test_qcow2_empty_and_odd_size(make):
    check_qcow2(make.create("empty.qcow2", "qcow2", "1G"))
    odd = make.create("odd.qcow2", "qcow2", "1000001")
    qemu_io(odd, "qcow2", "write -P 1 900k 76800")
    got = check_qcow2(odd)
    assert got.virtual_size == 1000448  # qemu-img create rounds up to whole sectors
    assert got.data[-1][1] == got.virtual_size  # the last cluster clamped to the disk's end


def test_qcow2_several_l2_tables(make):
    path = make.create("big.qcow2", "qcow2", "3G", "cluster_size=4k")  # 2 MiB per L2 table
    qemu_io(path, "qcow2", "write -P 1 2044k 8k", "write -z 1G 6M", "write -P 2 3071M 1M")
    got = check_qcow2(path)
    assert got.data == ((2044 << 10, 2052 << 10), (3071 << 20, 3 << 30))


def test_qcow2_compressed(make, tmp_path):
    src = make.create("src.qcow2", "qcow2", "16M")
    qemu_io(src, "qcow2", "write -P 7 0 1M", "write -P 8 5M 100k", "write -P 0 10M 1M")
    comp = tmp_path / "comp.qcow2"
    subprocess.run(["qemu-img", "convert", "-c", "-O", "qcow2", src, comp], check=True)
    got = check_qcow2(comp)
    assert got.guest_data > 0


def test_qcow2_extended_l2(make):
    path = make.create("x.qcow2", "qcow2", "16M", "extended_l2=on")
    qemu_io(
        path,
        "qcow2",
        "write -P 1 0 2k",  # subcluster 0 of cluster 0 (2 KiB subclusters)
        "write -z 6k 2k",
        "write -P 2 64k 64k",  # a whole cluster
        "write -z 1M 1M",
        "write -P 3 3M 100k",
        "write -P 4 130k 3k",
    )
    got = check_qcow2(path)
    assert got.data[0] == (0, 2048)
    assert (6144, 8192) in got.zero


def test_qcow2_extended_l2_overlay(make):
    base = make.create("base.qcow2", "qcow2", "4M")
    qemu_io(base, "qcow2", "write -P 1 0 4M")
    top = make.create(
        "top.qcow2", "qcow2", "4M", "extended_l2=on", "backing_file=base.qcow2", "backing_fmt=qcow2"
    )
    qemu_io(top, "qcow2", "write -P 2 4k 2k", "write -z 70k 4k", "discard 256k 64k")
    check_qcow2(top)


@pytest.mark.parametrize("compat", ["0.10", "1.1"])
def test_qcow2_overlay_zero_over_data(make, compat):
    base = make.create("base.qcow2", "qcow2", "16M")
    qemu_io(base, "qcow2", "write -P 1 0 16M")
    top = make.create(
        "top.qcow2",
        "qcow2",
        "16M",
        f"compat={compat}",
        "backing_file=base.qcow2",
        "backing_fmt=qcow2",
    )
    qemu_io(top, "qcow2", "write -P 2 1M 64k", "write -z 4M 1M", "discard 8M 1M")
    got = check_qcow2(top)
    assert got.data[0] == (1 << 20, (1 << 20) + 65536)
    if compat == "1.1":
        assert (4 << 20, 5 << 20) in got.zero  # zero clusters hide the base's data


def test_qcow2_zero_clusters_that_keep_their_host_cluster(make):
    path = make.create("z.qcow2", "qcow2", "8M")
    qemu_io(path, "qcow2", "write -P 1 0 8M", "write -z 1M 1M", "write -z -u 3M 1M")
    check_qcow2(path)


@pytest.mark.parametrize("prealloc", ["metadata", "falloc", "full"])
def test_qcow2_preallocated(make, prealloc):
    path = make.create("p.qcow2", "qcow2", "8M", f"preallocation={prealloc}")
    assert check_qcow2(path).data == ((0, 8 << 20),)


@pytest.mark.parametrize("raw", ["off", "on"])
def test_qcow2_external_data_file(make, raw):
    data = make.root / "e.data"  # absolute: qemu-img create makes a relative one in the cwd
    path = make.create("e.qcow2", "qcow2", "8M", f"data_file={data}", f"data_file_raw={raw}")
    qemu_io(path, "qcow2", "write -P 1 0 64k", "write -P 2 1M 1M", "write -z 5M 1M")
    got = check_qcow2(path)
    # Cluster 0 lives at offset 0 of the data file (an L2 entry of offset 0 that is allocated).
    assert got.data[0][0] == 0


def test_qcow2_after_an_internal_snapshot(make):
    path = make.create("s.qcow2", "qcow2", "8M")
    qemu_io(path, "qcow2", "write -P 1 0 2M")
    subprocess.run(["qemu-img", "snapshot", "-c", "snap", path], check=True)
    qemu_io(path, "qcow2", "write -P 2 1M 64k", "write -z 1536k 64k", "write -P 3 6M 64k")
    check_qcow2(path)  # shared clusters lost their COPIED bit; still data


def test_qcow2_native_needs_no_key(make, tmp_path):
    secret = ("--object", "secret,id=sec0,data=hunter2")
    path = tmp_path / "enc.qcow2"
    # conftest's qemu_img retries LUKS set-up that a busy machine makes give up.
    qemu_img(
        "create", "-q", *secret, "-f", "qcow2", "-o",
        "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10", path, "8M",
    )  # fmt: skip
    opts = f"driver=qcow2,encrypt.key-secret=sec0,file.filename={path}"
    subprocess.run(
        ["qemu-io", *secret, "--image-opts", "-c", "write -P 1 64k 128k", opts],
        check=True,
        capture_output=True,
    )
    got = allocmap.qcow2_map(str(path))
    assert got is not None
    assert got.data == ((65536, 65536 + 131072),)


# --------------------------------------------------------------------------- hostile qcow2


def patch(path, offset: int, fmt: str, value: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(struct.pack(fmt, value))


def header(path) -> tuple[int, int, int]:
    """(l1_table_offset, first L2 table offset, its first entry) of a qcow2 image."""
    with open(path, "rb") as f:
        data = f.read()
    l1 = struct.unpack_from(">Q", data, 40)[0]
    l2 = struct.unpack_from(">Q", data, l1)[0] & 0x00FFFFFFFFFFFE00
    return l1, l2, struct.unpack_from(">Q", data, l2)[0]


@pytest.fixture
def written(make):
    path = make.create("h.qcow2", "qcow2", "8M")
    qemu_io(path, "qcow2", "write -P 1 0 1M")
    return path


def qemu_refuses(path) -> bool:
    return qemu_img("map", "--output=json", "-U", "-f", "qcow2", path, check=False).returncode != 0


def test_truncated_inside_the_l2_table(written):
    _, l2, _ = header(written)
    os.truncate(written, l2 + 100)
    with pytest.raises(MapUnavailable, match="h.qcow2 is damaged: its L2 table .* past the end"):
        allocmap.qcow2_map(str(written))


def test_l1_table_past_the_end(written):
    patch(written, 40, ">Q", 1 << 40)
    with pytest.raises(MapUnavailable, match="L1 table at offset 0x10000000000 lies past the end"):
        allocmap.qcow2_map(str(written))


def test_huge_disk_and_l1_size_allocate_nothing(written):
    # 2^60 bytes of disk: 2^31 L1 entries needed; the L1 is not read (nor allocated) since the
    # file cannot hold it.
    patch(written, 24, ">Q", 1 << 60)
    patch(written, 36, ">I", 0xFFFFFFFF)
    with pytest.raises(MapUnavailable, match="L1 table is too large"):
        allocmap.qcow2_map(str(written))
    patch(written, 24, ">Q", 1 << 45)  # 2^16 entries: fits qemu's limit, not the file
    patch(written, 36, ">I", 1 << 16)
    with pytest.raises(MapUnavailable, match="past the end"):
        allocmap.qcow2_map(str(written))


def test_l1_too_small_for_the_disk(written):
    patch(written, 36, ">I", 0)
    with pytest.raises(MapUnavailable, match="L1 table is too small"):
        allocmap.qcow2_map(str(written))


def test_unaligned_l2_offset(written):
    l1, l2, _ = header(written)
    patch(written, l1, ">Q", (1 << 63) | (l2 + 512))
    assert qemu_refuses(written)
    with pytest.raises(MapUnavailable, match="L2 table offset .* not cluster-aligned"):
        allocmap.qcow2_map(str(written))


def test_unaligned_data_cluster(written):
    _, l2, entry = header(written)
    patch(written, l2, ">Q", entry + 512)
    assert qemu_refuses(written)
    with pytest.raises(MapUnavailable, match="not aligned to the cluster size"):
        allocmap.qcow2_map(str(written))


def test_zero_flag_in_a_v2_image(make):
    path = make.create("v2.qcow2", "qcow2", "8M", "compat=0.10")
    qemu_io(path, "qcow2", "write -P 1 0 64k")
    _, l2, entry = header(path)
    patch(path, l2, ">Q", entry | 1)
    assert qemu_refuses(path)
    with pytest.raises(MapUnavailable, match="zero cluster in a version 2"):
        allocmap.qcow2_map(str(path))


def test_two_l1_entries_share_an_l2_table(make):
    path = make.create("dup.qcow2", "qcow2", "1G")
    qemu_io(path, "qcow2", "write -P 1 0 64k")
    l1, l2, _ = header(path)
    patch(path, l1 + 8, ">Q", (1 << 63) | l2)
    with pytest.raises(MapUnavailable, match="two L1 entries point to the L2 table"):
        allocmap.qcow2_map(str(path))


def test_not_qcow2_any_more(written):
    written.write_bytes(b"\0" * 4096)
    with pytest.raises(MapUnavailable, match="no longer a qcow2 image"):
        allocmap.qcow2_map(str(written))


def test_unknown_incompatible_feature_is_left_to_qemu(written):
    patch(written, 72, ">Q", 1 << 40)
    assert allocmap.qcow2_map(str(written)) is None


def test_not_native_format_is_none(make):
    path = make.create("d.vhdx", "vhdx", "8M")
    assert allocmap.native_map(probe_image(str(path))) is None


# --------------------------------------------------------------------------- random patterns

SIZE = 4 << 20
_op = st.tuples(
    st.sampled_from(["write -P 5", "write -z", "write -z -u", "discard"]),
    st.integers(0, SIZE // 512 - 1),
    st.integers(1, 1024),
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    ops=st.lists(_op, min_size=1, max_size=8),
    layout=st.sampled_from(
        [
            ("cluster_size=4k", "compat=1.1"),
            ("cluster_size=64k", "compat=0.10"),
            ("cluster_size=512", "compat=1.1"),
            ("cluster_size=32k", "extended_l2=on"),
        ]
    ),
    overlay=st.booleans(),
)
def test_random_patterns_match_qemu(tmp_path_factory, ops, layout, overlay):
    root = tmp_path_factory.mktemp("rand")
    opts = ["-o", ",".join(layout)]
    if overlay:
        base = root / "base.qcow2"
        qemu_img("create", "-q", "-f", "qcow2", base, str(SIZE))
        qemu_io(base, "qcow2", f"write -P 1 0 {SIZE}")
        opts += ["-b", "base.qcow2", "-F", "qcow2"]
    path = root / "top.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", *opts, path, str(SIZE))
    commands = []
    for verb, sector, count in ops:
        count = min(count, SIZE // 512 - sector)
        commands.append(f"{verb} {sector * 512} {count * 512}")
    qemu_io(path, "qcow2", *commands)
    check_qcow2(path)
