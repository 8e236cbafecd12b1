"""Where the disk space goes, as a picture: a squarified treemap of images nested under their bases.

Each image is a rectangle whose area is its own bytes on disk plus those of every overlay that
backs onto it (its subtree in the backing forest), so a base with many fat clones is a big block
and the clones are blocks inside it. Siblings are laid out with the squarified algorithm of Bruls,
Huizing and van Wijk (2000): rows along the shorter side, a row grown while that makes its worst
aspect ratio better, so the rectangles stay close to squares and can carry a label.

A parent keeps a band at its top (``header``: room for its name) and a margin round its
children (``pad``), so the nesting is visible; both shrink for small rectangles. Inside that, the
children and the parent's own bytes share the area in proportion to their sizes (the own part is
the parent's fill left showing). Sizes of zero give rectangles of zero width and height at their
parent's inner corner: present, never drawn, never a division by zero.

Pure and deterministic (siblings ordered by size, then path), and fast: one pass over the forest,
no recursion (10,000 images in a few tens of milliseconds). The records come in pre-order, so a
painter drawing them in order draws every parent below its children, and ``end`` lets a hit test
skip a whole subtree (:func:`tile_at`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

#: Room for a parent's name above its children, and the margin round them (layout units: the
#: window lays out in pixels).
HEADER = 16.0
PAD = 3.0
#: A parent's band and margin never take more than these fractions of its height / width.
_HEADER_FRACTION = 0.3
_PAD_FRACTION = 0.08


@dataclass(slots=True)
class Tile:
    """One image's rectangle: ``x``, ``y``, ``w``, ``h`` in layout units; ``depth`` 0 for a base
    (a root of the forest). ``own`` is the image's own bytes, ``total`` those of its subtree
    (what the area stands for); ``end`` is the index just past this tile's subtree in the list
    :func:`squarified_forest` returns, ``parent`` its parent's index (-1 for a root)."""

    path: str
    x: float
    y: float
    w: float
    h: float
    depth: int
    own: int
    total: int
    end: int
    parent: int

    def contains(self, px: float, py: float) -> bool:
        return self.x <= px < self.x + self.w and self.y <= py < self.y + self.h


def squarify(
    values: Sequence[float], x: float, y: float, w: float, h: float
) -> list[tuple[float, float, float, float]]:
    """Rectangles for ``values`` (sorted largest first, summing to ``w * h``) tiling the
    rectangle ``(x, y, w, h)``, in the order given. A value of zero gets an empty rectangle at
    the corner left free."""
    out: list[tuple[float, float, float, float]] = []
    n = len(values)
    i = 0
    while i < n:
        first = values[i]
        if first <= 0 or w <= 0 or h <= 0:  # sorted: only zeroes (or no room) are left
            out.extend((x, y, 0.0, 0.0) for _ in range(n - i))
            break
        short = w if w < h else h
        short2 = short * short
        # Sorted largest first: the row's largest is its first, its smallest the last added.
        row_sum, row_max = first, first
        a, b = short2 / first, first / short2
        worst = a if a > b else b
        j = i + 1
        while j < n:
            v = values[j]
            if v <= 0:
                break
            s = row_sum + v
            s2 = s * s
            a, b = short2 * row_max / s2, s2 / (short2 * v)
            ratio = a if a > b else b
            if ratio > worst:
                break
            row_sum, worst = s, ratio
            j += 1
        thick = row_sum / short
        last = j >= n or values[j] <= 0
        if w >= h:  # a column at the left, as tall as the rectangle
            if last:
                thick = w  # the remainder: no sliver lost to rounding
            yy = y
            for k in range(i, j):
                hh = values[k] / thick
                out.append((x, yy, thick, hh))
                yy += hh
            x += thick
            w -= thick
        else:  # a row at the top, as wide as the rectangle
            if last:
                thick = h
            xx = x
            for k in range(i, j):
                ww = values[k] / thick
                out.append((xx, y, ww, thick))
                xx += ww
            y += thick
            h -= thick
        i = j
    return out


def subtree_totals(
    roots: Iterable[str], children: Mapping[str, Sequence[str]], own: Mapping[str, int]
) -> tuple[dict[str, int], dict[str, int], dict[str, list[str]]]:
    """Each node's bytes with its whole subtree, its subtree's node count (itself included), and
    the children each node keeps: a node reached twice (the input is not a forest) stays under
    the first parent that reached it. Iterative: no recursion limit for a chain of 10,000."""
    order: list[str] = []
    kept: dict[str, list[str]] = {}
    seen: set[str] = set()
    for root in roots:
        if root in seen:
            continue
        seen.add(root)
        stack = [root]
        while stack:
            node = stack.pop()
            order.append(node)
            kids = [k for k in children.get(node, ()) if k not in seen]
            seen.update(kids)
            kept[node] = kids
            stack.extend(kids)
    total: dict[str, int] = {}
    count: dict[str, int] = {}
    for node in reversed(order):  # every node after its descendants
        t, c = max(0, own.get(node, 0)), 1
        for k in kept[node]:
            t += total[k]
            c += count[k]
        total[node], count[node] = t, c
    return total, count, kept


def squarified_forest(
    roots: Sequence[str],
    children: Mapping[str, Sequence[str]],
    own: Mapping[str, int],
    width: float,
    height: float,
    *,
    header: float = HEADER,
    pad: float = PAD,
) -> list[Tile]:
    """The treemap of the forest given by ``roots`` and ``children`` (overlays of each node) in a
    ``width`` x ``height`` rectangle at the origin, each node's area its ``own`` bytes (missing:
    0) plus its subtree's. One tile per node reachable from ``roots``, in pre-order."""
    total, count, kept = subtree_totals(roots, children, own)
    tiles: list[Tile] = []
    # (node, x, y, w, h, depth, parent index); popped in pre-order.
    stack: list[tuple[str, float, float, float, float, int, int]] = []

    def key(n: str) -> tuple[int, str]:
        return (-total[n], n)  # largest first (squarify wants it), ties by path

    def place(
        nodes: Sequence[str], extra: int, x: float, y: float, w: float, h: float, d: int, p: int
    ) -> None:
        """Pushes ``nodes`` laid out in the rectangle, sharing it with ``extra`` bytes of their
        parent's own (a part no tile is made for)."""
        if len(nodes) == 1:  # a chain's next layer: the one overlay and the parent's own part
            node = nodes[0]
            v, e = total[node], extra
            if v <= 0 or w <= 0 or h <= 0:
                stack.append((node, x, y, 0.0, 0.0, d, p))
            elif e <= 0:
                stack.append((node, x, y, w, h, d, p))
            elif w >= h:  # side by side, the larger on the left (as squarify would)
                cw = w * v / (v + e)
                stack.append((node, x if v >= e else x + w - cw, y, cw, h, d, p))
            else:
                ch = h * v / (v + e)
                stack.append((node, x, y if v >= e else y + h - ch, w, ch, d, p))
            return
        items = sorted(nodes, key=key)
        if not items:
            return
        weights = [total[n] for n in items]
        whole = sum(weights) + max(0, extra)
        if whole <= 0 or w <= 0 or h <= 0:
            rects = [(x, y, 0.0, 0.0)] * len(items)
        else:
            scale = w * h / whole
            values = [v * scale for v in weights]
            if extra > 0:  # the parent's own part: laid out in its place by size, then dropped
                own_area = extra * scale
                at = 0
                while at < len(values) and values[at] >= own_area:
                    at += 1
                values.insert(at, own_area)
                rects = squarify(values, x, y, w, h)
                del rects[at]
            else:
                rects = squarify(values, x, y, w, h)
        for node, rect in zip(reversed(items), reversed(rects), strict=True):
            stack.append((node, *rect, d, p))

    under = {k for kids in kept.values() for k in kids}
    tops = [r for r in dict.fromkeys(roots) if r not in under]
    place(tops, 0, 0.0, 0.0, width, height, 0, -1)
    get_own = own.get
    while stack:
        node, x, y, w, h, depth, parent = stack.pop()
        index = len(tiles)
        mine = get_own(node, 0)
        tiles.append(Tile(node, x, y, w, h, depth, mine, total[node], index + count[node], parent))
        kids = kept[node]
        if not kids:
            continue
        band = h * _HEADER_FRACTION
        if band > header:
            band = header
        margin = pad
        if w * _PAD_FRACTION < margin:
            margin = w * _PAD_FRACTION
        if h * _PAD_FRACTION < margin:
            margin = h * _PAD_FRACTION
        iw, ih = w - 2 * margin, h - band - margin
        if iw <= 0 or ih <= 0:
            iw = ih = 0.0
        place(kids, mine, x + margin, y + band, iw, ih, depth + 1, index)
    return tiles


def tile_at(tiles: Sequence[Tile], x: float, y: float) -> int:
    """The index of the deepest tile containing ``(x, y)``, or -1: descends into a tile that
    contains the point and skips the subtree of one that does not."""
    found = -1
    i, n = 0, len(tiles)
    while i < n:
        t = tiles[i]
        if t.contains(x, y):
            found = i
            i += 1
        else:
            i = t.end
    return found
