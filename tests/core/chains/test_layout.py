"""The Qt-free layout: a forest that keeps every node once, cards that never overlap."""

from __future__ import annotations

import itertools
import random

import networkx as nx

from imagegui.core.chains.graph import ChainGraph
from imagegui.core.chains.layout import (
    COL_GAP,
    COMPONENT_GAP_X,
    COMPONENT_GAP_Y,
    NODE_H,
    NODE_W,
    ROW_GAP,
    TOP,
    Component,
    _columns,
    build_forest,
    compute_layout,
    tree_tables,
)
from imagegui.core.chains.nodestate import State, all_statuses, short_name
from imagegui.core.chains.repair import repair_candidates
from imagegui.core.read.scan import scan_directory


def graph_of(path) -> ChainGraph:
    return ChainGraph(scan_directory(str(path)))


def test_forest_has_every_node_once_and_cuts_loops(make, tmp_path):
    make.create("base.qcow2", "qcow2", "1G")
    make.overlay("a.qcow2", "base.qcow2")
    make.overlay("b.qcow2", "a.qcow2")
    make.overlay("c.qcow2", "base.qcow2")
    make.overlay("loop1.qcow2", "loop2.qcow2")
    make.overlay("loop2.qcow2", "loop1.qcow2")
    make.overlay("hang.qcow2", "loop2.qcow2")  # hangs off the loop
    make.overlay("lost.qcow2", "gone.qcow2")
    graph = graph_of(tmp_path)
    forest = build_forest(graph)
    placed = set(forest.roots) | set(forest.parent)
    assert placed == set(graph.nodes)
    assert len(forest.roots) + len(forest.parent) == len(graph.nodes)
    p = lambda name: str(tmp_path / name)  # noqa: E731
    assert forest.kids(p("base.qcow2")) == [p("a.qcow2"), p("c.qcow2")]
    assert forest.depth[p("b.qcow2")] == 2
    assert forest.ancestors(p("b.qcow2")) == [p("a.qcow2"), p("base.qcow2")]
    assert p("gone.qcow2") in forest.roots  # the missing placeholder roots its chain
    (edge,) = forest.loop_edges
    assert set(edge) == {p("loop1.qcow2"), p("loop2.qcow2")}


def test_depth_is_the_topological_generation_counted_from_the_bases(make, tmp_path):
    make.create("base.qcow2", "qcow2", "1G")
    make.overlay("a.qcow2", "base.qcow2")
    make.overlay("b.qcow2", "a.qcow2")
    make.overlay("loop1.qcow2", "loop2.qcow2")
    make.overlay("loop2.qcow2", "loop3.qcow2")
    make.overlay("loop3.qcow2", "loop1.qcow2")
    make.overlay("hang.qcow2", "loop2.qcow2")
    graph = graph_of(tmp_path)
    forest = build_forest(graph)
    p = lambda name: str(tmp_path / name)  # noqa: E731
    up = graph.g.reverse()
    for name in ("base.qcow2", "a.qcow2", "b.qcow2"):  # no loop: as deep as its chain
        assert forest.depth[p(name)] == graph.depth(p(name))
    by_generation = list(nx.topological_generations(up.subgraph(graph.chain(p("b.qcow2")))))
    assert by_generation == [[p("base.qcow2")], [p("a.qcow2")], [p("b.qcow2")]]
    # The loop is cut where it closes (from its first member): that member is the tree's root.
    assert graph.loops == [[p("loop1.qcow2"), p("loop2.qcow2"), p("loop3.qcow2")]]
    assert forest.loop_edges == [(p("loop1.qcow2"), p("loop2.qcow2"))]
    assert [forest.depth[p(f"loop{i}.qcow2")] for i in (1, 3, 2)] == [0, 1, 2]
    assert forest.depth[p("hang.qcow2")] == 3 and forest.parent[p("hang.qcow2")] == p("loop2.qcow2")
    assert sorted(forest.roots) == forest.roots == [p("base.qcow2"), p("loop1.qcow2")]


def test_layout_places_bases_left_and_never_overlaps(make, tmp_path):
    make.create("base.qcow2", "qcow2", "1G")
    for i in range(6):
        make.overlay(f"o{i}.qcow2", "base.qcow2")
        make.overlay(f"o{i}-top.qcow2", f"o{i}.qcow2")
    for i in range(5):
        make.create(f"alone{i}.raw", "raw", "1M")
    graph = graph_of(tmp_path)
    layout = compute_layout(graph)
    pos = layout.positions
    assert set(pos) == set(graph.nodes)
    for node in graph.nodes:
        backing = graph.backing_of(node)
        if backing is not None:
            assert pos[node][0] > pos[backing][0]  # overlays to the right of their base
    for a, b in itertools.combinations(pos.values(), 2):
        apart = abs(a[0] - b[0]) >= NODE_W or abs(a[1] - b[1]) >= NODE_H
        assert apart, (a, b)
    assert layout.width > 0 and layout.height > 0
    # Equal coordinates are one float object (a grid's few hundred values at 100,000 images).
    xs = {id(x): x for x, _ in pos.values()}
    assert len(xs) == len({x for x, _ in pos.values()}) < len(pos)


def test_packing_follows_the_aspect(make, tmp_path):
    for i in range(40):
        make.create(f"alone{i:02d}.raw", "raw", "1M")
    graph = graph_of(tmp_path)
    wide = compute_layout(graph, aspect=4.0)
    tall = compute_layout(graph, aspect=0.5)
    assert wide.width / wide.height > tall.width / tall.height


def test_states_and_names(make, tmp_path):
    make.create("base.qcow2", "qcow2", "1G")
    make.overlay("ok.qcow2", "base.qcow2")
    make.overlay("lost.qcow2", "gone.qcow2")
    statuses = all_statuses(graph_of(tmp_path))
    assert statuses[str(tmp_path / "ok.qcow2")].state is State.OK
    assert statuses[str(tmp_path / "lost.qcow2")].state is State.ERROR
    assert statuses[str(tmp_path / "gone.qcow2")].state is State.MISSING
    assert statuses[str(tmp_path / "gone.qcow2")].placeholder
    assert short_name("/var/lib/nova/instances/1234-abcd/disk") == "1234-abcd/disk"
    assert short_name("/srv/a.qcow2") == "a.qcow2"
    assert short_name("nbd://host:10809/x") == "nbd://host:10809/x"


def test_repair_candidates_best_first(make, tmp_path):
    make.create("images/base.qcow2", "qcow2", "64M")
    make.overlay("clone.qcow2", "images/base.qcow2")
    (tmp_path / "images" / "base.qcow2").rename(tmp_path / "moved-base.qcow2")
    make.create("other/base.qcow2", "qcow2", "1G")  # same name, other size
    make.create("same-size.qcow2", "qcow2", "64M")  # same size and format, other name
    make.create("unrelated.raw", "raw", "3M")
    graph = graph_of(tmp_path)
    found = repair_candidates(graph, str(tmp_path / "clone.qcow2"))
    assert [c.path for c in found] == [
        str(tmp_path / "other/base.qcow2"),
        str(tmp_path / "moved-base.qcow2"),
        str(tmp_path / "same-size.qcow2"),
    ]
    assert found[0].reasons[0] == "same name"


def test_overlays_run_top_to_bottom_and_a_subset_packs_alone(make, tmp_path):
    make.create("base.qcow2", "qcow2", "1G")
    for name in ("a", "b", "c"):
        make.overlay(f"{name}.qcow2", "base.qcow2")
    for i in range(6):
        make.create(f"alone{i}.raw", "raw", "1M")
    graph = graph_of(tmp_path)
    layout = compute_layout(graph)
    base = str(tmp_path / "base.qcow2")
    kids = layout.forest.kids(base)
    ys = [layout.positions[k][1] for k in kids]
    assert ys == sorted(ys) and len(set(ys)) == 3  # the list's first overlay is drawn on top
    only = compute_layout(graph, layout.forest, roots=[base])
    assert set(only.positions) == {base, *kids}
    assert only.width < layout.width or only.height < layout.height
    assert min(x for x, _ in only.positions.values()) == 0.0  # packed from the corner: no holes


def test_packing_uses_the_view(make, tmp_path):
    """Wide trees, few of them: the packing must not leave a half-empty last column."""
    for g in range(14):
        make.create(f"g{g:02d}-base.qcow2", "qcow2", "1G")
        for c in range(4):
            make.overlay(f"g{g:02d}-c{c}.qcow2", f"g{g:02d}-base.qcow2")
        make.overlay(f"g{g:02d}-s0.qcow2", f"g{g:02d}-c0.qcow2")
    layout = compute_layout(graph_of(tmp_path), aspect=1.0)
    assert 0.7 < layout.width / layout.height < 1.4


def greedy_columns(heights, widths, limit):
    """The packing rule tree by tree (what ``_columns`` does with one bisection per column)."""
    x = y = column_w = height = 0.0
    placed = []
    for h, w in zip(heights, widths, strict=True):
        if y > 0 and y + h > limit:
            x += column_w + COMPONENT_GAP_X
            y = column_w = 0.0
        placed.append((x, y))
        height = max(height, y + h)
        y += h + COMPONENT_GAP_Y
        column_w = max(column_w, w)
    return (x + column_w, height), placed


def test_columns_by_bisection_equal_the_tree_by_tree_rule():
    rng = random.Random(14)
    step_y, step_x = NODE_H + ROW_GAP, NODE_W + COL_GAP
    for _ in range(300):
        count = rng.randint(1, 60)
        heights = [rng.choice([1, 1, 1, 2, 3, 7, 40]) * step_y - ROW_GAP for _ in range(count)]
        widths = [rng.randint(1, 12) * step_x - COL_GAP for _ in range(count)]
        comps = [Component(str(i), [str(i)]) for i in range(count)]
        for comp, h, w in zip(comps, heights, widths, strict=True):
            comp.h, comp.w = h, w
        tops = [0.0]
        for h in heights:
            tops.append(tops[-1] + h + COMPONENT_GAP_Y)
        limit = rng.choice([max(heights), rng.uniform(0, 3 * tops[-1] / count), tops[-1], 1.0])
        size, placed = greedy_columns(heights, widths, limit)
        assert _columns(tops, widths, limit, comps) == size
        assert [(c.x, c.y) for c in comps] == placed


def test_branching_trees_are_tidy_and_chains_take_one_row(make, tmp_path):
    """A tree with branches: leaves on consecutive rows in list order, each parent centred on its
    first and last child, one column per depth; a straight chain one row."""
    make.create("base.qcow2", "qcow2", "1G")
    for name, backing in [
        ("a", "base"),
        ("b", "base"),
        ("a1", "a"),
        ("a2", "a"),
        ("a3", "a"),
        ("b1", "b"),
        ("b1x", "b1"),
    ]:
        make.overlay(f"{name}.qcow2", f"{backing}.qcow2")
    make.create("solo.qcow2", "qcow2", "1G")
    make.overlay("s1.qcow2", "solo.qcow2")
    make.overlay("s2.qcow2", "s1.qcow2")
    layout = compute_layout(graph_of(tmp_path))
    p = lambda name: str(tmp_path / f"{name}.qcow2")  # noqa: E731
    comp = layout.components[layout.component_of[p("base")]]
    local = {
        n: (layout.positions[n][0] - comp.x, layout.positions[n][1] - comp.y) for n in comp.nodes
    }
    step_x, step_y = NODE_W + COL_GAP, NODE_H + ROW_GAP
    assert comp.nodes == [p(n) for n in ("base", "a", "a1", "a2", "a3", "b", "b1", "b1x")]
    assert [local[p(n)][1] for n in ("a1", "a2", "a3", "b1x")] == [
        0,
        step_y,
        2 * step_y,
        3 * step_y,
    ]
    assert local[p("a")] == (step_x, step_y)
    assert local[p("b1")] == (2 * step_x, 3 * step_y) and local[p("b")] == (step_x, 3 * step_y)
    assert local[p("base")] == (0.0, (step_y + 3 * step_y) / 2)
    assert (comp.w, comp.h) == (4 * step_x - COL_GAP, 4 * step_y - ROW_GAP)
    chain = layout.components[layout.component_of[p("solo")]]
    assert [layout.positions[n] for n in chain.nodes] == [
        (chain.x + d * step_x, chain.y) for d in range(3)
    ]
    assert (chain.w, chain.h) == (3 * step_x - COL_GAP, NODE_H)


def test_tree_tables_of_the_whole_forest_equal_the_walk_and_answer_the_model(make, tmp_path):
    """The whole forest's tables (made row list by row list, no walk) equal those of the walk a
    filter takes with every node visible, and say each node's parent and row."""
    make.create("base.qcow2", "qcow2", "1G")
    for name, backing in [("a", "base"), ("b", "base"), ("a1", "a"), ("a2", "a"), ("c", "b")]:
        make.overlay(f"{name}.qcow2", f"{backing}.qcow2")
    make.overlay("loop1.qcow2", "loop2.qcow2")
    make.overlay("loop2.qcow2", "loop1.qcow2")
    make.overlay("lost.qcow2", "gone.qcow2")
    make.create("solo.qcow2", "qcow2", "1G")
    graph = graph_of(tmp_path)
    forest = build_forest(graph)
    nodes = list(graph.nodes)
    ids = {n: i for i, n in enumerate(nodes)}
    whole = tree_tables(forest, nodes, ids)
    walked = tree_tables(forest, nodes, ids, visible=set(nodes))
    assert (whole.kids, whole.parent, whole.row) == (walked.kids, walked.parent, walked.row)
    assert [nodes[i] for i in whole.kids[TOP]] == forest.roots
    p = lambda name: ids[str(tmp_path / f"{name}.qcow2")]  # noqa: E731
    assert whole.kids[p("a")] == [p("a1"), p("a2")]
    assert (whole.parent[p("a2")], whole.row[p("a2")]) == (p("a"), 1)
    assert (whole.parent[p("c")], whole.row[p("c")]) == (p("b"), 0)
    assert whole.parent[p("base")] == TOP and len(whole.parent) == len(nodes)
    shown = tree_tables(forest, nodes, ids, visible=set(nodes) - {nodes[p("a1")]})
    assert shown.kids[p("a")] == [p("a2")] and shown.row[p("a2")] == 0
