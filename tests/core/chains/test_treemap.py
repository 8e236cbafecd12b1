"""The squarified treemap: areas in proportion to bytes, children inside their parents, siblings
never overlapping, zero sizes harmless, the same picture for the same input."""

from __future__ import annotations

import random

import pytest

from imagegui.core.chains.graph import ChainGraph
from imagegui.core.chains.layout import build_forest
from imagegui.core.chains.treemap import (
    HEADER,
    Tile,
    squarified_forest,
    squarify,
    subtree_totals,
    tile_at,
)
from imagegui.core.read.scan import scan_directory

EPS = 1e-6


def random_forest(seed: int, n: int = 400, zero_every: int = 0):
    """Chains and fans: each new node is a base (1 in 6) or an overlay of an earlier node."""
    rng = random.Random(seed)
    roots: list[str] = []
    children: dict[str, list[str]] = {}
    own: dict[str, int] = {}
    nodes: list[str] = []
    for i in range(n):
        name = f"/img/n{i:04d}.qcow2"
        if not nodes or rng.random() < 1 / 6:
            roots.append(name)
        else:
            children.setdefault(rng.choice(nodes), []).append(name)
        own[name] = 0 if zero_every and i % zero_every == 0 else rng.randint(1, 1 << 30)
        nodes.append(name)
    return roots, children, own


def area(t: Tile) -> float:
    return t.w * t.h


def inside(inner: Tile, outer: Tile) -> bool:
    return (
        inner.x >= outer.x - EPS
        and inner.y >= outer.y - EPS
        and inner.x + inner.w <= outer.x + outer.w + EPS
        and inner.y + inner.h <= outer.y + outer.h + EPS
    )


def overlap(a: Tile, b: Tile) -> float:
    w = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
    h = min(a.y + a.h, b.y + b.h) - max(a.y, b.y)
    return max(0.0, w) * max(0.0, h)


def by_parent(tiles: list[Tile]) -> dict[int, list[Tile]]:
    groups: dict[int, list[Tile]] = {}
    for t in tiles:
        groups.setdefault(t.parent, []).append(t)
    return groups


def test_squarify_tiles_the_rectangle_and_keeps_squares_square():
    rects = squarify([25.0] * 16, 0, 0, 20, 20)
    assert len(rects) == 16
    assert sum(w * h for _, _, w, h in rects) == pytest.approx(400)
    for x, y, w, h in rects:  # sixteen equal values in a square: sixteen squares
        assert w == pytest.approx(5) and h == pytest.approx(5)
        assert x >= 0 and x + w <= 20 + EPS and y >= 0 and y + h <= 20 + EPS


def test_squarify_example_from_the_paper():
    """Bruls et al.'s example: 6, 6, 4, 3, 2, 2, 1 in a 6 x 4 rectangle; the first row is the
    two 6s stacked in a column 3 wide, and no rectangle is worse than 1 : 3."""
    rects = squarify([6, 6, 4, 3, 2, 2, 1], 0, 0, 6, 4)
    assert rects[0] == pytest.approx((0, 0, 3, 2)) and rects[1] == pytest.approx((0, 2, 3, 2))
    assert sum(w * h for _, _, w, h in rects) == pytest.approx(24)
    for _, _, w, h in rects:
        assert max(w / h, h / w) <= 3 + EPS


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_areas_are_proportional_to_bytes(seed):
    roots, children, own = random_forest(seed)
    tiles = squarified_forest(roots, children, own, 1200, 800)
    total, _, _ = subtree_totals(roots, children, own)
    tops = [t for t in tiles if t.depth == 0]
    grand = sum(total[r] for r in roots)
    assert sum(area(t) for t in tops) == pytest.approx(1200 * 800)
    for t in tops:  # the whole picture is shared by the bases, each by its chain's bytes
        assert area(t) == pytest.approx(1200 * 800 * total[t.path] / grand, rel=1e-9)
    for parent, group in by_parent(tiles).items():
        if parent < 0:
            continue
        p = tiles[parent]
        # Inside the parent's inner area, children and the parent's own bytes share in
        # proportion: each child's area per byte is the same, and their sum leaves the own part.
        per_byte = [area(t) / t.total for t in group if t.total and area(t)]
        if per_byte:
            rate = per_byte[0]
            assert all(r == pytest.approx(rate, rel=1e-9) for r in per_byte), p.path
            children_area = sum(area(t) for t in group)
            assert children_area == pytest.approx(rate * (p.total - p.own), rel=1e-6)
            assert children_area <= area(p) + EPS


@pytest.mark.parametrize("seed", [4, 5])
def test_children_inside_parents_below_their_header_and_siblings_apart(seed):
    roots, children, own = random_forest(seed)
    tiles = squarified_forest(roots, children, own, 1000, 700)
    for t in tiles:
        if t.parent >= 0:
            p = tiles[t.parent]
            assert inside(t, p), (t, p)
            assert t.depth == p.depth + 1
            if area(t):
                assert t.y >= p.y + min(HEADER, p.h * 0.3) - EPS  # the parent's name band
    for group in by_parent(tiles).values():
        for i, a in enumerate(group):
            for b in group[i + 1 :]:
                assert overlap(a, b) < 1e-6 * max(1.0, min(area(a), area(b))), (a, b)


def test_one_tile_per_node_in_pre_order_with_subtree_ends():
    roots, children, own = random_forest(6, n=200)
    tiles = squarified_forest(roots, children, own, 640, 480)
    assert sorted(t.path for t in tiles) == sorted(own)
    for i, t in enumerate(tiles):
        below = tiles[i + 1 : t.end]
        assert all(d.depth > t.depth for d in below)  # its subtree follows it, contiguous
        assert t.end == len(tiles) or tiles[t.end].depth <= t.depth
        assert len(below) == len([d for d in tiles if _descends(tiles, d, i)])


def _descends(tiles: list[Tile], t: Tile, ancestor: int) -> bool:
    p = t.parent
    while p >= 0:
        if p == ancestor:
            return True
        p = tiles[p].parent
    return False


def test_zero_sizes_are_empty_tiles_never_errors():
    roots = ["/a", "/b", "/c"]
    children = {"/a": ["/a1", "/a2"], "/c": ["/c1"]}
    own = {"/a": 0, "/a1": 0, "/a2": 0, "/b": 100, "/c": 0, "/c1": 50}
    tiles = {t.path: t for t in squarified_forest(roots, children, own, 300, 200)}
    assert set(tiles) == set(own)
    for name in ("/a", "/a1", "/a2"):
        assert area(tiles[name]) == 0
    assert area(tiles["/b"]) == pytest.approx(300 * 200 * 100 / 150)
    assert area(tiles["/c1"]) > 0 and inside(tiles["/c1"], tiles["/c"])
    # Nothing at all on disk, or no room: every node still has its (empty) tile.
    nothing = squarified_forest(roots, children, dict.fromkeys(own, 0), 300, 200)
    assert len(nothing) == len(own) and all(area(t) == 0 for t in nothing)
    cramped = squarified_forest(roots, children, own, 0, 0)
    assert len(cramped) == len(own) and all(area(t) == 0 for t in cramped)


def test_same_picture_whatever_the_input_order():
    roots, children, own = random_forest(7, n=300)
    first = squarified_forest(roots, children, own, 800, 600)
    shuffled = {k: list(reversed(v)) for k, v in reversed(list(children.items()))}
    again = squarified_forest(
        list(reversed(roots)), shuffled, dict(reversed(own.items())), 800, 600
    )
    assert first == again
    # Equal sizes are ordered by path, so ties cannot make it differ either.
    flat = dict.fromkeys(own, 7)
    assert squarified_forest(roots, children, flat, 800, 600) == squarified_forest(
        list(reversed(roots)), shuffled, flat, 800, 600
    )


def test_a_node_reached_twice_is_placed_once():
    """Not a forest (two parents): the first keeps it; no tile twice, no endless walk."""
    tiles = squarified_forest(["/r"], {"/r": ["/a", "/b"], "/a": ["/c"], "/b": ["/c"]},
                              {"/r": 1, "/a": 1, "/b": 1, "/c": 1}, 100, 100)  # fmt: skip
    assert sorted(t.path for t in tiles) == ["/a", "/b", "/c", "/r"]
    loop = squarified_forest(["/x"], {"/x": ["/y"], "/y": ["/x"]}, {"/x": 1, "/y": 1}, 10, 10)
    assert [t.path for t in loop] == ["/x", "/y"]


def test_tile_at_finds_the_deepest_tile():
    roots, children, own = random_forest(8, n=150)
    tiles = squarified_forest(roots, children, own, 900, 600)
    rng = random.Random(0)
    for _ in range(300):
        x, y = rng.uniform(0, 900), rng.uniform(0, 600)
        i = tile_at(tiles, x, y)
        containing = [j for j, t in enumerate(tiles) if t.contains(x, y)]
        assert i == (max(containing, key=lambda j: tiles[j].depth) if containing else -1)
    assert tile_at(tiles, -5, 10) == -1


def test_real_chains_from_a_scan(make, tmp_path):
    """The forest the window has (bases, overlays, a missing base's placeholder), sized by what
    each file holds on disk."""
    make.create("base.qcow2", "qcow2", "64M")
    make.overlay("a.qcow2", "base.qcow2")
    make.overlay("b.qcow2", "a.qcow2")
    make.overlay("lost.qcow2", "gone.qcow2")
    make.create("lone.raw", "raw", "1M")
    graph = ChainGraph(scan_directory(str(tmp_path)))
    forest = build_forest(graph)
    sizes = {n: info.actual_size for n, (_, info) in graph.nodes.items() if info is not None}
    tiles = {t.path: t for t in squarified_forest(forest.roots, forest.children, sizes, 400, 300)}
    assert set(tiles) == set(graph.nodes)
    p = lambda name: str(tmp_path / name)  # noqa: E731
    assert inside(tiles[p("b.qcow2")], tiles[p("a.qcow2")])
    assert inside(tiles[p("a.qcow2")], tiles[p("base.qcow2")])
    assert inside(tiles[p("lost.qcow2")], tiles[p("gone.qcow2")])  # under its missing base
    assert tiles[p("base.qcow2")].total == sum(
        sizes[p(n)] for n in ("base.qcow2", "a.qcow2", "b.qcow2")
    )
