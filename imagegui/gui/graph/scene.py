"""The chain graph as a QGraphicsScene that stays smooth at 10,000 images.

Drawing cost is what decides the design (Qt's "chip" example, adapted for Python):

- A card's box is a plain ``QGraphicsRectItem`` (no Python subclass, so no virtual override to
  look up), so zoomed out Qt paints all of them in C++ without calling Python once per image.
- Everything else on the cards - name, sizes, state icon, badges, the selection ring - is painted
  by one :class:`CardLayer` per tree, which paints only the cards inside the exposed rectangle and
  only from a readable zoom level up (level of detail from the painter's transform).
- Each tree's edges are one ``QGraphicsPathItem`` (one path per chain, built on the worker).
- Items are created in batches of a few milliseconds from a zero-timer, so showing 10,000 images
  never freezes the window; ``built`` is emitted when the last batch is in.
- Broken and unusable cards get one marker each, of a fixed size on screen, all painted by one
  item in one call (:class:`~imagegui.gui.graph.cards.MarkerLayer`), shown only zoomed out.

"Problems only" shows the snapshot's second layout, made on the scan's worker: only the chains
with a problem or an unusable image, packed without holes.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QPainterPath, QPen
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsRectItem,
    QGraphicsScene,
)

from imagegui.core.chains.layout import NODE_H, NODE_W, Layout
from imagegui.core.chains.nodestate import State
from imagegui.gui import theme
from imagegui.gui.graph.cards import CardLayer, MarkerLayer, is_broken, palette
from imagegui.gui.snapshot import Snapshot

#: Milliseconds of item creation per event-loop turn.
BATCH_MS = 8.0
#: Scene space round the cards (the loop arrows and the rings reach ~30 outside).
MARGIN = 40.0
#: Opacity of a card the filter does not match.
DIMMED = 0.22


#: ``QGraphicsItem.data`` keys on a card box: the node it stands for and its tree's index.
NODE_KEY = 0
COMPONENT_KEY = 1


class ChainScene(QGraphicsScene):
    #: All items of the current snapshot are in the scene.
    built = Signal()
    #: The list's filter changed what ``matches`` holds (the zoomed-out overview redraws).
    matchesChanged = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.snapshot: Snapshot | None = None
        #: The layout shown: the snapshot's, or its problems-only one.
        self.layout: Layout | None = None
        self.paths: list = []
        #: Only the chains with a problem or an unusable image are shown.
        self.problems_only = False
        self.markers: MarkerLayer | None = None
        self.markers_visible = False
        #: The parent of every card box, card layer and edge path: hidden as one subtree while
        #: the zoomed-out overview stands for them (``set_cards_visible``), so a zoomed-out
        #: repaint visits one item instead of one per image.
        self.cards_root: QGraphicsRectItem | None = None
        self.cards_visible = True
        self.focus_visible = False
        self._focus_ring = None
        self._columns: dict[float, list[tuple[float, str]]] | None = None
        self.items_by_node: dict[str, QGraphicsRectItem] = {}
        self.layers: dict[int, CardLayer] = {}
        self.selected: str | None = None
        #: Whether the card layers paint (the view turns them off below a readable zoom, so a
        #: zoomed-out repaint makes no Python call per tree).
        self.details_visible = True
        #: While the list is filtered: the matching nodes; the other cards are dimmed.
        self.matches: set[str] | None = None
        self._ring = None
        #: Cards selected besides the current one (Ctrl+click, or several rows of the list):
        #: what Move to Trash takes with it; one path item rings them all.
        self.also_selected: set[str] = set()
        self._also_ring = None
        self.building = False
        self._queue: list[int] = []
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._on_batch)
        # No spatial index: the items never move, and keeping a BSP tree up to date while 10,000
        # items arrive costs more (re-built on every batch) than Qt's linear C++ pass over the
        # item list when painting or hit-testing (~1 ms at 10,000 items).
        self.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.NoIndex)
        self._no_pen = QPen(Qt.PenStyle.NoPen)
        #: Edge, arrow and loop path items, restyled when the palette changes.
        self._paths: list[tuple[str, QGraphicsPathItem]] = []
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

    def _on_theme_changed(self) -> None:
        """The palette changed: recolour what is drawn, without laying anything out again."""
        self._set_colours()
        for kind, item in self._paths:
            if kind == "edges":
                item.setPen(self._edge_pen)
            elif kind == "arrows":
                item.setBrush(self._arrow_brush)
            else:
                item.setPen(self._loop_pen)
        if self.snapshot is not None:
            status = self.snapshot.status
            for node, item in self.items_by_node.items():
                brush, pen = palette(status[node])
                item.setBrush(brush)
                item.setPen(pen)
        for ring in (self._ring, self._also_ring):
            if ring is not None:
                ring.setPen(self._ring_pen())
        if self._focus_ring is not None:
            self._focus_ring.setPen(self._ring_pen(focus=True))
        if self.markers is not None:
            self.markers.set_colours()
        self.update()

    # -- building

    def set_snapshot(self, snapshot: Snapshot) -> None:
        """Replaces everything; items arrive over the next event-loop turns."""
        self._timer.stop()
        self.clear()
        self.items_by_node = {}
        self.layers = {}
        self._paths = []
        self.markers = None
        self._columns = None
        self.cards_root = self.addRect(QRectF())
        self.cards_root.setFlag(QGraphicsItem.GraphicsItemFlag.ItemHasNoContents)
        self.cards_root.setVisible(self.cards_visible)
        self._ring = self._make_ring()
        self._also_ring = self._make_ring()
        self._focus_ring = self._make_ring(focus=True)
        self.snapshot = snapshot
        layout, self.paths = snapshot.layout, snapshot.paths
        if self.problems_only and snapshot.problem_layout is not None:
            layout, self.paths = snapshot.problem_layout, snapshot.problem_paths
        self.layout = layout
        self.setSceneRect(
            QRectF(-MARGIN, -MARGIN, layout.width + 2 * MARGIN, layout.height + 2 * MARGIN)
        )
        if self.selected not in snapshot.graph.nodes:
            self.selected = None
        self._queue = list(range(len(layout.components)))
        self._queue.reverse()
        self.building = True
        self._on_batch()

    def _on_batch(self) -> None:
        snap = self.snapshot
        if snap is None:
            return
        deadline = time.perf_counter() + BATCH_MS / 1000
        while self._queue:
            self._add_component(snap, self._queue.pop())
            if time.perf_counter() > deadline:
                break
        if self._queue:
            self._timer.start()
            return
        self.building = False
        self._add_markers(snap)
        self._place_ring()
        self.built.emit()

    def _add_markers(self, snap: Snapshot) -> None:
        status = snap.status
        half_w, half_h = NODE_W / 2, NODE_H / 2
        points = {True: [], False: []}  # the break itself: True; above a break: False
        for node, (x, y) in self.layout.positions.items():
            st = status[node]
            if is_broken(st):
                at = st.broken_at
                points[at is None or at == node or st.state is not State.UNUSABLE].append(
                    QPointF(x + half_w, y + half_h)
                )
        if points[True] or points[False]:
            self.markers = MarkerLayer(self.sceneRect(), points[True], points[False])
            self.markers.setVisible(self.markers_visible)
            self.addItem(self.markers)

    def _add_component(self, snap: Snapshot, index: int) -> None:
        comp = self.layout.components[index]
        paths = self.paths[index]
        root = self.cards_root
        made = []
        if comp.has_edges:
            made.append(("edges", self.addPath(paths.edges, self._edge_pen)))
            made.append(("arrows", self.addPath(paths.arrows, self._no_pen, self._arrow_brush)))
        if paths.loops is not None:
            made.append(("loops", self.addPath(paths.loops, self._loop_pen)))
        for _kind, path_item in made:
            path_item.setParentItem(root)
        self._paths += made
        pos = self.layout.positions
        status = snap.status
        rects: list[tuple[str, QRectF]] = []
        for node in comp.nodes:
            x, y = pos[node]
            rect = QRectF(x, y, NODE_W, NODE_H)
            brush, pen = palette(status[node])
            # addRect makes a plain C++ item: Qt calls its virtuals without asking PySide6
            # whether Python overrides them (an item made from Python pays that on every call).
            item = self.addRect(rect, pen, brush)
            item.setData(NODE_KEY, node)
            item.setData(COMPONENT_KEY, index)
            item.setParentItem(root)
            if self.matches is not None and node not in self.matches:
                item.setOpacity(DIMMED)
            self.items_by_node[node] = item
            rects.append((node, rect))
        layer = CardLayer(self, index, rects, QRectF(comp.x, comp.y, comp.w, comp.h))
        layer.setVisible(self.details_visible)
        layer.setParentItem(root)
        self.layers[index] = layer

    # -- selection (ours, not Qt's: one current image, shared with the list)

    def select(self, node: str | None) -> None:
        """Moves the selection ring (one C++ path item above everything) to ``node``'s card."""
        self.selected = node
        self._place_ring()

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
            item = self.items_by_node.get(node)
            if item is not None:
                path.addRoundedRect(item.rect().adjusted(-5, -5, 5, 5), 9, 9)
        ring.setPath(path)
        ring.setVisible(not path.isEmpty())

    def _place_ring(self) -> None:
        self._place_also_ring()
        item = self.items_by_node.get(self.selected) if self.selected else None
        for ring, grow, visible in (
            (self._ring, 5, True),
            (self._focus_ring, 10, self.focus_visible),  # the keyboard focus, round the ring
        ):
            if ring is None:
                continue
            if item is None or not visible:
                ring.setVisible(False)
                continue
            path = QPainterPath()
            path.addRoundedRect(item.rect().adjusted(-grow, -grow, grow, grow), 9, 9)
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
        """Dims every card the list's filter does not match (None: none dimmed)."""
        if matches is None and self.matches is None:
            return
        self.matches = matches
        for node, item in self.items_by_node.items():
            item.setOpacity(1.0 if matches is None or node in matches else DIMMED)
        for layer in self.layers.values():
            layer.update()
        self.matchesChanged.emit()

    def set_details_visible(self, visible: bool) -> None:
        if visible == self.details_visible:
            return
        self.details_visible = visible
        for layer in self.layers.values():
            layer.setVisible(visible)

    def set_cards_visible(self, visible: bool) -> None:
        """Shows or hides every card, card layer and edge at once (the overview's switch)."""
        self.cards_visible = visible
        if self.cards_root is not None:
            self.cards_root.setVisible(visible)

    def node_at(self, scene_pos) -> str | None:
        for item in self.items(scene_pos):
            node = item.data(NODE_KEY) if isinstance(item, QGraphicsRectItem) else None
            if node is not None:
                return node
        return None

    def shown(self, node: str) -> bool:
        return node in self.items_by_node

    def node_rect(self, node: str) -> QRectF | None:
        item = self.items_by_node.get(node)
        return item.rect() if item is not None else None
