"""The chain graph as a QGraphicsScene that stays smooth at 10,000 images.

Drawing cost is what decides the design (Qt's "chip" example, adapted for Python):

- A card's box is a plain ``QGraphicsRectItem`` (``NodeItem`` adds only attributes, no virtual
  overrides), so zoomed out Qt paints all of them in C++ without calling Python once per image.
- Everything else on the cards - name, sizes, state icon, badges, the selection ring - is painted
  by one :class:`CardLayer` per tree, which paints only the cards inside the exposed rectangle and
  only from a readable zoom level up (level of detail from the painter's transform).
- Each tree's edges are one ``QGraphicsPathItem`` (one path per chain, built on the worker).
- Items are created in batches of a few milliseconds from a zero-timer, so showing 10,000 images
  never freezes the window; ``built`` is emitted when the last batch is in.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QPen
from PySide6.QtWidgets import QGraphicsPathItem, QGraphicsRectItem, QGraphicsScene

from imagegui.core.layout import NODE_H, NODE_W
from imagegui.core.nodestate import State
from imagegui.gui.cards import CardLayer, palette
from imagegui.gui.snapshot import Snapshot

#: Milliseconds of item creation per event-loop turn.
BATCH_MS = 8.0
MARGIN = 200.0


class NodeItem(QGraphicsRectItem):
    """One image's card box. Painted by Qt in C++; carries the node it stands for."""

    def __init__(self, node: str, rect: QRectF, component: int):
        super().__init__(rect)
        self.node = node
        self.component = component


class ChainScene(QGraphicsScene):
    #: All items of the current snapshot are in the scene.
    built = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.snapshot: Snapshot | None = None
        self.items_by_node: dict[str, NodeItem] = {}
        self.layers: dict[int, CardLayer] = {}
        self.selected: str | None = None
        self.building = False
        self._queue: list[int] = []
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._on_batch)
        self.setBackgroundBrush(QColor("#f4f6f8"))
        self.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.BspTreeIndex)
        self._edge_pen = QPen(QColor("#7f8c9a"), 1.6)
        self._edge_pen.setCosmetic(False)
        self._loop_pen = QPen(QColor("#d0392b"), 2.0, Qt.PenStyle.DashLine)
        self._arrow_brush = QBrush(QColor("#7f8c9a"))

    # -- building

    def set_snapshot(self, snapshot: Snapshot) -> None:
        """Replaces everything; items arrive over the next event-loop turns."""
        self._timer.stop()
        self.clear()
        self.items_by_node = {}
        self.layers = {}
        self.snapshot = snapshot
        layout = snapshot.layout
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
        self.built.emit()

    def _add_component(self, snap: Snapshot, index: int) -> None:
        comp = snap.layout.components[index]
        paths = snap.paths[index]
        if comp.has_edges:
            edges = QGraphicsPathItem(paths.edges)
            edges.setPen(self._edge_pen)
            self.addItem(edges)
            arrows = QGraphicsPathItem(paths.arrows)
            arrows.setPen(Qt.PenStyle.NoPen)
            arrows.setBrush(self._arrow_brush)
            self.addItem(arrows)
        if paths.loops is not None:
            loops = QGraphicsPathItem(paths.loops)
            loops.setPen(self._loop_pen)
            self.addItem(loops)
        pos = snap.layout.positions
        status = snap.status
        rects: list[tuple[str, QRectF]] = []
        for node in comp.nodes:
            x, y = pos[node]
            rect = QRectF(x, y, NODE_W, NODE_H)
            item = NodeItem(node, rect, index)
            brush, pen = palette(status[node])
            item.setBrush(brush)
            item.setPen(pen)
            self.addItem(item)
            self.items_by_node[node] = item
            rects.append((node, rect))
        layer = CardLayer(self, index, rects, QRectF(comp.x, comp.y, comp.w, comp.h))
        self.addItem(layer)
        self.layers[index] = layer

    # -- selection (ours, not Qt's: one current image, shared with the list)

    def select(self, node: str | None) -> None:
        if node == self.selected:
            return
        old = self.selected
        self.selected = node
        for n in (old, node):
            item = self.items_by_node.get(n) if n else None
            if item is not None:
                item.update()
                layer = self.layers.get(item.component)
                if layer is not None:
                    layer.update(item.rect().adjusted(-8, -8, 8, 8))

    def node_at(self, scene_pos) -> str | None:
        for item in self.items(scene_pos):
            if isinstance(item, NodeItem):
                return item.node
        return None

    def node_rect(self, node: str) -> QRectF | None:
        item = self.items_by_node.get(node)
        return item.rect() if item is not None else None

    def state_of(self, node: str) -> State | None:
        return self.snapshot.status[node].state if self.snapshot else None
