"""The demo directory: built by the real qemu-img, showing every kind of chain and trouble."""

from __future__ import annotations

from collections import Counter

from conftest import qemu_info

from imagegui.core.chains.graph import ChainGraph
from imagegui.core.demo import build_demo, instance_uuid, nova_name
from imagegui.core.read.scan import scan_directory


def test_demo_has_every_kind_of_trouble(tmp_path):
    root = build_demo(str(tmp_path / "demo"))
    graph = ChainGraph(scan_directory(root))
    kinds = Counter(str(p.kind) for p in graph.problems)
    assert kinds == {
        "missing-backing": 1,
        "backing-loop": 2,
        "no-backing-format": 1,
        "backing-format-mismatch": 1,
        "protocol-backing": 1,
    }
    bases = {b.path.rsplit("/", 1)[-1]: b for b in graph.nova_bases}
    assert bases[nova_name("cirros-0.6.2-x86_64")].used_by == 3
    assert bases[nova_name("centos-7-2009")].nova_would_remove
    disk = f"{root}/instances/{instance_uuid('web-1')}/disk"
    info = qemu_info(disk)  # Nova's shape: absolute backing into _base, raw recorded
    assert info["backing-filename"].startswith(f"{root}/instances/_base/")
    assert info["backing-filename-format"] == "raw"
    above = graph.chain_break(f"{root}/clones/ubuntu-dev-snap.qcow2")  # no problem of its own
    assert above is not None and above.at == f"{root}/images/ubuntu-22.04.qcow2"
    snap = f"{root}/templates/snapshots/web-2024-03.qcow2"
    assert graph.depth(snap) == 4  # three snapshots on a clone of the golden image


def test_demo_has_an_image_with_named_internal_snapshots(tmp_path):
    from conftest import qemu_img

    from imagegui.core.demo import SNAPSHOT_NAMES
    from imagegui.core.read.snapshots import read_snapshots

    root = build_demo(str(tmp_path / "demo"))
    disk = f"{root}/vms/fedora-40.qcow2"
    found = read_snapshots(disk)
    assert [s.name for s in found] == list(SNAPSHOT_NAMES)
    listed = qemu_img("snapshot", "-l", disk).stdout  # qemu-img's own list agrees
    assert all(name in listed for name in SNAPSHOT_NAMES)
    graph = ChainGraph(scan_directory(root))
    assert disk in graph.nodes and graph.depth(disk) == 0  # standalone
