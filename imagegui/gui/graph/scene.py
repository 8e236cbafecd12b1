"""The chain graph as a QGraphicsScene that stays smooth at 100,000 images.

Drawing cost and item count are what decide the design (Qt's "chip" example, adapted for Python):

- No item per card. Each tree is a handful of plain C++ ``QGraphicsPathItem``\\ s: its edges, its
  arrow heads, the edges that close a loop, and its card boxes, one path per state (made on the
  scan's worker, ``snapshot.ComponentPaths``). Qt paints them in C++ without calling Python, so
  zoomed out 100,000 cards cost a few thousand C++ paths, and no Python object per card exists
  for the garbage collector to walk. The box paths are only filled (an outline of a path costs
  far more than its fill); the card layer draws the borders, from a readable zoom up.
- Everything else on the cards - name, sizes, state icon, badges - is painted by one
  :class:`CardLayer` per tree, which paints only the cards inside the exposed rectangle and only
  from a readable zoom level up (the view hides the layers below it: ``details_visible``).
- Items are created in batches of a few milliseconds from a zero-timer, so showing 100,000
  images never freezes the window; ``built`` is emitted when the last batch is in.
- Past ``EAGER_TREES`` trees only the trees in and near the view get items (``region``, asked
  of the view: nothing while the zoomed-out overview stands for the cards); others get theirs
  when the view scrolls or zooms to them (``view_moved``). 10,000 trees' items took 0.5 s of
  the window's start and tens of MB that a first, zoomed-out look never used.
- Broken and unusable cards get one marker each, of a fixed size on screen, all painted by one
  item in one call (:class:`~imagegui.gui.graph.cards.MarkerLayer`), shown only zoomed out.
- A rescan of the same directory (``apply_snapshot``) keeps the items of every tree whose
  signature (``snapshot.tree_signature``) did not change, moved to where the new layout puts it,
  and builds only the others; the selection stays, and the view keeps its zoom and scroll.

- The list's filter dims the cards it does not match with a veil: a few path items, each covering
  the unmatched cards of one region of the scene with the background's colour (what a box at
  ``DIMMED`` opacity shows), under the card layers. A filter keystroke redraws only the regions
  whose cards changed, worked out on a worker past ``SYNC_CARDS`` cards (``veil_job``), and
  never touches the trees' own items.

Clicks find their card from the layout (the tree under the point, then its card), not from items.
"Problems only" shows the snapshot's second layout, made on the scan's worker: only the chains
with a problem or an unusable image, packed without holes.
"""

from __future__ import annotations

import bisect
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPathItem, QGraphicsRectItem, QGraphicsScene
from shiboken6 import delete

from imagegui.core.chains.layout import NODE_H, NODE_W, Layout
from imagegui.core.chains.nodestate import State
from imagegui.core.jobs import CancelledError, CancelToken, Job
from imagegui.gui import theme
from imagegui.gui.graph.cards import CardLayer, MarkerLayer, box_style
from imagegui.gui.snapshot import ComponentPaths, Markers, Snapshot
from imagegui.gui.workers import TaskSlot

log = logging.getLogger(__name__)

#: Milliseconds of item creation per event-loop turn.
BATCH_MS = 8.0
#: Scene space round the cards (the loop arrows and the rings reach ~30 outside).
MARGIN = 40.0
#: Opacity of a card the filter does not match.
DIMMED = 0.22
#: ``QGraphicsItem.data`` key on a tree's items: the tree's root node.
ROOT_KEY = 0
#: Cards in a veil region, about: a filter keystroke redraws the regions whose cards changed.
VEIL_CARDS = 1500
#: Up to this many cards the veils are worked out at once (about 20 ms at 10,000), beyond it on
#: a worker (a worker's Python beside a repaint makes each of the repaint's Python calls wait for
#: the GIL, so it is kept for where it pays).
SYNC_CARDS = 12000
#: Up to this many trees every tree gets its items at once (~80 us a tree); past it only
#: those the view needs (``ChainScene.region``).
EAGER_TREES = 2000
#: Stacking under ``cards_root``: boxes and edges, then the veils, then the card layers.
VEIL_Z = 1.0
LAYER_Z = 2.0


@dataclass
class VeilGrid:
    """The regions of one layout the veils are cut into: each card's region by its position."""

    layout: Layout
    side: int
    cell_w: float
    cell_h: float
    #: The cards of each region (by region number), in layout order.
    cells: dict[int, list[str]] = field(default_factory=dict)

    def cell(self, x: float, y: float) -> int:
        i = min(self.side - 1, int(x / self.cell_w))
        j = min(self.side - 1, int(y / self.cell_h))
        return j * self.side + i


def veil_grid(layout: Layout) -> VeilGrid:
    side = max(1, math.ceil(math.sqrt(len(layout.positions) / VEIL_CARDS)))
    grid = VeilGrid(
        layout, side, max(1.0, layout.width / side + 1), max(1.0, layout.height / side + 1)
    )
    cells = grid.cells
    for node, (x, y) in layout.positions.items():
        cells.setdefault(grid.cell(x, y), []).append(node)
    return grid


@dataclass
class Veils:
    """The veil paths of the regions that changed, for ``matches`` (``veil_job``)."""

    grid: VeilGrid
    matches: set[str] | None
    paths: dict[int, QPainterPath]
    #: The trees (by index) with a matching card; None without a filter.
    trees: set[int] | None


def make_veils(
    layout: Layout,
    grid: VeilGrid | None,
    shown: set[str] | None,
    matches: set[str] | None,
    cancel: CancelToken | None = None,
) -> Veils:
    """The veils over the cards ``matches`` leaves out, redrawn only in the regions where a card
    is matched by one of ``shown`` (what is drawn now; None: nothing) and ``matches`` but not by
    the other. Touches no item (``QPainterPath`` is reentrant): a worker may run it."""
    if grid is None or grid.layout is not layout:
        grid, shown = veil_grid(layout), None
    if matches is None:
        return Veils(grid, None, {c: QPainterPath() for c in grid.cells}, None)
    pos = layout.positions
    if shown is None:
        changed: Iterable[int] = grid.cells
    else:
        cells = set()
        for node in shown.symmetric_difference(matches):
            at = pos.get(node)
            if at is not None:
                cells.add(grid.cell(*at))
        changed = cells
    paths = {}
    for cell in changed:
        if cancel is not None and cancel.cancelled:
            raise CancelledError("")
        path = QPainterPath()
        for node in grid.cells.get(cell, ()):
            if node not in matches:
                x, y = pos[node]
                path.addRect(x, y, NODE_W, NODE_H)
        paths[cell] = path
    of = layout.component_of
    trees = {of[node] for node in matches if node in of}
    return Veils(grid, matches, paths, trees)


class TreeItems:
    """The items that draw one tree, and where its card layer was made (``origin``: the tree's
    top-left corner then), so a rescan that moves the tree only moves the items (its paths are
    in the tree's own coordinates, placed at the tree's corner)."""

    __slots__ = ("root", "origin", "paths", "boxes", "layer")

    def __init__(self, root: str, origin: tuple[float, float]):
        self.root = root
        self.origin = origin
        #: ("edges" | "arrows" | "loops", item)
        self.paths: list[tuple[str, QGraphicsPathItem]] = []
        #: (state, dimmed) -> the item drawing those boxes.
        self.boxes: dict[tuple[State, bool], QGraphicsPathItem] = {}
        self.layer: CardLayer | None = None

    def items(self) -> Iterable:
        yield from (item for _, item in self.paths)
        yield from self.boxes.values()
        if self.layer is not None:
            yield self.layer


class ChainScene(QGraphicsScene):
    #: All items of the current snapshot are in the scene.
    built = Signal()
    #: The list's filter changed what ``matches`` holds (the zoomed-out overview redraws).
    matchesChanged = Signal()
    #: The current image changed (the zoomed-out overview rings its tree's block).
    selectedChanged = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.snapshot: Snapshot | None = None
        #: The layout shown: the snapshot's, or its problems-only one.
        self.layout: Layout | None = None
        self.paths: list[ComponentPaths] = []
        #: Only the chains with a problem or an unusable image are shown.
        self.problems_only = False
        self.markers: MarkerLayer | None = None
        self.markers_visible = False
        #: The parent of every tree's items (boxes, card layers, edges): hidden as one subtree
        #: while a zoomed-out overview stands for them (``set_cards_visible``), so a zoomed-out
        #: repaint visits one item instead of a few per tree.
        self.cards_root: QGraphicsRectItem | None = None
        self.cards_visible = True
        self.focus_visible = False
        self._focus_ring = None
        self._columns: dict[float, list[tuple[float, str]]] | None = None
        #: The items of each tree shown, by its index in ``layout.components``.
        self.trees: dict[int, TreeItems] = {}
        #: Each tree's card layer, by the same index.
        self.layers: dict[int, CardLayer] = {}
        self.selected: str | None = None
        #: Whether the card layers paint (the view turns them off below a readable zoom, so a
        #: zoomed-out repaint makes no Python call per tree).
        self.details_visible = True
        #: While the list is filtered: the matching nodes; the other cards are dimmed (what
        #: is drawn: a filter worked out on a worker lands here when its veils are in).
        self.matches: set[str] | None = None
        #: The trees (by index in ``layout.components``) with a matching card, with ``matches``.
        self.matched_trees: set[int] | None = None
        #: The filter's matches asked for last (``set_matches``), and the veils' regions.
        self._wanted: set[str] | None = None
        self._grid: VeilGrid | None = None
        self._veils: dict[int, QGraphicsPathItem] = {}
        #: A filter's veils are being worked out.
        self.dimming = False
        self._veil_slot = TaskSlot(self, on_done=self._show_veils, on_failed=self._veils_failed)
        self._ring = None
        #: Cards selected besides the current one (Ctrl+click, or several rows of the list):
        #: what Move to Trash takes with it; one path item rings them all.
        self.also_selected: set[str] = set()
        self._also_ring = None
        self.building = False
        #: Trees to build (by index), and kept trees whose items are to be moved.
        self._queue: list[int] = []
        self._moves: list[int] = []
        #: Past ``EAGER_TREES`` trees: the scene rect whose trees need items (the view's
        #: ``wanted_region``; an empty rect: none). None (no view): every tree gets them.
        self.region: Callable[[], QRectF] | None = None
        #: Only the trees in ``region`` are built (``EAGER_TREES``).
        self.lazy = False
        self._moved_timer = QTimer(self)
        self._moved_timer.setSingleShot(True)
        self._moved_timer.setInterval(0)
        self._moved_timer.timeout.connect(self._build_in_view)
        #: Trees by column for hit-testing: sorted column x's, and per column (y, index) sorted.
        self._hit: tuple[list[float], list[list[tuple[float, int]]], list[float]] | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._on_batch)
        # No spatial index: the items never move while shown, and keeping a BSP tree up to date
        # while thousands of items arrive costs more than Qt's linear C++ pass over them.
        self.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.NoIndex)
        self._no_pen = QPen(Qt.PenStyle.NoPen)
        self._set_colours()
        theme.watcher().changed.connect(self._on_theme_changed)

    # -- colours (from the palette: gui/theme.py)

    def _set_colours(self) -> None:
        t = theme.current()
        self.setBackgroundBrush(t.scene_bg)
        self._edge_pen = QPen(t.edge, 1.6)
        self._edge_pen.setCosmetic(False)
        self._loop_pen = QPen(t.loop, 2.0, Qt.PenStyle.DashLine)
        self._arrow_brush = QBrush(t.edge)

    @staticmethod
    def _ring_pen(focus: bool = False) -> QPen:
        """The selection ring, or (``focus``) the dashed keyboard-focus ring round it."""
        pen = QPen(
            theme.current().selection,
            2.0 if focus else 3.0,
            Qt.PenStyle.DashLine if focus else Qt.PenStyle.SolidLine,
        )
        pen.setCosmetic(True)  # as thick zoomed out as zoomed in
        return pen

    def _style_path(self, kind: str, item: QGraphicsPathItem) -> None:
        if kind == "edges":
            item.setPen(self._edge_pen)
        elif kind == "arrows":
            item.setPen(self._no_pen)
            item.setBrush(self._arrow_brush)
        else:
            item.setPen(self._loop_pen)

    def _on_theme_changed(self) -> None:
        """The palette changed: recolour what is drawn, without laying anything out again."""
        self._set_colours()
        for tree in self.trees.values():
            for kind, item in tree.paths:
                self._style_path(kind, item)
            for (state, _dim), box in tree.boxes.items():
                box.setBrush(box_style(state)[0])
        for ring in (self._ring, self._also_ring):
            if ring is not None:
                ring.setPen(self._ring_pen())
        if self._focus_ring is not None:
            self._focus_ring.setPen(self._ring_pen(focus=True))
        if self.markers is not None:
            self.markers.set_colours()
        for veil in self._veils.values():
            veil.setBrush(theme.current().scene_bg)
        self.update()

    # -- building

    def _chosen(self, snapshot: Snapshot) -> tuple[Layout, list[ComponentPaths], Markers | None]:
        """The layout to show (the problems-only one while that is on), its paths and markers."""
        if self.problems_only and snapshot.problem_layout is not None:
            assert snapshot.problem_paths is not None
            return snapshot.problem_layout, snapshot.problem_paths, snapshot.problem_markers
        return snapshot.layout, snapshot.paths, snapshot.markers

    def set_snapshot(self, snapshot: Snapshot) -> None:
        """Replaces everything; items arrive over the next event-loop turns."""
        self._timer.stop()
        self.clear()
        self.trees = {}
        self.layers = {}
        self.markers = None
        self._veils = {}
        self.cards_root = self.addRect(QRectF())
        self.cards_root.setFlag(QGraphicsItem.GraphicsItemFlag.ItemHasNoContents)
        self.cards_root.setVisible(self.cards_visible)
        self._ring = self._make_ring()
        self._also_ring = self._make_ring()
        self._focus_ring = self._make_ring(focus=True)
        self._install(snapshot)
        self._moves = []
        self._queue = list(range(len(self.layout.components)))  # type: ignore[union-attr]
        self._queue.reverse()
        self._start_building()

    def _install(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.layout, self.paths, _ = self._chosen(snapshot)
        self._columns = None
        self._hit = None
        layout = self.layout
        self.setSceneRect(
            QRectF(-MARGIN, -MARGIN, layout.width + 2 * MARGIN, layout.height + 2 * MARGIN)
        )
        if self.selected not in snapshot.graph.nodes:
            self.selected = None
        self._redo_veils()

    def apply_snapshot(self, snapshot: Snapshot) -> None:
        """A new scan of the directory shown: the trees whose signature is unchanged keep their
        items (moved where the new layout puts them), the others are replaced; the selection
        stays when its image is still there. Another directory gets ``set_snapshot``. Emits
        ``built`` once the changed trees are in (once, for the last of several applied in a
        row)."""
        old = self.snapshot
        if old is None or old.root != snapshot.root:
            self.set_snapshot(snapshot)
            return
        self._timer.stop()
        old_sigs, new_sigs = old.signatures, snapshot.signatures
        kept: dict[str, TreeItems] = {}
        for tree in self.trees.values():
            sig = old_sigs.get(tree.root)
            if sig is not None and sig == new_sigs.get(tree.root):
                kept[tree.root] = tree
            else:
                self._remove_tree(tree)
        if self.markers is not None:
            self._drop(self.markers)
            self.markers = None
        self._install(snapshot)
        assert self.layout is not None
        # While an earlier snapshot is still being built or applied, what is built so far is
        # kept the same way; the rest is built for this one.
        self.trees, self.layers, self._queue, self._moves = {}, {}, [], []
        for index, comp in enumerate(self.layout.components):
            tree = kept.pop(comp.root, None)
            if tree is None:
                self._queue.append(index)
                continue
            if tree.layer is not None:
                tree.layer.index = index
                self.layers[index] = tree.layer
            self.trees[index] = tree
            self._moves.append(index)  # its items are moved by the batches, a few ms each
        for tree in kept.values():  # a tree whose root is gone (merged into another one)
            self._remove_tree(tree)
        self._queue.reverse()
        self._moves.reverse()
        self._start_building()

    def _start_building(self) -> None:
        """Builds the queued trees: all of them, or past ``EAGER_TREES`` those the view needs,
        chosen at the first batch (after the window has fitted a new graph in the view)."""
        assert self.layout is not None
        self.lazy = self.region is not None and len(self.layout.components) > EAGER_TREES
        self.building = True
        if self.lazy:
            self._queue = []
            self._timer.start()
            return
        self._on_batch()

    @property
    def pending(self) -> bool:
        """Trees are waiting for their items (a build, or trees the view moved to)."""
        return bool(self._queue) or self._moved_timer.isActive() or self._timer.isActive()

    def view_moved(self) -> None:
        """The view scrolled, zoomed or was resized: the trees it now needs get their items
        (soon: a scroll's many steps ask once)."""
        if self.lazy:
            self._moved_timer.start()

    def _build_in_view(self) -> None:
        if not self.lazy or self.layout is None or self.region is None:
            return
        queued = set(self._queue)  # a few hundred at most: those of one view
        trees = self.trees
        wanted = [i for i in self.trees_in(self.region()) if i not in trees and i not in queued]
        if not wanted:
            return
        wanted.reverse()  # popped from the end: top-left first
        self._queue[:0] = wanted  # after what is queued already
        if not self._timer.isActive():
            self._timer.start()

    def trees_in(self, rect: QRectF) -> list[int]:
        """The trees (indices in ``layout.components``) whose box meets scene rect ``rect``,
        column by column, top to bottom."""
        layout = self.layout
        if layout is None or rect.isEmpty():
            return []
        xs, columns, widths = self._hits()
        left, right, top, bottom = rect.left(), rect.right(), rect.top(), rect.bottom()
        comps = layout.components
        found = []
        for k in range(bisect.bisect_right(xs, right)):
            if xs[k] + widths[k] < left:
                continue
            column = columns[k]
            j = max(0, bisect.bisect_right(column, (top, len(comps))) - 1)
            while j < len(column) and column[j][0] <= bottom:
                index = column[j][1]
                comp = comps[index]
                if comp.y + comp.h >= top and comp.x <= right and comp.x + comp.w >= left:
                    found.append(index)
                j += 1
        return found

    def _move_tree(self, index: int) -> None:
        """Puts a kept tree's items where the new layout has the tree."""
        assert self.layout is not None
        tree = self.trees[index]
        comp = self.layout.components[index]
        for item in tree.items():
            if item is tree.layer:
                item.setPos(*self._offset(tree, index))
            else:  # its paths are in the tree's own coordinates
                item.setPos(comp.x, comp.y)

    def _remove_tree(self, tree: TreeItems) -> None:
        for item in list(tree.items()):
            self._drop(item)

    def _drop(self, item: QGraphicsItem) -> None:
        """Takes ``item`` out of the scene and deletes it (out of the scene, nothing owns it)."""
        self.removeItem(item)
        delete(item)

    def _on_batch(self) -> None:
        snap = self.snapshot
        if snap is None:
            return
        if self.lazy and self.building and not self._queue:
            self._build_in_view()  # the first batch of a lazy build: what the view shows
        deadline = time.perf_counter() + BATCH_MS / 1000
        while self._moves:
            self._move_tree(self._moves.pop())
            if time.perf_counter() > deadline:
                self._timer.start()
                return
        while self._queue:
            self._add_component(self._queue.pop())
            if time.perf_counter() > deadline:
                break
        if self._queue:
            self._timer.start()
            return
        if not self.building:
            return  # trees the view scrolled to: nothing else changes
        self.building = False
        self._add_markers(snap)
        self._place_ring()
        self.built.emit()

    def _add_markers(self, snap: Snapshot) -> None:
        _, _, found = self._chosen(snap)
        if found is not None and found.count():
            self.markers = MarkerLayer(self.sceneRect(), found.breaks, found.above)
            self.markers.setVisible(self.markers_visible)
            self.addItem(self.markers)

    def _add_component(self, index: int) -> None:
        assert self.layout is not None
        comp = self.layout.components[index]
        paths = self.paths[index]
        tree = TreeItems(comp.root, (comp.x, comp.y))
        if comp.has_edges:
            tree.paths.append(("edges", self._add_path(paths.edges, self._edge_pen)))
            tree.paths.append(
                ("arrows", self._add_path(paths.arrows, self._no_pen, self._arrow_brush))
            )
        if paths.loops is not None:
            tree.paths.append(("loops", self._add_path(paths.loops, self._loop_pen)))
        self.trees[index] = tree
        for state, path in paths.boxes:
            tree.boxes[(state, False)] = self._add_box(path, state, False)
        for item in tree.items():  # paths in the tree's own coordinates (shared by alike trees)
            item.setPos(comp.x, comp.y)
        layer = CardLayer(self, index, QRectF(comp.x, comp.y, comp.w, comp.h))
        layer.setVisible(self.details_visible)
        layer.setZValue(LAYER_Z)  # above the filter's veils
        layer.setParentItem(self.cards_root)
        tree.layer = layer
        self.layers[index] = layer

    def _add_path(self, path: QPainterPath, pen: QPen, brush: QBrush | None = None):
        # addPath makes a plain C++ item: Qt calls its virtuals without asking PySide6 whether
        # Python overrides them (an item made from Python pays that on every call).
        item = self.addPath(path, pen) if brush is None else self.addPath(path, pen, brush)
        item.setParentItem(self.cards_root)
        return item

    def _add_box(self, path: QPainterPath, state: State, dim: bool) -> QGraphicsPathItem:
        item = self._add_path(path, self._no_pen, box_style(state)[0])
        if dim:
            item.setOpacity(DIMMED)
        return item

    def _offset(self, tree: TreeItems, index: int) -> tuple[float, float]:
        """How far tree ``index`` moved since its card layer was made (a rescan moved it)."""
        assert self.layout is not None
        comp = self.layout.components[index]
        return comp.x - tree.origin[0], comp.y - tree.origin[1]

    # -- selection (ours, not Qt's: one current image, shared with the list)

    def select(self, node: str | None) -> None:
        """Moves the selection ring (one C++ path item above everything) to ``node``'s card."""
        changed = node != self.selected
        self.selected = node
        self._place_ring()
        if changed:
            self.selectedChanged.emit()

    def _make_ring(self, focus: bool = False):
        ring = self.addPath(QPainterPath(), self._ring_pen(focus))
        ring.setZValue(10)
        ring.setVisible(False)
        return ring

    def set_also_selected(self, nodes: set[str]) -> None:
        """Rings the cards selected besides the current one."""
        self.also_selected = set(nodes)
        self._place_ring()

    def _place_also_ring(self) -> None:
        ring = self._also_ring
        if ring is None:
            return
        path = QPainterPath()
        for node in self.also_selected - {self.selected}:
            rect = self.node_rect(node)
            if rect is not None:
                path.addRoundedRect(rect.adjusted(-5, -5, 5, 5), 9, 9)
        ring.setPath(path)
        ring.setVisible(not path.isEmpty())

    def _place_ring(self) -> None:
        self._place_also_ring()
        rect = self.node_rect(self.selected) if self.selected else None
        for ring, grow, visible in (
            (self._ring, 5, True),
            (self._focus_ring, 10, self.focus_visible),  # the keyboard focus, round the ring
        ):
            if ring is None:
                continue
            if rect is None or not visible:
                ring.setVisible(False)
                continue
            path = QPainterPath()
            path.addRoundedRect(rect.adjusted(-grow, -grow, grow, grow), 9, 9)
            ring.setPath(path)
            ring.setVisible(True)

    def set_focus_visible(self, visible: bool) -> None:
        """The dashed focus ring round the current card, while the view has the focus."""
        self.focus_visible = visible
        self._place_ring()

    @property
    def focus_ring(self):
        return self._focus_ring

    def set_markers_visible(self, visible: bool) -> None:
        self.markers_visible = visible
        if self.markers is not None:
            self.markers.setVisible(visible)

    def set_problems_only(self, on: bool) -> None:
        """Shows only the chains with a problem or an unusable image (rebuilt, then ``built``)."""
        if on == self.problems_only:
            return
        self.problems_only = on
        if self.snapshot is not None:
            self.set_snapshot(self.snapshot)

    def column(self, x: float) -> list[tuple[float, str]]:
        """The cards drawn at ``x``, as (y, node) sorted top to bottom (for Up / Down)."""
        if self._columns is None:
            columns: dict[float, list[tuple[float, str]]] = {}
            for node, (nx, ny) in self.layout.positions.items() if self.layout else ():
                columns.setdefault(nx, []).append((ny, node))
            for entries in columns.values():
                entries.sort()
            self._columns = columns
        return self._columns.get(x, [])

    def set_matches(self, matches: set[str] | None) -> None:
        """Dims every card the list's filter does not match (None: none dimmed): the veils of
        the regions whose cards changed are redrawn, on a worker past ``SYNC_CARDS`` cards;
        ``matchesChanged`` once they are in."""
        if matches is None and self._wanted is None:
            return
        self._wanted = matches
        self._start_veils(self.matches)

    def _redo_veils(self) -> None:
        """A new layout: every region's veil is redrawn for it (hidden meanwhile)."""
        self._grid = None
        for veil in self._veils.values():
            veil.setVisible(False)
        self.matches = self.matched_trees = None
        if self._wanted is not None:
            self._start_veils(None)

    def _start_veils(self, shown: set[str] | None) -> None:
        layout, grid, wanted = self.layout, self._grid, self._wanted
        if layout is None:
            self._veil_slot.discard()
            self.dimming = False
            self.matches = wanted
            return
        if len(layout.positions) <= SYNC_CARDS:
            self._veil_slot.discard()
            self._show_veils(make_veils(layout, grid, shown, wanted))
            return
        self.dimming = True
        self._veil_slot.start(
            Job(
                "Dimming the cards the filter leaves out",
                lambda _progress, cancel: make_veils(layout, grid, shown, wanted, cancel),
            )
        )

    def _veils_failed(self, error: BaseException) -> None:
        self.dimming = False
        log.error("dimming the cards the filter leaves out failed: %s", error)

    def _show_veils(self, veils: Veils) -> None:
        """Puts the veils worked out for ``veils.matches`` in (their regions only)."""
        self.dimming = False
        if veils.grid.layout is not self.layout:
            return  # made for a layout shown before (a rescan came meanwhile)
        self._grid = veils.grid
        brush = theme.current().scene_bg
        for cell, path in veils.paths.items():
            veil = self._veils.get(cell)
            if veil is None:
                if path.isEmpty() or self.cards_root is None:
                    continue
                # Made with its parent: an item made by addPath and then re-parented costs
                # milliseconds each at 100,000 cards (Qt's list of top-level items).
                veil = QGraphicsPathItem(path, self.cards_root)
                veil.setPen(self._no_pen)
                veil.setBrush(brush)
                veil.setOpacity(1 - DIMMED)
                veil.setZValue(VEIL_Z)
                veil.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
                self._veils[cell] = veil
            else:
                veil.setPath(path)
            veil.setVisible(not path.isEmpty())
        self.matches, self.matched_trees = veils.matches, veils.trees
        self.update()  # the card layers dim their text (one call, not one per layer)
        self.matchesChanged.emit()

    def set_cards_visible(self, visible: bool) -> None:
        """Shows or hides every card, card layer and edge at once (a zoomed-out overview's
        switch: ``gui/graph/overview.py``)."""
        self.cards_visible = visible
        if self.cards_root is not None:
            self.cards_root.setVisible(visible)

    def set_details_visible(self, visible: bool) -> None:
        if visible == self.details_visible:
            return
        self.details_visible = visible
        for layer in self.layers.values():
            layer.setVisible(visible)

    # -- cards

    @property
    def card_count(self) -> int:
        """How many cards the layout shown places (past ``EAGER_TREES`` trees, those away from
        the view have no items yet)."""
        layout = self.layout
        return 0 if layout is None else len(layout.positions)

    def shown(self, node: str) -> bool:
        """Whether ``node`` has a card in the layout shown."""
        layout = self.layout
        return layout is not None and node in layout.component_of

    def shown_nodes(self) -> list[str]:
        layout = self.layout
        if layout is None:
            return []
        return [n for comp in layout.components for n in comp.nodes]

    def node_rect(self, node: str) -> QRectF | None:
        if not self.shown(node):
            return None
        assert self.layout is not None
        x, y = self.layout.positions[node]
        return QRectF(x, y, NODE_W, NODE_H)

    def dimmed(self, node: str) -> bool:
        """Whether ``node``'s card is drawn dimmed (a veil covers it: the filter leaves it out)."""
        rect, grid = self.node_rect(node), self._grid
        if rect is None or grid is None:
            return False
        veil = self._veils.get(grid.cell(rect.x(), rect.y()))
        return veil is not None and veil.isVisible() and veil.path().contains(rect.center())

    def box_item(self, node: str) -> QGraphicsPathItem:
        """The item that draws ``node``'s box (shared with the cards of its tree in its state)."""
        assert self.layout is not None and self.snapshot is not None
        tree = self.trees[self.layout.component_of[node]]
        return tree.boxes[(self.snapshot.status[node].state, False)]

    def node_at(self, scene_pos: QPointF) -> str | None:
        """The card under a scene point, found in the layout: the tree, then its card. None while
        the cards are hidden (the zoomed-out overview stands for them: its blocks answer)."""
        layout = self.layout
        if layout is None or not self.cards_visible:
            return None
        x, y = scene_pos.x(), scene_pos.y()
        index = self._tree_at(x, y)
        if index is None or index not in self.trees:
            return None
        pos = layout.positions
        for node in layout.components[index].nodes:
            nx, ny = pos[node]
            if nx <= x <= nx + NODE_W and ny <= y <= ny + NODE_H:
                return node
        return None

    def _tree_at(self, x: float, y: float) -> int | None:
        """The tree whose box holds (x, y): trees are packed in columns, so two bisections."""
        layout = self.layout
        assert layout is not None
        xs, columns, widths = self._hits()
        k = bisect.bisect_right(xs, x) - 1
        if k < 0 or x > xs[k] + widths[k]:
            return None
        column = columns[k]
        j = bisect.bisect_right(column, (y, len(layout.components))) - 1
        if j < 0:
            return None
        comp = layout.components[column[j][1]]
        if comp.x <= x <= comp.x + comp.w and comp.y <= y <= comp.y + comp.h:
            return column[j][1]
        return None

    def _hits(self) -> tuple[list[float], list[list[tuple[float, int]]], list[float]]:
        """Trees by column: sorted column x's, each column's (y, index) sorted, its width."""
        if self._hit is None:
            layout = self.layout
            assert layout is not None
            by_x: dict[float, list[tuple[float, int]]] = {}
            for i, comp in enumerate(layout.components):
                by_x.setdefault(comp.x, []).append((comp.y, i))
            xs = sorted(by_x)
            columns = [sorted(by_x[cx]) for cx in xs]
            widths = [max(layout.components[i].w for _, i in col) for col in columns]
            self._hit = (xs, columns, widths)
        return self._hit
