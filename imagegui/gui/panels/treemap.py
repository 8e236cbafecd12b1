"""The Space view's picture: each image a rectangle whose area is what it and its overlays hold
on disk, nested inside its base, coloured by state as the graph's cards are.

The layout (``core.chains.treemap``) and the rectangles to paint are made on a worker through a
:class:`TaskSlot`, for the widget's size: after a scan, and again when the size settles after a
resize (meanwhile the last picture is stretched to the new size). Painting is one ``drawRects``
per depth and state (parents first, so children lie on top), then the names of the rectangles
big enough to carry one, then the hover and selection outlines: 10,000 images cost a few
milliseconds.

Clicking selects the image in the whole window; the keyboard moves as the graph's arrows do
(Left: the backing file, Right: the largest overlay, Up/Down: the next larger or smaller
sibling), Enter shows the details, the Menu key or Shift+F10 opens the image's menu. The
accessible description follows the selection, as the graph's does.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from html import escape

from PySide6.QtCore import QEvent, QPoint, QPointF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontMetricsF,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
)
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from imagegui.core.chains.nodestate import State, short_name
from imagegui.core.chains.treemap import HEADER, Tile, squarified_forest, tile_at
from imagegui.core.jobs import CancelToken, Job, ProgressFn
from imagegui.core.units import counted, display_path, human_size
from imagegui.gui import theme
from imagegui.gui.panels.chains import is_menu_key
from imagegui.gui.snapshot import Snapshot
from imagegui.gui.workers import TaskSlot

#: Up to this many tiles a filter regroups them at once, beyond it on a worker.
SYNC_TILES = 12000
#: Quiet time after the last resize before the picture is laid out again for the new size.
RELAYOUT_MS = 120
#: Nesting levels that get a fill of their own (deeper ones share the last).
DEPTH_SHADES = 5
#: A rectangle carries its name from this size up (pixels); its size too from ``SIZE_LINE_H``.
LABEL_MIN_W, LABEL_MIN_H = 44.0, 13.0
SIZE_LINE_H = 30.0
LABEL_PX = 11
#: A selected rectangle smaller than this is ringed at this size, so it can be found.
MIN_RING = 9.0


@dataclass
class Picture:
    """One layout of one snapshot at one size, made on a worker."""

    tiles: list[Tile]
    width: int
    height: int
    #: (depth shade, state, rectangles) in painting order: parents below their children.
    batches: list[tuple[int, str, list[QRectF]]] = field(default_factory=list)
    #: path -> index into ``tiles``.
    index: dict[str, int] = field(default_factory=dict)
    #: Per tile: its style key (depth shade, state) and its rectangle (None: empty, not drawn),
    #: to batch again on the GUI thread when the list's filter dims some of them.
    keys: list[tuple[int, str]] = field(default_factory=list)
    rects: list[QRectF | None] = field(default_factory=list)
    seconds: float = 0.0


def image_sizes(snapshot: Snapshot) -> dict[str, int]:
    """What each node holds on disk, as the scan read it (placeholders hold nothing)."""
    scan = snapshot.graph.scan
    sizes = {path: info.actual_size for path, info in scan.images.items()}
    sizes.update((path, info.actual_size) for path, info in scan.external.items())
    return sizes


def lay_out(
    snapshot: Snapshot,
    sizes: Mapping[str, int] | None,
    width: int,
    height: int,
    cancel: CancelToken,
) -> Picture:
    """The treemap of ``snapshot`` in ``width`` x ``height`` pixels and its paint batches;
    ``sizes`` is what each image holds on disk (None: as the scan read it)."""
    t = time.perf_counter()
    if sizes is None:
        sizes = image_sizes(snapshot)
    forest = snapshot.layout.forest
    tiles = squarified_forest(forest.roots, forest.children, sizes, width, height)
    cancel.raise_if_cancelled()
    status = snapshot.status
    index: dict[str, int] = {}
    keys: list[tuple[int, str]] = []
    rects: list[QRectF | None] = []
    for i, tile in enumerate(tiles):
        index[tile.path] = i
        st = status.get(tile.path)
        keys.append((min(tile.depth, DEPTH_SHADES - 1), str(st.state if st else State.OK)))
        empty = tile.w <= 0 or tile.h <= 0
        rects.append(None if empty else QRectF(tile.x, tile.y, tile.w, tile.h))
    pic = Picture(tiles, width, height, index=index, keys=keys, rects=rects)
    pic.batches = batch(pic, None)
    pic.seconds = time.perf_counter() - t
    return pic


#: Appended to a state's name for the style of a tile the list's filter does not match.
DIM = "/dim"


def batch(pic: Picture, matches: set[str] | None) -> list[tuple[int, str, list[QRectF]]]:
    """The rectangles grouped by style in painting order (parents first); with ``matches``,
    the others in their dimmed style."""
    groups: dict[tuple[int, str], list[QRectF]] = {}
    tiles = pic.tiles
    for i, rect in enumerate(pic.rects):
        if rect is None:
            continue
        key = pic.keys[i]
        if matches is not None and tiles[i].path not in matches:
            key = (key[0], key[1] + DIM)
        groups.setdefault(key, []).append(rect)
    return [(d, s, rects) for (d, s), rects in sorted(groups.items())]


def make_layout_job(
    snapshot: Snapshot, sizes: Mapping[str, int] | None, size: QSize
) -> Job[Picture]:
    w, h = size.width(), size.height()

    def run(_progress: ProgressFn, cancel: CancelToken) -> Picture:
        return lay_out(snapshot, sizes, w, h, cancel)

    return Job("Laying out the space picture", run)


@dataclass(frozen=True)
class TileStyle:
    brush: QBrush
    pen: QPen
    text: QColor
    subtext: QColor


@cache
def _styles(_key: int) -> dict[tuple[int, str], TileStyle]:
    """Every (depth shade, state) style for the palette whose cache key is ``_key``: the card's
    hue, its tint deepening with the nesting so a clone stands out inside its base."""
    t = theme.current()
    out: dict[tuple[int, str], TileStyle] = {}
    for state in theme.state_names():
        card = t.card(state)
        for depth in range(DEPTH_SHADES):
            amount = (0.16 if not t.dark else 0.22) + depth * (0.09 if not t.dark else 0.07)
            placeholder = card.pen.style() != Qt.PenStyle.SolidLine  # missing: nothing inside
            fill = t.base if placeholder else theme.mix(t.base, card.border, amount)
            pen = QPen(theme.mix(card.border, fill, 0.25), 1.0, card.pen.style())
            pen.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
            text = theme.readable(t.text, fill)
            out[(depth, state)] = TileStyle(
                QBrush(fill), pen, text, theme.readable(theme.mix(text, fill, 0.3), fill)
            )
            dim = theme.mix(fill, t.scene_bg, 0.7)
            dim_pen = QPen(theme.mix(pen.color(), t.scene_bg, 0.6), 1.0, card.pen.style())
            dim_text = theme.readable(t.muted, dim)
            out[(depth, state + DIM)] = TileStyle(QBrush(dim), dim_pen, dim_text, dim_text)
    return out


def styles() -> dict[tuple[int, str], TileStyle]:
    from PySide6.QtGui import QGuiApplication

    return _styles(QGuiApplication.palette().cacheKey())


@cache
def _label_font() -> tuple[QFont, QFontMetricsF, QFont, QFontMetricsF]:
    name = QFont()
    name.setPixelSize(LABEL_PX)
    name.setBold(True)
    small = QFont()
    small.setPixelSize(LABEL_PX - 1)
    return name, QFontMetricsF(name), small, QFontMetricsF(small)


class TreemapView(QWidget):
    """The picture; ``nodeClicked`` asks the window to select an image."""

    nodeClicked = Signal(str)
    nodeActivated = Signal(str)
    contextMenuRequested = Signal(str, QPoint)
    #: A picture for the current snapshot and size is ready (then painted).
    laidOut = Signal()
    #: The current picture has been painted (the benchmark and the screenshots wait for it).
    drawn = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setAccessibleName("Disk space by image")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(160, 120)
        self.snapshot: Snapshot | None = None
        #: What each image holds on disk; None: as the scan read it (worked out on the worker).
        self.sizes: Mapping[str, int] | None = None
        #: What the tooltip adds per image (guest data, shadowed), from the space report.
        self.extra: Mapping[str, str] = {}
        self.picture: Picture | None = None
        #: The chains list's filter matches (None: no filter): the others are drawn dimmed.
        self.matches: set[str] | None = None
        self._batches: list[tuple[int, str, list[QRectF]]] = []
        #: Images drawn hatched (reclaimable), and their rectangles in the current picture.
        self.marked: set[str] = set()
        self._marked_rects: list[QRectF] = []
        self.selected: str | None = None
        self.hovered = -1
        self._stale = False
        self._painted_for: Picture | None = None
        self._labels: dict[int, tuple[str, str]] = {}
        self._slot = TaskSlot(self, on_done=self._on_laid_out)
        #: The tiles regrouped for a new filter (``_rebatch``), and whether that waits for a show.
        self._dim_slot = TaskSlot(self, on_done=self._on_rebatched)
        self._batches_stale = False
        self._batches_of: Picture | None = None
        self._relayout = QTimer(self)
        self._relayout.setSingleShot(True)
        self._relayout.timeout.connect(self._start_layout)
        theme.watcher().changed.connect(self.update)

    # -- content

    def set_snapshot(self, snapshot: Snapshot | None, sizes: Mapping[str, int] | None = None):
        """Shows ``snapshot`` (laid out on a worker; at once if visible, else when shown)."""
        self.snapshot = snapshot
        self.sizes = sizes
        self.hovered = -1
        self._stale = True
        if snapshot is None:
            self._slot.discard()
            self._set_picture(None)
        elif self.isVisible():
            self._start_layout()

    def set_matches(self, matches: set[str] | None) -> None:
        """Dims every image the list's filter does not match (None: none dimmed): regrouped
        when next painted, on a worker past ``SYNC_TILES`` tiles (a filter keystroke at
        100,000 images is no pass over every tile on this thread)."""
        if matches is None and self.matches is None:
            return
        self.matches = matches  # the list's own set: never changed once made
        self._rebatch()

    def _rebatch(self) -> None:
        """Groups the tiles for the filter (while hidden: once shown again)."""
        pic, matches = self.picture, self.matches
        self._dim_slot.discard()
        self._batches_stale = False
        if pic is None:
            self._batches = []
        elif matches is None:
            self._batches = pic.batches
        elif not self.isVisible():
            self._batches_stale = True
            return
        elif len(pic.tiles) <= SYNC_TILES:
            self._batches = batch(pic, matches)
        else:
            if self._batches_of is not pic:  # a new picture: undimmed until the worker is done
                self._batches = pic.batches
            self._dim_slot.start(
                Job("Dimming the tiles the filter leaves out", lambda _p, _c: batch(pic, matches))
            )
            self._batches_of = pic
            return
        self._batches_of = pic
        self.update()

    def _on_rebatched(self, batches: list[tuple[int, str, list[QRectF]]]) -> None:
        self._batches = batches
        self.update()

    def set_marked(self, paths: set[str]) -> None:
        """Hatches these images' rectangles (the reclaimable ones)."""
        self.marked = set(paths)
        self._collect_marked()
        self.update()

    def _collect_marked(self) -> None:
        pic = self.picture
        self._marked_rects = []
        if pic is None:
            return
        for path in self.marked:
            i = pic.index.get(path)
            if i is not None and pic.tiles[i].w > 0 and pic.tiles[i].h > 0:
                t = pic.tiles[i]
                self._marked_rects.append(QRectF(t.x, t.y, t.w, t.h))

    def select(self, node: str | None) -> None:
        if node == self.selected:
            return
        old = self._tile_rect(self.selected)
        self.selected = node
        for rect in (old, self._tile_rect(node)):
            if rect is not None:
                self.update(rect.adjusted(-MIN_RING, -MIN_RING, MIN_RING, MIN_RING).toRect())

    @property
    def tiles(self) -> list[Tile]:
        return self.picture.tiles if self.picture is not None else []

    def tile_of(self, node: str) -> Tile | None:
        pic = self.picture
        if pic is None or node not in pic.index:
            return None
        return pic.tiles[pic.index[node]]

    def node_at(self, pos: QPointF) -> str | None:
        i = self._index_at(pos)
        return self.tiles[i].path if i >= 0 else None

    def _index_at(self, pos: QPointF) -> int:
        pic = self.picture
        if pic is None or self.width() <= 0 or self.height() <= 0:
            return -1
        sx, sy = pic.width / self.width(), pic.height / self.height()
        return tile_at(pic.tiles, pos.x() * sx, pos.y() * sy)

    def _tile_rect(self, node: str | None) -> QRectF | None:
        tile = self.tile_of(node) if node else None
        pic = self.picture
        if tile is None or pic is None:
            return None
        sx, sy = self.width() / max(1, pic.width), self.height() / max(1, pic.height)
        return QRectF(tile.x * sx, tile.y * sy, tile.w * sx, tile.h * sy)

    # -- layout on the worker

    def _start_layout(self) -> None:
        if self.snapshot is None or self.width() <= 0 or self.height() <= 0:
            return
        self._stale = False
        self._slot.start(make_layout_job(self.snapshot, self.sizes, self.size()))

    def _on_laid_out(self, picture: Picture) -> None:
        self._set_picture(picture)
        self.laidOut.emit()

    def _set_picture(self, picture: Picture | None) -> None:
        self.picture = picture
        self._labels = {}
        self.hovered = -1
        self._collect_marked()
        self._rebatch()
        self.update()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._batches_stale:
            self._rebatch()
        if self._stale or (self.picture is not None and self._size_changed()):
            self._start_layout()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self.snapshot is not None and self.isVisible():
            self._relayout.start(RELAYOUT_MS)

    def _size_changed(self) -> bool:
        pic = self.picture
        return pic is not None and (pic.width, pic.height) != (self.width(), self.height())

    # -- painting

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        t = theme.current()
        painter.fillRect(self.rect(), t.scene_bg)
        pic = self.picture
        if pic is None:
            self._paint_message(painter, t)
            painter.end()
            return
        exact = (pic.width, pic.height) == (self.width(), self.height())
        if not exact:  # the picture of the old size, stretched until the new one is laid out
            painter.scale(self.width() / max(1, pic.width), self.height() / max(1, pic.height))
        style = styles()
        for depth, state, rects in self._batches:
            s = style.get((depth, state)) or style[(depth, "ok")]
            painter.setBrush(s.brush)
            painter.setPen(s.pen)
            painter.drawRects(rects)
        if self._marked_rects:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QBrush(t.muted, Qt.BrushStyle.BDiagPattern))
            painter.drawRects(self._marked_rects)
        if exact:
            self._paint_labels(painter, pic, QRectF(event.rect()))
        painter.resetTransform()
        self._paint_outlines(painter, t)
        painter.end()
        if exact and self._painted_for is not pic:
            self._painted_for = pic
            self.drawn.emit()

    def _paint_message(self, painter: QPainter, t: theme.Theme) -> None:
        if self.snapshot is None:
            text = "Open a directory to see where its disk space goes."
        elif not self.snapshot.graph.nodes:
            text = "No disk images here."
        else:
            text = "Laying out…"
        painter.setPen(t.muted)
        painter.drawText(QRectF(self.rect()), Qt.AlignmentFlag.AlignCenter, text)

    def _paint_labels(self, painter: QPainter, pic: Picture, exposed: QRectF) -> None:
        name_font, name_fm, small_font, small_fm = _label_font()
        style = styles()
        status = self.snapshot.status if self.snapshot is not None else {}
        tiles = pic.tiles
        i, n = 0, len(tiles)
        while i < n:
            tile = tiles[i]
            if tile.w < LABEL_MIN_W or tile.h < LABEL_MIN_H:
                i = tile.end  # nothing inside is bigger
                continue
            rect = QRectF(tile.x, tile.y, tile.w, tile.h)
            if not rect.intersects(exposed):
                i = tile.end
                continue
            st = status.get(tile.path)
            state = str(st.state if st else "ok")
            if self.matches is not None and tile.path not in self.matches:
                state += DIM
            s = style.get((min(tile.depth, DEPTH_SHADES - 1), state))
            if s is None:
                s = style[(0, "ok")]
            name, size = self._label(i, tile, name_fm, small_fm)
            band = min(HEADER, tile.h * 0.3) if tile.end > i + 1 else 15.0
            if name and band >= LABEL_MIN_H - 1:
                painter.setFont(name_font)
                painter.setPen(s.text)
                painter.drawText(
                    QRectF(tile.x + 4, tile.y + 1, tile.w - 8, band - 1),
                    Qt.AlignmentFlag.AlignVCenter,
                    name,
                )
            if size and tile.end == i + 1 and tile.h >= SIZE_LINE_H:
                painter.setFont(small_font)
                painter.setPen(s.subtext)
                painter.drawText(
                    QRectF(tile.x + 4, tile.y + 15, tile.w - 8, 13),
                    Qt.AlignmentFlag.AlignVCenter,
                    size,
                )
            i += 1

    def _label(
        self, i: int, tile: Tile, name_fm: QFontMetricsF, small_fm: QFontMetricsF
    ) -> tuple[str, str]:
        """The name (with the chain's size beside it on a parent, when it fits) and the size
        line of a leaf, elided to the rectangle; cached per picture."""
        cached = self._labels.get(i)
        if cached is None:
            width = tile.w - 8
            name = display_path(short_name(tile.path))
            size = human_size(tile.total)
            parent = tile.end > i + 1
            if parent and name_fm.horizontalAdvance(f"{name} · {size}") <= width:
                cached = (f"{name} · {size}", "")
            else:
                elided = name_fm.elidedText(name, Qt.TextElideMode.ElideMiddle, width)
                stem = _stem(name)
                if elided != name and stem != name:  # "web-2024-03" says more than "web-…cow2"
                    elided = name_fm.elidedText(stem, Qt.TextElideMode.ElideMiddle, width)
                if len(elided) < 4:
                    elided = ""
                cached = (elided, small_fm.elidedText(size, Qt.TextElideMode.ElideRight, width))
            self._labels[i] = cached
        return cached

    def _paint_outlines(self, painter: QPainter, t: theme.Theme) -> None:
        painter.setBrush(Qt.BrushStyle.NoBrush)
        if 0 <= self.hovered < len(self.tiles):
            rect = self._tile_rect(self.tiles[self.hovered].path)
            if rect is not None and rect.width() > 0:
                glow = QColor(t.selection)
                glow.setAlphaF(0.16)
                painter.fillRect(rect, glow)
                painter.setPen(QPen(t.selection, 1.5))
                painter.drawRect(rect.adjusted(0.75, 0.75, -0.75, -0.75))
        rect = self._tile_rect(self.selected)
        if rect is not None:
            if rect.width() < MIN_RING or rect.height() < MIN_RING:
                c = rect.center()
                rect = QRectF(c.x() - MIN_RING / 2, c.y() - MIN_RING / 2, MIN_RING, MIN_RING)
            halo = QPen(t.base, 5.0)
            halo.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
            painter.setPen(halo)
            painter.drawRect(rect.adjusted(1.25, 1.25, -1.25, -1.25))
            ring = QPen(t.selection, 2.5)
            ring.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
            painter.setPen(ring)
            painter.drawRect(rect.adjusted(1.25, 1.25, -1.25, -1.25))
        if self.hasFocus() and self.selected is None:  # where the keyboard is, with nothing chosen
            painter.setPen(QPen(t.text, 1, Qt.PenStyle.DotLine))
            painter.drawRect(QRectF(self.rect()).adjusted(0.5, 0.5, -1.5, -1.5))

    # -- mouse

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        i = self._index_at(event.position())
        if i != self.hovered:
            for j in (self.hovered, i):
                if 0 <= j < len(self.tiles):
                    rect = self._tile_rect(self.tiles[j].path)
                    if rect is not None:
                        self.update(rect.adjusted(-2, -2, 2, 2).toAlignedRect())
            self.hovered = i
        super().mouseMoveEvent(event)

    def leaveEvent(self, event) -> None:
        if self.hovered >= 0:
            self.hovered = -1
            self.update()
        super().leaveEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        node = self.node_at(event.position())
        if node is not None and event.button() in (
            Qt.MouseButton.LeftButton,
            Qt.MouseButton.RightButton,
        ):
            self.nodeClicked.emit(node)
        super().mousePressEvent(event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        node = self.node_at(event.position())
        if node is not None:
            self.nodeActivated.emit(node)
            event.accept()
            return
        super().mouseDoubleClickEvent(event)

    def contextMenuEvent(self, event) -> None:
        if event.reason() != event.Reason.Mouse:
            self.open_menu_for_selected()
            return
        node = self.node_at(QPointF(event.pos()))
        if node is not None:
            self.nodeClicked.emit(node)
            self.contextMenuRequested.emit(node, event.globalPos())

    def open_menu_for_selected(self) -> bool:
        rect = self._tile_rect(self.selected)
        if self.selected is None or rect is None:
            return False
        self.contextMenuRequested.emit(self.selected, self.mapToGlobal(rect.center().toPoint()))
        return True

    def event(self, e) -> bool:
        if e.type() == QEvent.Type.ToolTip:
            node = self.node_at(QPointF(e.pos()))
            if node is None or self.snapshot is None:
                QToolTip.hideText()
                e.ignore()
                return True
            rect = self._tile_rect(node)
            QToolTip.showText(
                e.globalPos(),
                self.tooltip(node),
                self,
                rect.toAlignedRect() if rect is not None else self.rect(),
            )
            return True
        return super().event(e)

    def tooltip(self, node: str) -> str:
        """Name, state, what it holds on disk (and with its overlays), and the space report's
        figures once read."""
        snap = self.snapshot
        tile = self.tile_of(node)
        if snap is None or tile is None:
            return ""
        lines = [f"<b>{escape(display_path(short_name(node)))}</b>"]
        status = snap.status.get(node)
        if status is not None:
            lines.append(escape(status.label()))
        _, info = snap.graph.nodes[node]
        if info is None:
            lines.append("Not a file here: holds nothing")
        else:
            lines.append(f"On disk: {human_size(tile.own)}")
        assert self.picture is not None
        overlays = tile.end - self.picture.index[node] - 1
        share = _percent(tile.total, self._grand_total())
        if overlays:
            lines.append(
                f"With its {counted(overlays, 'overlay')}: {human_size(tile.total)} "
                f"({share} of all shown)"
            )
        elif tile.depth == 0:
            lines.append(f"{share} of all shown")
        extra = self.extra.get(node)
        if extra:
            lines.append(extra)
        reason = status.chain_reason(node) if status is not None else None
        if reason:
            lines.append(f"<b>qemu cannot open it</b>: {escape(display_path(reason))}")
        return "<p style='white-space:pre'>" + "<br>".join(lines) + "</p>"

    def _grand_total(self) -> int:
        return sum(t.total for t in self.tiles if t.parent < 0)

    # -- keyboard

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if is_menu_key(event) and self.open_menu_for_selected():
            event.accept()
            return
        mods = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        if key in _NAV_KEYS and mods == Qt.KeyboardModifier.NoModifier:
            target = self.neighbour(key)
            if target is not None:
                self.nodeClicked.emit(target)
            event.accept()
            return
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.selected:
            self.nodeActivated.emit(self.selected)
            event.accept()
            return
        super().keyPressEvent(event)

    def neighbour(self, key: int) -> str | None:
        """Where an arrow key goes from the selection: Left its backing file, Right its largest
        overlay, Up / Down the next larger / smaller image beside it (nothing selected: the
        largest base)."""
        tiles = self.tiles
        if not tiles:
            return None
        pic = self.picture
        assert pic is not None
        i = pic.index.get(self.selected or "", -1)
        if i < 0:
            return tiles[0].path
        tile = tiles[i]
        if key == Qt.Key.Key_Left:
            return tiles[tile.parent].path if tile.parent >= 0 else None
        if key == Qt.Key.Key_Right:
            return tiles[i + 1].path if tile.end > i + 1 else None
        siblings = _children(tiles, tile.parent)
        at = siblings.index(i)
        step = -1 if key == Qt.Key.Key_Up else 1
        if 0 <= at + step < len(siblings):
            return tiles[siblings[at + step]].path
        return None

    def focusInEvent(self, event) -> None:
        super().focusInEvent(event)
        self.update()

    def focusOutEvent(self, event) -> None:
        super().focusOutEvent(event)
        self.update()


_NAV_KEYS = (Qt.Key.Key_Left, Qt.Key.Key_Right, Qt.Key.Key_Up, Qt.Key.Key_Down)


def _children(tiles: list[Tile], parent: int) -> list[int]:
    """Indexes of ``parent``'s children (-1: the bases), in layout order (largest first)."""
    i = parent + 1 if parent >= 0 else 0
    end = tiles[parent].end if parent >= 0 else len(tiles)
    out = []
    while i < end:
        out.append(i)
        i = tiles[i].end
    return out


#: Extensions a cramped label drops before it elides the name.
_EXTENSIONS = (".qcow2", ".qcow", ".qed", ".vmdk", ".vhdx", ".vhd", ".img", ".raw")


def _stem(name: str) -> str:
    for ext in _EXTENSIONS:
        if name.endswith(ext) and len(name) > len(ext):
            return name[: -len(ext)]
    return name


def _percent(part: int, whole: int) -> str:
    if whole <= 0:
        return "0 %"
    pct = 100 * part / whole
    return f"{pct:.0f} %" if pct >= 1 or part == 0 else "under 1 %"
