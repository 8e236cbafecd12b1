"""The zoomed-out graph: every tree drawn as one glyph, so 100,000 images read as their chains.

Below the zoom at which card names become legible (``LOD_NAME``) a card is a speck: 100,000 of
them cost Qt a paint of 100,000 boxes (≈ 125 ms) and tell the user little more than a colour.
There the graph switches to this overview: each tree (a base and its overlays, one component of
the layout) is one rounded block the size of the tree's bounding box, coloured by the worst state
in it, with a label - the state's icon, the base's name, the image count - where the labels do
not run into each other (troubled trees first). The card boxes, edges and card layers are hidden
as one subtree (``ChainScene.set_cards_visible``), so a zoomed-out repaint touches a few dozen
paths and the labels in view, never one item per image. The fixed-size red markers of broken
cards (``cards.MarkerLayer``) stay on top: they say where in a tree the chain breaks.

Between ``FADE_FROM`` and ``LOD_NAME`` the cards are back underneath and the blocks fade out, so
zooming in turns the blocks into the cards they stand for.

Everything per tree is worked out once per snapshot: the figures on the scan's worker
(``core.chains.trees``), the block paths (one per state and region of the scene) and the label
texts the first time they are needed. A paint draws the paths of the regions it exposes and at
most ``MAX_LABELS`` labels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape

from PySide6.QtCore import QObject, QPointF, QRect, QRectF, Qt
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontMetricsF,
    QPainter,
    QPainterPath,
    QPen,
    QPixmap,
    QTransform,
)
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget
from shiboken6 import isValid

from imagegui.core.chains.layout import NODE_H, NODE_W, Layout
from imagegui.core.chains.nodestate import NodeStatus, State
from imagegui.core.chains.trees import RANK, SEVERITY, TreeSummary, summarize
from imagegui.core.units import display_path
from imagegui.gui import resources, theme
from imagegui.gui.graph.cards import LOD_NAME, is_broken
from imagegui.gui.graph.scene import DIMMED
from imagegui.gui.panels.chains_model import STATE_ICON

#: Below this zoom only the overview is drawn (the cards are hidden); from it up to ``LOD_NAME``
#: the cards are drawn and the blocks fade out over them.
FADE_FROM = 0.11
#: The blocks' opacity where they are fully shown (the marker dots and labels stay opaque).
BLOCK_OPACITY = 1.0
#: Corner radius of a block, scene units (a card's is about 8).
RADIUS = 24.0
#: The scene is cut into this many regions a side; each has its own paths, so a paint of part
#: of the scene draws only the regions it touches.
GRID = 8
#: Labels drawn per paint at most, and the trees looked at for them (troubled ones first).
MAX_LABELS = 150
MAX_CANDIDATES = 4000
#: A healthy tree gets a label only once its block is this tall on screen (pixels): below it,
#: a label could not be told apart from its neighbours'. A troubled tree always may.
LABEL_MIN_H = 5.0
#: The label's font size, its padding, height and icon, in screen pixels; labels kept drawn.
LABEL_PX = 11
PAD = 4.0
LABEL_H = LABEL_PX + 2 * PAD + 2
ICON = 14.0
MAX_CACHED = 2000
#: Widest a label's name may be, and the label itself (pixels).
NAME_W = 180.0
MAX_LABEL_W = NAME_W + 100.0
#: Half the size of a marker dot with its halo (pixels): labels keep off it.
DOT = 7.0
#: Beyond this many dots, labels stop keeping off them (the loop would cost the paint).
MAX_DOTS = 5000
#: Pixels between a troubled tree's block and its label.
LABEL_GAP = 8.0
#: Height of the rows in which taken label spans are kept (screen pixels).
ROW = 8
#: Pixels between a tree's block and the ring round the current image's tree.
RING = 4.0
#: A block narrower than this on screen (pixels) is drawn as a square symbol of this size in its
#: worst state's colours instead, so a tree of one image stays visible and its state readable;
#: at most ``MAX_SYMBOLS`` of them a paint (the narrowest first).
SYMBOL = 5.0
MAX_SYMBOLS = 20000
#: Screen pixels a pointer may be off a block and still be on it (blocks can be one pixel tall).
HIT_SLOP = 4.0


@dataclass
class OverviewData:
    """What the overview draws for one layout, made once per snapshot."""

    trees: list[TreeSummary]
    #: (region bounds, [(state, path of every block of that worst state in the region)]).
    regions: list[tuple[QRectF, list[tuple[State, QPainterPath]]]] = field(default_factory=list)
    #: Tree indices in label order: troubled trees (worst first, then larger), then the rest.
    troubled: list[int] = field(default_factory=list)
    healthy: list[int] = field(default_factory=list)
    #: The smallest tree height (scene units): below LABEL_MIN_H on screen no healthy label fits.
    min_h: float = 0.0
    #: Centres of the broken cards (the marker dots): no label is put over one.
    dots: list[tuple[float, float]] = field(default_factory=list)
    #: Tree indices by block width, narrowest first: those drawn as a symbol when tiny.
    by_width: list[int] = field(default_factory=list)


def build_data(
    trees: list[TreeSummary], dots: list[tuple[float, float]] | None = None
) -> OverviewData:
    """Paths per region and state, label order (``QPainterPath`` is reentrant: a worker may)."""
    data = OverviewData(trees, dots=dots or [])
    if not trees:
        return data
    right = max(t.x + t.w for t in trees) or 1.0
    bottom = max(t.y + t.h for t in trees) or 1.0
    cells: dict[tuple[int, int], dict[State, QPainterPath]] = {}
    bounds: dict[tuple[int, int], QRectF] = {}
    for t in trees:
        key = (
            min(GRID - 1, int(t.x / right * GRID)),
            min(GRID - 1, int(t.y / bottom * GRID)),
        )
        path = cells.setdefault(key, {}).get(t.worst)
        if path is None:
            path = cells[key][t.worst] = QPainterPath()
        radius = min(RADIUS, t.h / 2, t.w / 2)
        rect = QRectF(t.x, t.y, t.w, t.h)
        path.addRoundedRect(rect, radius, radius)
        bounds[key] = bounds[key].united(rect) if key in bounds else rect
    for key, paths in cells.items():
        ordered = sorted(paths.items(), key=lambda kv: RANK[kv[0]])  # the worst painted last
        data.regions.append((bounds[key], ordered))
    data.troubled = sorted(
        (t.index for t in trees if t.troubled),
        key=lambda i: (-RANK[trees[i].worst], -trees[i].nodes, i),
    )
    data.healthy = sorted(
        (t.index for t in trees if not t.troubled), key=lambda i: (-trees[i].nodes, i)
    )
    data.min_h = min(t.h for t in trees)
    data.by_width = sorted(range(len(trees)), key=lambda i: trees[i].w)
    return data


def overview_data(layout: Layout, status: dict[str, NodeStatus]) -> OverviewData:
    half_w, half_h = NODE_W / 2, NODE_H / 2
    dots = [
        (x + half_w, y + half_h)
        for node, (x, y) in layout.positions.items()
        if is_broken(status[node])
    ]
    return build_data(summarize(layout, status), dots)


@dataclass(frozen=True)
class BlockStyle:
    brush: QBrush
    pen: QPen
    #: The label's frame.
    accent: QColor


def block_styles() -> dict[State, BlockStyle]:
    """Each worst state's block, from the palette: a healthy tree in its card tint, one with
    trouble in the state's hue, a broken one solid, so the eye goes to what needs it."""
    t = theme.current()
    out = {}
    for state in SEVERITY:
        card = t.card(state)
        if RANK[state] >= RANK[State.UNUSABLE]:
            fill = QColor(card.border)
        elif RANK[state] >= RANK[State.IN_USE]:
            fill = theme.mix(card.fill, card.border, 0.6)
        else:
            fill = theme.mix(card.fill, card.border, 0.3)
        pen = QPen(fill, 0)  # a cosmetic hairline: a block is never thinner than a pixel
        out[state] = BlockStyle(QBrush(fill), pen, QColor(card.border))
    return out


def paint_blocks(
    painter: QPainter,
    data: OverviewData,
    styles: dict[State, BlockStyle],
    exposed: QRectF,
    opacity: float = 1.0,
) -> None:
    """Every tree's block in the regions ``exposed`` touches: a few filled paths (the view's
    overview and the minimap's picture both draw with it)."""
    # Antialiased, a block a pixel thin still shows (as a lighter line); a pen would make sure
    # of it too, but stroking 10,000 outlines costs ten times the fill.
    smooth = painter.testRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    painter.setOpacity(opacity)
    painter.setPen(Qt.PenStyle.NoPen)
    for bounds, paths in data.regions:
        if not bounds.intersects(exposed):
            continue
        for state, path in paths:
            painter.setBrush(styles[state].brush)
            painter.drawPath(path)
    painter.setOpacity(1.0)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, smooth)


class OverviewLayer(QGraphicsItem):
    """Paints every tree's block; one item for the whole scene, under the marker dots."""

    def __init__(self, data: OverviewData, bounds: QRectF):
        super().__init__()
        self.data = data
        self._bounds = bounds
        self.styles = block_styles()
        #: Opacity of the blocks (1 zoomed out, falling to 0 as the cards come back).
        self.fade = 1.0
        #: (the filter's matches, the trees with one, the path of the others' blocks).
        self._dim: tuple[set[str], set[int], QPainterPath] | None = None
        self.setZValue(3)  # above the cards (while they fade in), below markers and rings
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption)
        # Kept as a picture of the part in view until the zoom, the palette or the filter
        # changes: a repaint for the selection ring, a tooltip or the minimap is a copy, and a
        # scroll renders only the strip that comes into view.
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)

    def set_colours(self) -> None:
        self.styles = block_styles()
        self.update()

    def boundingRect(self) -> QRectF:
        return self._bounds

    def matched(self) -> set[int] | None:
        """The trees with an image the list's filter matches (None: no filter), and the path
        of the others' blocks, made once per filter."""
        scene = self.scene()
        matches = getattr(scene, "matches", None)
        if matches is None or scene.layout is None:
            return None
        if self._dim is None or self._dim[0] is not matches:
            hit = scene.matched_trees  # worked out with the scene's veils
            if hit is None:
                of = scene.layout.component_of
                hit = {of[n] for n in matches if n in of}
            path = QPainterPath()
            for t in self.data.trees:
                if t.index not in hit:
                    radius = min(RADIUS, t.h / 2, t.w / 2)
                    path.addRoundedRect(QRectF(t.x, t.y, t.w, t.h), radius, radius)
            self._dim = (matches, hit, path)
        return self._dim[1]

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ):
        paint_blocks(painter, self.data, self.styles, option.exposedRect, self.fade * BLOCK_OPACITY)
        self._paint_symbols(painter, option.exposedRect)
        if self.matched() is not None and self._dim is not None:  # the filter's misses faded
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(theme.current().scene_bg)
            painter.setOpacity(self.fade * (1 - DIMMED))
            painter.drawPath(self._dim[2])
            painter.setOpacity(1.0)

    def _paint_symbols(self, painter: QPainter, exposed: QRectF) -> None:
        """Each tree whose block is under ``SYMBOL`` pixels wide as a square of that size at its
        block's centre, filled in its worst state's colour and framed in the state's accent: a
        one-image tree at 100,000 images fitted is otherwise a pixel's smudge. Trees the filter
        leaves out get none (their blocks are faded)."""
        m = painter.worldTransform()
        sx, sy, dx, dy = m.m11(), m.m22(), m.dx(), m.dy()
        trees, order = self.data.trees, self.data.by_width
        if not order or trees[order[0]].w * sx >= SYMBOL:
            return
        matched = self.matched()
        left, top = exposed.left() * sx + dx - SYMBOL, exposed.top() * sy + dy - SYMBOL
        right = exposed.right() * sx + dx + SYMBOL
        bottom = exposed.bottom() * sy + dy + SYMBOL
        half = SYMBOL / 2
        rects: dict[State, list[QRectF]] = {}
        for n, i in enumerate(order):
            t = trees[i]
            if t.w * sx >= SYMBOL or n >= MAX_SYMBOLS:
                break
            if matched is not None and i not in matched:
                continue
            cx, cy = (t.x + t.w / 2) * sx + dx, (t.y + t.h / 2) * sy + dy
            if left <= cx <= right and top <= cy <= bottom:
                rects.setdefault(t.worst, []).append(QRectF(cx - half, cy - half, SYMBOL, SYMBOL))
        painter.setWorldTransform(QTransform())  # in pixels
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        painter.setOpacity(self.fade * BLOCK_OPACITY)
        for state in sorted(rects, key=RANK.__getitem__):  # the worst painted last
            style = self.styles[state]
            painter.setBrush(style.brush)
            painter.setPen(QPen(style.accent, 1))
            painter.drawRects(rects[state])
        painter.setOpacity(1.0)
        painter.setWorldTransform(m)


class LabelLayer(QGraphicsItem):
    """The trees' labels, in screen pixels, above the marker dots (a label says which tree the
    dots under it belong to). Painted only into the view: a picture of the scene (the minimap)
    would get labels the size of the whole picture."""

    def __init__(self, blocks: OverviewLayer):
        super().__init__()
        self.blocks = blocks
        self.data = blocks.data
        self._labels: dict[tuple[int, float], QPixmap] = {}
        self._font = QFont()
        self._font.setPixelSize(LABEL_PX)
        self._fm = QFontMetricsF(self._font)
        #: The trees labelled by the last paint (index, label rect in viewport pixels).
        self.labelled: list[tuple[int, QRectF]] = []
        #: A label is in pixels and may stick out of the scene: the item's bounds reach this far
        #: (scene units) past it, set from the zoom, so Qt repaints where labels were.
        self._margin = 0.0
        self.setZValue(6)  # above the markers (5), below the selection rings (10)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption)

    def set_colours(self) -> None:
        self._labels.clear()
        self.update()

    def boundingRect(self) -> QRectF:
        m = self._margin
        return self.blocks.boundingRect().adjusted(-m, -m, m, m)

    def set_scale(self, scale: float) -> None:
        margin = (MAX_LABEL_W + LABEL_GAP + LABEL_H) / max(scale, 1e-6)
        if abs(margin - self._margin) > 1e-6:
            self.prepareGeometryChange()
            self._margin = margin

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ):
        if widget is None:  # QGraphicsScene.render: a picture, not the view
            return
        # Labels keep off the list of broken chains over the view's corner (``trouble``).
        view = widget.parentWidget()
        trouble = getattr(view, "trouble", None)
        covered = trouble.geometry() if trouble is not None and trouble.isVisible() else None
        self._paint_labels(painter, option.exposedRect, covered)

    def label(self, index: int, ratio: float = 1.0) -> QPixmap:
        """The label of tree ``index`` (state icon, base name · count, framed), drawn once into a
        pixmap: a blit per paint instead of an antialiased frame, an icon and a text."""
        key = (index, ratio)
        pm = self._labels.get(key)
        if pm is not None:
            return pm
        if len(self._labels) > MAX_CACHED:
            self._labels.clear()
        tree = self.data.trees[index]
        name = self._fm.elidedText(display_path(tree.name), Qt.TextElideMode.ElideMiddle, NAME_W)
        text = f"{name} · {tree.images:,}"
        w = math.ceil(self._fm.horizontalAdvance(text) + 2 * PAD + ICON + 3)
        h = LABEL_H
        pm = QPixmap(round(w * ratio), round(h * ratio))
        pm.setDevicePixelRatio(ratio)
        pm.fill(Qt.GlobalColor.transparent)
        t = theme.current()
        bg = QColor(t.base)
        bg.setAlpha(235)
        painter = QPainter(pm)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        width = 1.5 if tree.troubled else 1.0
        painter.setPen(QPen(self.blocks.styles[tree.worst].accent, width))
        painter.setBrush(bg)
        painter.drawRoundedRect(QRectF(0, 0, w, h).adjusted(0.75, 0.75, -0.75, -0.75), 5, 5)
        painter.drawPixmap(
            QRectF(PAD, (h - ICON) / 2, ICON, ICON),
            resources.pixmap(STATE_ICON[tree.worst], int(ICON), 2.0),
            QRectF(0, 0, ICON * 2, ICON * 2),
        )
        painter.setPen(t.text)
        painter.setFont(self._font)
        painter.drawText(QRectF(PAD + ICON + 3, 0, w, h), Qt.AlignmentFlag.AlignVCenter, text)
        painter.end()
        self._labels[key] = pm
        return pm

    def _paint_labels(
        self, painter: QPainter, exposed: QRectF, covered: QRect | None = None
    ) -> None:
        """Labels in screen pixels at each block's left, where none overlaps another: troubled
        trees first. Rows of ``ROW`` pixels, each with the spans taken, answer "is it free"."""
        m = painter.worldTransform()
        sx, sy, dx, dy = m.m11(), m.m22(), m.dx(), m.dy()
        left, top = exposed.x() * sx + dx, exposed.y() * sy + dy
        right, bottom = left + exposed.width() * sx, top + exposed.height() * sy
        trees = self.data.trees
        matched = self.blocks.matched()  # while the list is filtered, only matching trees
        candidates = self.data.troubled
        if self.data.min_h * sy >= LABEL_MIN_H:
            candidates = candidates + self.data.healthy
        ratio = painter.device().devicePixelRatioF() if painter.device() else 1.0
        painter.setWorldTransform(QTransform())  # labels in pixels: each a 1:1 blit
        rows: dict[int, list[tuple[float, float]]] = {}
        dots = self.data.dots if len(self.data.dots) <= MAX_DOTS else ()
        for x, y in dots:  # the marker dots are taken from the start
            x, y = x * sx + dx, y * sy + dy
            if left - DOT <= x <= right + DOT and top - DOT <= y <= bottom + DOT:
                for r in range(int((y - DOT) // ROW), int((y + DOT) // ROW) + 1):
                    rows.setdefault(r, []).append((x - DOT, x + DOT))
        if covered is not None:  # a widget over the view: taken as well
            for r in range(covered.top() // ROW, covered.bottom() // ROW + 1):
                rows.setdefault(r, []).append((covered.left(), covered.right() + 1))
        labelled: list[tuple[int, QRectF]] = []
        h = LABEL_H
        for n, i in enumerate(candidates):
            if n >= MAX_CANDIDATES or len(labelled) >= MAX_LABELS:
                break
            if matched is not None and i not in matched:
                continue
            tree = trees[i]
            x0, y0 = tree.x * sx + dx, tree.y * sy + dy
            x1, y1 = x0 + tree.w * sx, y0 + tree.h * sy
            if x1 < left or x0 > right or y1 < top or y0 > bottom:
                continue
            if y1 - y0 < LABEL_MIN_H and not tree.troubled:
                continue
            pm = self.label(i, ratio)
            w = pm.width() / ratio
            # At the block's left; a troubled tree's may go past its right end (or before its
            # left) instead when that would cover a dot. Never over another label or a dot.
            ly = (y0 + y1) / 2 - h / 2
            spans = [
                rows.setdefault(r, []) for r in range(int(ly // ROW), int((ly + h) // ROW) + 1)
            ]
            places = [max(x0, left)]
            if tree.troubled and x1 + LABEL_GAP + w <= right:
                places.append(x1 + LABEL_GAP)
            if tree.troubled and x0 - LABEL_GAP - w >= left:
                places.append(x0 - LABEL_GAP - w)
            for lx in places:
                lx1 = lx + w
                if not any(a < lx1 and lx < b for row in spans for a, b in row):
                    break
            else:
                continue
            for row in spans:
                row.append((lx, lx1))
            painter.drawPixmap(QPointF(lx, ly), pm)
            labelled.append((i, QRectF(lx, ly, w, h)))
        self._paint_current(painter, m)
        painter.setWorldTransform(m)
        self.labelled = labelled

    def _paint_current(self, painter: QPainter, m: QTransform) -> None:
        """A ring round the current image's tree, a few pixels out from its block: zoomed out
        the card's own ring is a speck, and the arrow keys move between blocks."""
        scene = self.scene()
        layout = getattr(scene, "layout", None)
        node = getattr(scene, "selected", None)
        index = layout.component_of.get(node) if layout is not None and node else None
        if index is None or index >= len(self.data.trees):
            return
        t = self.data.trees[index]
        rect = m.mapRect(QRectF(t.x, t.y, t.w, t.h)).adjusted(-RING, -RING, RING, RING)
        pen = QPen(theme.current().selection, 2.0)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.drawRoundedRect(rect, 4, 4)


def tree_tooltip(tree: TreeSummary) -> str:
    """The base, the count and the problems of one tree, for the glyph's tooltip."""
    lines = [
        f"<b>{escape(display_path(tree.name))}</b>",
        f"{tree.count_label()} in this chain tree · worst: {tree.worst}",
        escape(tree.state_line()),
    ]
    lines += [f"• {escape(display_path(line))}" for line in tree.problem_lines()]
    lines.append("<i>Click to zoom in on it</i>")
    return "<p style='white-space:pre-wrap'>" + "<br>".join(lines) + "</p>"


class Overview(QObject):
    """Keeps the overview of a :class:`~imagegui.gui.graph.scene.ChainScene` in step with its
    snapshot and with the view's zoom: made when the scene is built (from the summaries the
    worker made, or here when there are none), recoloured with the palette, shown below
    ``LOD_NAME`` and fading out above ``FADE_FROM``."""

    def __init__(self, scene):
        super().__init__(scene)
        self.scene = scene
        self.layer: OverviewLayer | None = None
        self.labels: LabelLayer | None = None
        self.data: OverviewData | None = None
        self._layout: Layout | None = None
        self.scale = 1.0
        scene.built.connect(self._on_built)
        scene.matchesChanged.connect(self._on_matches_changed)
        scene.selectedChanged.connect(self._on_selected_changed)
        theme.watcher().changed.connect(self._on_theme_changed)

    def _live(self) -> OverviewLayer | None:
        """The layer, while it is in the scene (a new snapshot's ``clear()`` deletes it)."""
        layer = self.layer
        if layer is None or not isValid(layer) or layer.scene() is not self.scene:
            return None
        return layer

    @property
    def shown(self) -> bool:
        """The overview is drawn (the view is zoomed out below legible names)."""
        return self.scale < LOD_NAME and self._live() is not None

    @property
    def only(self) -> bool:
        """Only the overview is drawn: the cards are hidden."""
        return self.shown and self.scale < FADE_FROM

    def _on_built(self) -> None:
        scene = self.scene
        snap, layout = scene.snapshot, scene.layout
        if snap is None or layout is None:
            return
        if layout is not self._layout or self._live() is None:
            self._layout = layout
            self.data = _data_for(snap, layout)
            self.layer = OverviewLayer(self.data, scene.sceneRect())
            self.labels = LabelLayer(self.layer)
            scene.addItem(self.layer)
            scene.addItem(self.labels)
        self.set_scale(self.scale, force=True)

    def _on_matches_changed(self) -> None:
        """The list's filter changed: fade other trees (the cached picture is redrawn)."""
        layer = self._live()
        if layer is not None:
            layer.update()
            if self.labels is not None:
                self.labels.update()

    def _on_selected_changed(self) -> None:
        """The ring round the current tree moves (the labels' item paints it)."""
        if self._live() is not None and self.labels is not None and self.shown:
            self.labels.update()

    def _on_theme_changed(self) -> None:
        layer = self._live()
        if layer is not None:
            layer.set_colours()
            if self.labels is not None:
                self.labels.set_colours()

    def set_scale(self, scale: float, force: bool = False) -> None:
        """The view's zoom changed: show, fade or hide the overview, hide or show the cards."""
        before = (self.shown, self.only)
        self.scale = scale
        layer = self._live()
        if layer is None:
            self.layer = self.labels = None
            self.scene.set_cards_visible(True)
            return
        fade = (LOD_NAME - scale) / (LOD_NAME - FADE_FROM)
        layer.fade = max(0.0, min(1.0, fade))
        layer.setVisible(self.shown)
        if self.labels is not None:
            self.labels.setVisible(self.shown)
            self.labels.set_scale(scale)
        if force or before != (self.shown, self.only):
            self.scene.set_cards_visible(not self.only)
        if self.shown:
            layer.update()

    def current(self) -> OverviewData | None:
        """The overview of the layout the scene shows now (None before one is built)."""
        layer = self._live()
        if layer is None or self._layout is not self.scene.layout:
            return None
        return layer.data

    def paint_picture(self, painter: QPainter, source: QRectF, sx: float, sy: float) -> bool:
        """Paints the blocks of scene rect ``source`` at scale (``sx``, ``sy``) onto ``painter``
        (the minimap's picture: a few paths instead of one box per image); False if there is no
        overview to paint."""
        data, layer = self.current(), self.layer
        if data is None or layer is None:
            return False
        painter.save()
        painter.scale(sx, sy)
        painter.translate(-source.x(), -source.y())
        paint_blocks(painter, data, layer.styles, source)
        painter.restore()
        return True

    def tree_at(self, pos: QPointF) -> TreeSummary | None:
        """The tree whose block is at scene point ``pos`` (or within a few pixels of it)."""
        data = self.current()
        if not self.shown or data is None:
            return None
        slop = HIT_SLOP / max(self.scale, 1e-6)
        x, y = pos.x(), pos.y()
        best: tuple[float, TreeSummary] | None = None
        for t in data.trees:
            ddx = max(t.x - x, 0.0, x - t.x - t.w)
            ddy = max(t.y - y, 0.0, y - t.y - t.h)
            if ddx <= slop and ddy <= slop:
                d = ddx + ddy
                if d == 0:
                    return t
                if best is None or d < best[0]:
                    best = (d, t)
        return best[1] if best else None


def _data_for(snap, layout: Layout) -> OverviewData:
    """The worker's summaries of ``layout`` when it made them, else made now."""
    made = getattr(snap, "overviews", None) or {}
    data = made.get(id(layout))
    if data is None:
        data = overview_data(layout, snap.status)
    return data
