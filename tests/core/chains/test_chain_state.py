"""Chain state: an image is unusable when anything at or below it stops qemu opening its chain.

qemu-img info (without -U it also opens the backing chain) is the oracle: it fails on exactly the
images the graph marks unusable.
"""

from __future__ import annotations

import subprocess

import pytest
from conftest import qemu_img

from imagegui.core.chains.diagnose import Kind
from imagegui.core.chains.graph import ChainGraph
from imagegui.core.chains.nodestate import State, all_statuses
from imagegui.core.read.scan import scan_directory


def graph_of(path) -> ChainGraph:
    return ChainGraph(scan_directory(str(path)))


def qemu_opens(path) -> bool:
    """Whether qemu can open the whole chain (``--backing-chain`` opens every file)."""
    proc = subprocess.run(
        ["qemu-img", "info", "-U", "--backing-chain", str(path)], capture_output=True, text=True
    )
    return proc.returncode == 0


@pytest.fixture
def chain10(make, tmp_path):
    """c0 <- c1 <- ... <- c9, and a healthy neighbour chain h0 <- h1."""
    make.create("c0.qcow2", "qcow2", "64M")
    for i in range(1, 10):
        make.overlay(f"c{i}.qcow2", f"c{i - 1}.qcow2")
    make.create("h0.qcow2", "qcow2", "64M")
    make.overlay("h1.qcow2", "h0.qcow2")
    return tmp_path


def test_hole_in_the_middle_marks_every_image_above_it(chain10):
    (chain10 / "c3.qcow2").unlink()
    graph = graph_of(chain10)
    hole = str(chain10 / "c3.qcow2")
    for i in (4, 5, 6, 7, 8, 9):
        broken = graph.chain_break(str(chain10 / f"c{i}.qcow2"))
        assert broken is not None, f"c{i} looks healthy above the hole"
        assert (broken.at, broken.kind) == (hole, Kind.MISSING_BACKING)
        assert not qemu_opens(chain10 / f"c{i}.qcow2")
    for name in ("c0", "c1", "c2", "h0", "h1"):
        assert graph.chain_break(str(chain10 / f"{name}.qcow2")) is None
        assert qemu_opens(chain10 / f"{name}.qcow2")
    statuses = all_statuses(graph)
    assert statuses[str(chain10 / "c4.qcow2")].state is State.ERROR  # the problem is its own
    top = statuses[str(chain10 / "c9.qcow2")]
    assert top.state is State.UNUSABLE and top.unusable
    assert top.chain_reason(str(chain10 / "c9.qcow2")) == (
        "chain broken below: c3.qcow2 — missing backing file"
    )
    assert statuses[str(chain10 / "c4.qcow2")].chain_reason(str(chain10 / "c4.qcow2")) == (
        "missing backing file: c3.qcow2"
    )
    assert statuses[str(chain10 / "h1.qcow2")].state is State.OK
    assert sorted(graph.unusable()) == sorted(str(chain10 / f"c{i}.qcow2") for i in range(4, 10))
    # Not added as extra problems: only c4 has one.
    assert [p.path for p in graph.problems] == [str(chain10 / "c4.qcow2")]


def test_images_above_a_loop_are_unusable(make, tmp_path):
    make.overlay("a.qcow2", "b.qcow2")
    make.overlay("b.qcow2", "a.qcow2")
    make.overlay("top.qcow2", "a.qcow2")
    graph = graph_of(tmp_path)
    broken = graph.chain_break(str(tmp_path / "top.qcow2"))
    assert broken is not None
    assert (broken.at, broken.kind) == (str(tmp_path / "a.qcow2"), Kind.BACKING_LOOP)
    assert graph.chain_break(str(tmp_path / "b.qcow2")).at == str(tmp_path / "b.qcow2")
    assert not qemu_opens(tmp_path / "top.qcow2")


def test_images_above_a_wrong_backing_format_are_unusable(make, tmp_path):
    make.create("base.raw", "raw", "64M")
    make.overlay("mid.qcow2", "base.raw", backing_fmt="qcow2")  # really raw
    make.overlay("top.qcow2", "mid.qcow2")
    graph = graph_of(tmp_path)
    broken = graph.chain_break(str(tmp_path / "top.qcow2"))
    assert (broken.at, broken.kind) == (str(tmp_path / "mid.qcow2"), Kind.BACKING_FORMAT_MISMATCH)
    assert graph.chain_break(str(tmp_path / "base.raw")) is None
    assert not qemu_opens(tmp_path / "top.qcow2")


def test_images_above_an_unreadable_base_are_unusable(make, tmp_path):
    base = make.create("base.qcow2", "qcow2", "64M")
    make.overlay("mid.qcow2", "base.qcow2")
    make.overlay("top.qcow2", "mid.qcow2")
    with open(base, "r+b") as f:
        f.truncate(40)  # a qcow2 magic with no header behind it
    graph = graph_of(tmp_path)
    for name in ("mid", "top"):
        broken = graph.chain_break(str(tmp_path / f"{name}.qcow2"))
        assert broken is not None and broken.at == str(base), name
        assert not qemu_opens(tmp_path / f"{name}.qcow2")


def test_images_above_a_corrupt_image_are_unusable(make, tmp_path):
    from imagebytes import qcow2_set_incompatible

    make.create("base.qcow2", "qcow2", "64M")
    mid = make.overlay("mid.qcow2", "base.qcow2")
    make.overlay("top.qcow2", "mid.qcow2")
    qcow2_set_incompatible(mid, 1 << 1)  # the corrupt bit
    graph = graph_of(tmp_path)
    broken = graph.chain_break(str(tmp_path / "top.qcow2"))
    assert (broken.at, broken.kind) == (str(mid), Kind.CORRUPT)
    assert graph.chain_break(str(tmp_path / "base.qcow2")) is None


def test_of_two_own_breaks_the_missing_backing_is_named(make, tmp_path):
    """diagnose's break ranks decide which of an image's own errors is its chain's break: the
    file to find comes before the image's own damage."""
    from imagebytes import qcow2_set_incompatible

    base = make.create("base.qcow2", "qcow2", "64M")
    mid = make.overlay("mid.qcow2", "base.qcow2")
    qcow2_set_incompatible(mid, 1 << 1)  # the corrupt bit
    base.unlink()
    graph = graph_of(tmp_path)
    kinds = {p.kind for p in graph.problems_for(str(mid))}
    assert {Kind.CORRUPT, Kind.MISSING_BACKING} <= kinds
    broken = graph.chain_break(str(mid))
    assert (broken.at, broken.kind) == (str(base), Kind.MISSING_BACKING)


def test_a_protocol_backing_is_a_warning_not_a_break(make, tmp_path):
    make.overlay("net.qcow2", "nbd:127.0.0.1:10809", backing_fmt="raw")
    graph = graph_of(tmp_path)
    assert graph.chain_break(str(tmp_path / "net.qcow2")) is None


def test_deep_chain_state_needs_no_recursion(make, tmp_path):
    """Chain state is one linear pass; a long chain with a hole at the bottom is all unusable."""
    make.create("c0000.qcow2", "qcow2", "1M")
    for i in range(1, 200):
        qemu_img(
            "create", "-q", "-f", "qcow2", "-u", "-b", f"c{i - 1:04d}.qcow2", "-F", "qcow2",
            tmp_path / f"c{i:04d}.qcow2", "1M",
        )  # fmt: skip
    (tmp_path / "c0000.qcow2").unlink()
    graph = graph_of(tmp_path)
    assert len(graph.unusable()) == 199
