"""Where every node of the chain graph goes: bases on the left, overlays fanning out to the right.

Computed off the GUI thread (the window only creates items at the positions given here), and free
of Qt so it is tested without a display.

Each image has at most one backing file, so the graph is a forest once every loop is cut at one
edge: :func:`build_forest` makes that forest (the chains list shows the same tree; depth is a
node's topological generation counted from the bases), and
:func:`compute_layout` places each tree with a tidy-tree pass (leaves on consecutive rows, a parent
centred on its children, one column per depth) and packs the trees into columns so that 10,000
images make a roughly 16:10 picture instead of a strip 10,000 rows tall.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

from imagegui.core.chains.graph import ChainGraph

#: Card size and spacing in scene units (pixels at 100 % zoom).
NODE_W = 230.0
NODE_H = 66.0
#: Gaps are kept small: at Fit every card and its name must still be legible at 100 images in a
#: 1440x900 window, so screen area goes to cards, not to space between them.
COL_GAP = 44.0
ROW_GAP = 10.0
COMPONENT_GAP_X = 64.0
COMPONENT_GAP_Y = 26.0
#: Width / height the packed picture aims for.
ASPECT = 1.6


@dataclass
class Forest:
    """The backing graph as trees: a root is a base (or a placeholder for a missing one); the
    children of a node are the overlays that back onto it. A loop is cut at one edge, kept in
    ``loop_edges`` so it can still be drawn (in red)."""

    roots: list[str] = field(default_factory=list)
    children: dict[str, list[str]] = field(default_factory=dict)
    parent: dict[str, str] = field(default_factory=dict)
    depth: dict[str, int] = field(default_factory=dict)
    #: (overlay, backing) edges not in the tree: each closes a loop.
    loop_edges: list[tuple[str, str]] = field(default_factory=list)

    def kids(self, node: str) -> list[str]:
        return self.children.get(node, [])

    def ancestors(self, node: str) -> list[str]:
        """Tree parents of ``node``, nearest first (for expanding the list down to it)."""
        out = []
        while node in self.parent:
            node = self.parent[node]
            out.append(node)
        return out


def build_forest(graph: ChainGraph) -> Forest:
    """The chain graph seen from the bases up, each loop cut at the edge that closes it (the one
    leaving the loop's first member). A node's depth is its topological generation in that
    graph, its tree parent its backing file, its children its overlays (sorted)."""
    forest = Forest()
    forest.loop_edges = [(loop[0], graph.backing_of(loop[0]) or loop[0]) for loop in graph.loops]
    cut = set(forest.loop_edges)
    # Every image has at most one backing file, so with the loops cut each node has at most one
    # tree parent and its topological generation is its distance from its tree's root: a walk
    # down from the roots gives it, without networkx's generic (and 3x slower) generations.
    # The DiGraph's adjacency is read directly (the order ``g.edges`` gives, without a Python
    # call per edge: 100,000 images make as many edges).
    overlays: dict[str, list[str]] = {}
    backed: set[str] = set()
    for overlay, backings in graph.g._adj.items():  # type: ignore[attr-defined]
        for backing in backings:
            if cut and (overlay, backing) in cut:
                continue
            kids = overlays.get(backing)
            if kids is None:
                overlays[backing] = [overlay]
            else:
                kids.append(overlay)
            backed.add(overlay)
    # Nothing below them: bases, placeholders, a loop's first member.
    forest.roots = sorted(graph.g._node.keys() - backed)  # type: ignore[attr-defined]
    _descend(forest, forest.roots, overlays)
    return forest


def _descend(forest: Forest, level: list[str], overlays: dict[str, list[str]]) -> None:
    """Fills ``forest``'s depth, children (sorted) and parent down from the roots ``level``,
    whose trees' nodes have their overlays in ``overlays`` (lists taken, sorted in place)."""
    children, parent, depth = forest.children, forest.parent, forest.depth
    d = 0
    while level:
        below: list[str] = []
        depth.update(dict.fromkeys(level, d))
        for node in level:
            kids = overlays.get(node)
            if kids is None:
                continue
            children[node] = kids
            if len(kids) == 1:  # most nodes of most chains
                parent[kids[0]] = node
                below.append(kids[0])
            else:
                kids.sort()
                parent.update(dict.fromkeys(kids, node))
                below += kids
        level = below
        d += 1


def update_forest(old: Forest, before: ChainGraph, graph: ChainGraph) -> Forest:
    """The forest of ``graph``, made from ``old`` (the forest of ``before``): only the trees
    holding a node that came, went, changed its backing file or its loop, or that such a node
    now backs onto, are walked again; every other tree is the old one, shared (never written
    into). Equal to ``build_forest(graph)`` for any two graphs; fast when ``graph`` was updated
    from ``before`` (``chains.incremental``: unchanged nodes keep their adjacency dicts, so most
    nodes are passed over by one identity check). At 100,000 images, after a rescan that made
    one new overlay: 33-50 ms against 170-330 ms for ``build_forest`` (measured beside a test
    run)."""
    new_succ = graph.g._succ  # type: ignore[attr-defined]
    old_succ = before.g._succ  # type: ignore[attr-defined]
    loop_edges = [(loop[0], graph.backing_of(loop[0]) or loop[0]) for loop in graph.loops]
    touched = {
        n
        for n, backings in new_succ.items()
        if backings is not old_succ.get(n)
        and (n not in old_succ or backings.keys() != old_succ[n].keys())
    }
    touched.update(old_succ.keys() - new_succ.keys())
    if loop_edges != old.loop_edges:
        touched.update(n for edge in (*old.loop_edges, *loop_edges) for n in edge)
    if not touched:
        return Forest(old.roots, old.children, old.parent, old.depth, loop_edges)
    # The old trees to walk again: those holding a touched node or what it now backs onto.
    parent = old.parent
    roots: set[str] = set()
    for node in touched:
        for start in (node, *new_succ.get(node, ())):
            if start in old.depth:
                while start in parent:
                    start = parent[start]
                roots.add(start)
    walked = set(touched)
    stack = list(roots)
    while stack:
        node = stack.pop()
        walked.add(node)
        stack.extend(old.children.get(node, ()))
    children, parents, depth = dict(old.children), dict(parent), dict(old.depth)
    for node in walked:  # the old trees walked again, and the nodes that went
        children.pop(node, None)
        parents.pop(node, None)
        depth.pop(node, None)
    forest = Forest(children=children, parent=parents, depth=depth, loop_edges=loop_edges)
    cut = set(loop_edges)
    redo = walked & new_succ.keys()
    # The walked trees' roots: nothing below them (with the loops cut), as in build_forest.
    new_roots = sorted(n for n in redo if not any((n, b) not in cut for b in new_succ[n]))
    forest.roots = sorted({*(r for r in old.roots if r not in roots), *new_roots})
    pred = graph.g._pred  # type: ignore[attr-defined]
    overlays = {n: kids for n in redo if (kids := [k for k in pred[n] if (k, n) not in cut])}
    _descend(forest, new_roots, overlays)
    return forest


#: The parent id of top-level rows in :class:`TreeTables`.
TOP = -1


@dataclass
class TreeTables:
    """The forest flattened for a tree model: a node's id is its index in ``nodes``; ``kids``
    lists the visible children of each id (``TOP`` for the top level), ``parent`` and ``row``
    answer ``QAbstractItemModel.parent()`` in O(1). Built on the scan's worker for the whole
    forest (50 ms at 10,000 images), and again by the model only when a filter hides rows."""

    nodes: list[str]
    ids: dict[str, int]
    kids: dict[int, list[int]] = field(default_factory=dict)
    parent: dict[int, int] = field(default_factory=dict)
    row: dict[int, int] = field(default_factory=dict)


def tree_tables(
    forest: Forest, nodes: list[str], ids: dict[str, int], visible: set[str] | None = None
) -> TreeTables:
    tables = TreeTables(nodes, ids, {TOP: []})
    kids_of, parent_of, row_of = tables.kids, tables.parent, tables.row
    if visible is None:  # the whole forest: a tree's rows are its children, no walk needed
        _all_rows(tables, forest)
        return tables
    stack = [(TOP, r) for r in reversed(forest.roots)]
    while stack:
        parent, node = stack.pop()
        if visible is not None and node not in visible:
            continue
        nid = ids[node]
        siblings = kids_of.setdefault(parent, [])
        row_of[nid] = len(siblings)
        siblings.append(nid)
        parent_of[nid] = parent
        children = forest.children.get(node)
        if children:
            stack.extend((nid, k) for k in reversed(children))
    return tables


def _all_rows(tables: TreeTables, forest: Forest) -> None:
    ids, kids_of, parent_of, row_of = tables.ids, tables.kids, tables.parent, tables.row
    _rows(tables, TOP, [ids[r] for r in forest.roots])
    for node, children in forest.children.items():
        if len(children) == 1:  # most rows of most trees: no list made but the kids'
            kid = ids[children[0]]
            pid = ids[node]
            kids_of[pid] = [kid]
            parent_of[kid] = pid
            row_of[kid] = 0
        else:
            _rows(tables, ids[node], [ids[k] for k in children])


def _rows(tables: TreeTables, parent: int, kids: list[int]) -> None:
    tables.kids[parent] = kids
    tables.parent.update(dict.fromkeys(kids, parent))
    tables.row.update(zip(kids, range(len(kids)), strict=True))


@dataclass
class Component:
    """One tree of the forest, placed: its nodes in pre-order and its bounding box."""

    root: str
    nodes: list[str]
    x: float = 0.0
    y: float = 0.0
    w: float = 0.0
    h: float = 0.0

    @property
    def has_edges(self) -> bool:
        return len(self.nodes) > 1


@dataclass
class Layout:
    forest: Forest
    #: Top-left corner of each node's card.
    positions: dict[str, tuple[float, float]] = field(default_factory=dict)
    components: list[Component] = field(default_factory=list)
    #: The component each node belongs to (index into ``components``).
    component_of: dict[str, int] = field(default_factory=dict)
    width: float = 0.0
    height: float = 0.0

    def edges(self, comp: Component) -> list[tuple[str, str]]:
        """(overlay, backing) tree edges of one component."""
        parent = self.forest.parent
        return [(n, parent[n]) for n in comp.nodes if n in parent]


def compute_layout(
    graph: ChainGraph,
    forest: Forest | None = None,
    aspect: float = ASPECT,
    roots: list[str] | None = None,
) -> Layout:
    """Places every node; ``aspect`` is the width / height the packing aims for (the window
    passes its graph area's, so the whole graph fits it well). With ``roots``, only those trees
    are placed (the "Problems only" view packs the troubled chains without holes).

    At 100,000 images this runs on the scan's worker before anything is drawn, so each tree is
    placed into a list of offsets (a straight chain without a dict per node), the packing
    bisects prefix sums, and the positions are filled a tree at a time."""
    forest = forest or build_forest(graph)
    layout = Layout(forest)
    step_x = NODE_W + COL_GAP
    step_y = NODE_H + ROW_GAP
    offsets: list[list[tuple[float, float]]] = []
    for root in forest.roots if roots is None else roots:
        nodes, local, rows, max_depth = _place_tree(forest, root)
        comp = Component(root, nodes)
        comp.w = (max_depth + 1) * step_x - COL_GAP
        comp.h = rows * step_y - ROW_GAP
        layout.components.append(comp)
        offsets.append(local)
    _pack(layout.components, aspect)
    positions, component_of = layout.positions, layout.component_of
    width = height = 0.0
    # The coordinates take a few hundred values (columns and rows of one grid): one float
    # object each, not two per node (~5 MB at 100,000 images).
    xs: dict[float, float] = {}
    ys: dict[float, float] = {}
    for i, comp in enumerate(layout.components):
        cx, cy = comp.x, comp.y
        positions.update(
            zip(
                comp.nodes,
                [
                    (xs.setdefault(x, x), ys.setdefault(y, y))
                    for x, y in ((cx + lx, cy + ly) for lx, ly in offsets[i])
                ],
                strict=True,
            )
        )
        component_of.update(dict.fromkeys(comp.nodes, i))
        width = max(width, cx + comp.w)
        height = max(height, cy + comp.h)
    layout.width, layout.height = width, height
    return layout


#: A straight chain's card offsets, by its length (each list made once; values never change, so
#: two workers filling it at once store equal lists).
_CHAINS: dict[int, list[tuple[float, float]]] = {}


def _chain_offsets(length: int) -> list[tuple[float, float]]:
    offsets = _CHAINS.get(length)
    if offsets is None:
        step_x = NODE_W + COL_GAP
        offsets = _CHAINS[length] = [(d * step_x, 0.0) for d in range(length)]
    return offsets


def _place_tree(forest: Forest, root: str) -> tuple[list[str], list[tuple[float, float]], int, int]:
    """Tidy tree: leaves on consecutive rows in pre-order (so overlays run top to bottom in the
    list's order), parents centred; iterative (chains can be deep). Returns the nodes in
    pre-order, each one's offset from the tree's corner, the rows and the deepest level."""
    children = forest.children
    # A straight chain (each node one overlay at most, the usual tree): one row.
    order = [root]
    kids = children.get(root)
    while kids is not None and len(kids) == 1:
        order.append(kids[0])
        kids = children.get(kids[0])
    if kids is None:
        return order, _chain_offsets(len(order)), 1, len(order) - 1
    step_x = NODE_W + COL_GAP
    step_y = NODE_H + ROW_GAP
    order = []
    stack = [root]
    y: dict[str, float] = {}
    row = 0
    while stack:
        node = stack.pop()
        order.append(node)
        kids = children.get(node)
        if kids:
            stack.extend(reversed(kids))
        else:
            y[node] = row * step_y
            row += 1
    depth = forest.depth
    base_depth = depth[root]
    max_depth = 0
    for node in reversed(order):  # children before parents
        kids = children.get(node)
        if kids:
            y[node] = (y[kids[0]] + y[kids[-1]]) / 2
        max_depth = max(max_depth, depth[node] - base_depth)
    local = [((depth[node] - base_depth) * step_x, y[node]) for node in order]
    return order, local, row, max_depth


def _pack(components: list[Component], aspect: float) -> None:
    """Trees top to bottom in columns, columns left to right. The column height is chosen among
    a few dozen candidates around a perfect packing's for the picture that fits a view of width /
    height ``aspect`` at the largest scale (a greedy cut at the square root of the area leaves a
    half-empty last column when the trees are wide and few)."""
    if not components:
        return
    aspect = max(0.2, min(5.0, aspect))
    heights = [c.h for c in components]
    widths = [c.w for c in components]
    tallest = max(heights)
    # tops[i]: where tree i would start in one endless column (each tree and its gap above it).
    tops = [0.0]
    for h in heights:
        tops.append(tops[-1] + h + COMPONENT_GAP_Y)
    total = tops[-1]
    area = sum((c.w + COMPONENT_GAP_X) * (c.h + COMPONENT_GAP_Y) for c in components)
    ideal = math.sqrt(area / aspect)  # the column height of a perfect packing
    best: tuple[float, float] | None = None
    limit = max(tallest, ideal / 2)
    while True:
        w, h = _columns(tops, widths, limit)
        scale = min(aspect / max(w, 1.0), 1.0 / max(h, 1.0))
        if best is None or scale > best[0]:
            best = (scale, limit)
        if limit >= min(total, ideal * 2):
            break
        limit = min(total, ideal * 2, limit * 1.04 + 1.0)
    _columns(tops, widths, best[1], components)


def _columns(
    tops: list[float],
    widths: list[float],
    limit: float,
    place: list[Component] | None = None,
) -> tuple[float, float]:
    """Packs into columns at most ``limit`` tall (a taller tree gets a column of its own);
    returns the picture's width and height, and places the trees of ``place``. A column ends
    before the first tree whose bottom would pass ``limit``: one bisection of ``tops`` per
    column, not a step per tree (the tops are sums of whole numbers, so exact)."""
    gap = COMPONENT_GAP_Y
    n = len(widths)
    x = 0.0
    column_w = 0.0
    height = 0.0
    start = 0
    while start < n:
        if start:
            x += column_w + COMPONENT_GAP_X
        top = tops[start]
        # The first tree after ``start`` whose bottom passes the limit starts the next column.
        end = (
            bisect.bisect_right(tops, limit, lo=start + 2, hi=n + 1, key=lambda t: t - top - gap)
            - 1
        )
        column_w = max(widths[start:end])
        height = max(height, tops[end] - top - gap)
        if place is not None:
            for i in range(start, end):
                comp = place[i]
                comp.x, comp.y = x, tops[i] - top
        start = end
    return x + column_w, height
