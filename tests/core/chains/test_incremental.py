"""A chain graph updated from a rescan's delta (``chains.incremental.update``) equals one built
whole, leaves the graph it came from as it was, and is built whole when the delta is large. Random
sequences of file changes: ``tests/core/read/test_rescan.py``; here the parts those do not
reach (domain disks, the fallback)."""

from __future__ import annotations

import os

from imagegui.core.chains import incremental
from imagegui.core.chains.checkstore import CheckStore
from imagegui.core.chains.diagnose import Kind
from imagegui.core.chains.graph import ChainGraph
from imagegui.core.chains.incremental import update as update_graph
from imagegui.core.chains.nodestate import all_statuses, updated_statuses
from imagegui.core.read.rescan import ScanState
from imagegui.core.virt.inventory import DomainIndex
from imagegui.core.virt.model import Domain, DomainDisk, HostInventory

NOW = 2_000_000_000.0
URI = "qemu:///system"


def index(*domains: tuple[str, str, list]) -> DomainIndex:
    """A DomainIndex of ``(name, state, [disk paths as vda, vdb, ...])``."""
    inv = HostInventory(uri=URI, hostname="h")
    for name, state, paths in domains:
        disks = tuple(
            DomainDisk(f"vd{chr(ord('a') + i)}", "disk", "file", str(p), "qcow2")
            for i, p in enumerate(paths)
        )
        inv.domains.append(Domain(URI, name, f"uuid-{name}", state, disks))
    return DomainIndex([inv])


def picture(graph: ChainGraph) -> tuple:
    """Everything a reader of the graph sees, orders included."""
    g = graph.g
    return (
        list(g.nodes(data=True)),
        list(g.edges(data=True)),
        [list(g.pred[n]) for n in g],
        graph.loops,
        graph.problems,
        graph._problem_index,
        graph._breaks,
        graph.nova_bases,
        graph.domain_uses(),
        graph.domain_notes,
    )


def test_domain_disks_follow_an_update(make, tmp_path):
    root = tmp_path / "r"
    base = make.create("r/base.qcow2")
    top = make.overlay("r/vm/top.qcow2", "../base.qcow2")
    gone = str(root / "vm" / "gone.qcow2")  # a disk whose file is not there: a placeholder
    domains = index(("web01", "running", [top]), ("web02", "shut off", [gone]))
    state = ScanState.from_full(str(root))
    graph = ChainGraph(state.result, NOW, CheckStore(), domains)
    status = all_statuses(graph)
    before = picture(graph)
    os.unlink(base)
    state.rescan({str(base)})
    new = update_graph(graph, state.result, state.delta, NOW, CheckStore(), domains)
    whole = ChainGraph(state.result, NOW, CheckStore(), domains)
    assert new.updated_nodes is not None
    assert picture(new) == picture(whole)
    assert updated_statuses(new, status) == all_statuses(whole)
    kinds = {(p.path, p.kind) for p in new.problems}
    assert (str(top), Kind.DOMAIN_DISK_MISSING) in kinds  # its chain is broken now
    assert (gone, Kind.DOMAIN_DISK_MISSING) in kinds
    assert picture(graph) == before  # the graph updated from is as it was
    make.create("r/base.qcow2")  # and back again
    state.rescan({str(base)})
    again = update_graph(new, state.result, state.delta, NOW, CheckStore(), domains)
    assert picture(again) == picture(ChainGraph(state.result, NOW, CheckStore(), domains))
    assert picture(again)[4] == before[4]


def test_a_large_delta_is_built_whole(make, tmp_path, monkeypatch):
    for i in range(4):
        make.create(f"d{i}.qcow2")
    state = ScanState.from_full(str(tmp_path))
    graph = ChainGraph(state.result, NOW, CheckStore())
    for i in range(3):
        os.unlink(tmp_path / f"d{i}.qcow2")
    state.rescan()
    monkeypatch.setattr(incremental, "FALLBACK_MIN", 2)
    whole = update_graph(graph, state.result, state.delta, NOW, CheckStore())
    assert whole.updated_nodes is None  # 3 of 4 changed: built whole
    assert picture(whole) == picture(ChainGraph(state.result, NOW, CheckStore()))
    monkeypatch.setattr(incremental, "FALLBACK_MIN", 3)
    assert (
        update_graph(graph, state.result, state.delta, NOW, CheckStore()).updated_nodes is not None
    )


def test_the_forest_of_an_update_walks_only_the_trees_it_touched(make, tmp_path):
    """A new overlay in one folder rebuilds that chain's tree; every other tree is the old
    forest's, the very same lists (at 100,000 images 33-50 ms instead of 170-330 ms)."""
    from imagegui.core.chains.layout import build_forest, update_forest

    for d in ("a", "b"):
        make.create(f"{d}/base.qcow2", "qcow2", "1G")
        make.overlay(f"{d}/top.qcow2", "base.qcow2")
    state = ScanState.from_full(str(tmp_path), racy_ns=0)
    before = ChainGraph(state.result, now=NOW, checks=CheckStore())
    old = build_forest(before)
    make.overlay("b/new.qcow2", "top.qcow2")
    state.rescan({str(tmp_path / "b" / "new.qcow2")})
    graph = update_graph(before, state.result, state.delta, NOW, CheckStore())
    forest = update_forest(old, before, graph)
    assert forest == build_forest(graph)
    a_base, b_top = str(tmp_path / "a" / "base.qcow2"), str(tmp_path / "b" / "top.qcow2")
    assert forest.children[a_base] is old.children[a_base]  # untouched: shared
    assert forest.children[b_top] == [str(tmp_path / "b" / "new.qcow2")]
    assert b_top not in old.children  # the old forest is left as it was
    assert update_forest(forest, graph, graph).children is forest.children  # nothing changed
