"""What a card shows and in which colours; painted per tree, by level of detail.

Zoomed far out a card is only its coloured box (painted by Qt in C++), and a broken or unusable
one also gets a marker of a fixed size on screen (:class:`MarkerLayer`), so it can be found among
10,000. From ``LOD_NAME`` up the layer writes the name in a font that grows as the zoom shrinks
(up to two lines, elided in the middle), so names stay legible at Fit for a hundred images; from
``LOD_DETAIL`` up the state icon, the format, both sizes, the badges and, for a broken card, the
one-line reason. Only cards inside the exposed rectangle are painted, so a tree of 1,000 overlays
costs what its visible part costs.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, QPointF, QRectF, Qt
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontMetricsF,
    QPainter,
    QPen,
    QPixmap,
    QPolygonF,
)
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from imagegui.core.chains.layout import NODE_H, NODE_W
from imagegui.core.chains.nodestate import NodeStatus, State, short_name
from imagegui.core.units import display_path, human_size
from imagegui.gui import resources, theme
from imagegui.gui.panels.chains_model import STATE_ICON
from imagegui.gui.snapshot import BROKEN, holder_label, uses_label, uses_parts

if TYPE_CHECKING:
    from imagegui.gui.graph.scene import ChainScene

#: Zoom levels (scene-to-screen scale) from which text is worth painting: the name alone from
#: ``LOD_NAME`` (in a font of at least ``NAME_PX`` screen pixels while it fits the card), the
#: detail lines from ``LOD_DETAIL``.
LOD_NAME = 0.18
LOD_DETAIL = 0.6
#: Below this zoom a card is too small to find by its colour and shows no name: broken ones get
#: a marker (above it the marker would cover the name).
LOD_MARKER = LOD_NAME
#: The on-screen pixel size the name's font aims for between ``LOD_NAME`` and ``LOD_DETAIL``.
NAME_PX = 9.0
#: Name font sizes (scene units) the compact card uses: a few, so elided texts can be cached.
COMPACT_SIZES = (16, 18, 20, 23, 26, 30)


def is_broken(status: NodeStatus) -> bool:
    return status.state in BROKEN or status.broken_at is not None


def _style(state: State) -> tuple[QBrush, QPen, QColor]:
    """Fill, border pen and border colour of a state's card, from the palette (gui/theme.py)."""
    card = theme.current().card(state)
    return card.brush, card.pen, card.border


def palette(status: NodeStatus) -> tuple[QBrush, QPen]:
    """Brush and pen for a card box; shared objects, so 10,000 cards cost 9 brushes."""
    return box_style(status.state)


def box_style(state: State) -> tuple[QBrush, QPen]:
    """Brush and pen of the boxes of the cards in ``state``."""
    brush, pen, _ = _style(state)
    return brush, pen


@cache
def _fonts() -> tuple[QFont, QFont, QFontMetricsF, QFontMetricsF]:
    name = QFont()
    name.setPixelSize(14)
    name.setBold(True)
    small = QFont()
    small.setPixelSize(12)
    return name, small, QFontMetricsF(name), QFontMetricsF(small)


@cache
def _compact_font(px: int) -> tuple[QFont, QFontMetricsF]:
    """The zoomed-out name: regular weight, slightly condensed, so more of it fits the card."""
    font = QFont()
    font.setPixelSize(px)
    font.setStretch(QFont.Stretch.SemiCondensed)
    return font, QFontMetricsF(font)


def compact_size(lod: float) -> int:
    """The name's font size (scene units) at zoom ``lod``: ``NAME_PX`` on screen where it fits."""
    want = NAME_PX / max(lod, 1e-6)
    for px in COMPACT_SIZES:
        if px >= want:
            return px
    return COMPACT_SIZES[-1]


@cache
def vm_marker(colour: str) -> QPixmap:
    """The "a VM uses it" marker (32 px, drawn at 16) in ``colour``: the card's text colour, which
    the theme keeps readable on the card's fill, light or dark."""
    svg = resources.icon_path("vm").read_text(encoding="utf-8").replace(theme.ICON_INK, colour)
    pm = QPixmap(32, 32)
    pm.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pm)
    QSvgRenderer(QByteArray(svg.encode())).render(painter)
    painter.end()
    return pm


def compact_marker(px: int) -> float:
    """The VM marker's size (scene units) on a zoomed-out card whose name is ``px`` high."""
    return px * 1.1


def card_reason(snapshot, node: str) -> str | None:
    """Why a broken card's chain cannot be opened, in one short line (None while it can): the
    chain state's reason, without the kind for an image above the break (the tooltip and the
    details say it; the card has room for where, and where is what the user looks for)."""
    status = snapshot.status[node]
    if status.state is State.UNUSABLE and status.broken_at is not None:
        return f"chain broken below: {short_name(status.broken_at)}"
    return status.chain_reason(node)


def fit_reason(reason: str, fm: QFontMetricsF, width: float) -> str:
    """The reason in ``width``: "chain broken below: X" loses "chain " first, then the middle."""
    if fm.horizontalAdvance(reason) > width and reason.startswith("chain broken below: "):
        reason = reason[len("chain ") :]
    return fm.elidedText(reason, Qt.TextElideMode.ElideMiddle, width)


def key_has_reason(cache: dict, node: str, px: int) -> bool:
    """Whether ``compact_lines`` made the second line a reason (noted under ``-px``)."""
    return (node, -px) in cache


def _wrap_name(name: str, fm: QFontMetricsF, width: float) -> tuple[str, ...]:
    """One line when it fits, else two, broken after a ``-``, ``_``, ``.`` or space so that both
    halves fit (the most even such break); failing that the longest first line and the rest
    elided in the middle."""
    if fm.horizontalAdvance(name) <= width:
        return (name,)
    best = None
    for i, ch in enumerate(name[:-1], 1):
        if ch in "-_. /":
            head, tail = fm.horizontalAdvance(name[:i]), fm.horizontalAdvance(name[i:])
            if head <= width and tail <= width:
                score = abs(head - tail)
                if best is None or score < best[0]:
                    best = (score, i)
    if best is not None:
        return name[: best[1]], name[best[1] :]
    cut = len(name)
    while cut > 1 and fm.horizontalAdvance(name[:cut]) > width:
        cut -= 1
    for i in range(cut, max(1, cut - 8), -1):
        if name[i - 1] in "-_. /":
            cut = i
            break
    return name[:cut], fm.elidedText(name[cut:], Qt.TextElideMode.ElideMiddle, width)


class CardLayer(QGraphicsItem):
    """Paints the text, icons and badges of one tree's cards. Hidden by the view below
    ``LOD_NAME`` (then Qt does not even call it); the boxes and the selection ring are other
    items. Its cards' rectangles are worked out when first painted (a tree never scrolled to
    costs nothing), in the coordinates the tree was drawn at (a rescan that moves the tree only
    moves the item)."""

    def __init__(self, scene: ChainScene, index: int, box: QRectF):
        super().__init__()
        self._scene = scene
        #: The tree's index in the scene's layout (a rescan may change it).
        self.index = index
        self._rects: list[tuple[str, QRectF]] | None = None
        self._origin = box.topLeft()
        self._bounds = box.adjusted(-10, -10, 10, 10)
        self._elided: dict[str, str] = {}
        self._compact_cache: dict[tuple[str, int], tuple[str, ...]] = {}
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)

    @property
    def rects(self) -> list[tuple[str, QRectF]]:
        """(node, card rectangle in this item's coordinates) for each card of the tree."""
        if self._rects is None:
            layout = self._scene.layout
            assert layout is not None
            comp = layout.components[self.index]
            # Where the tree was when this item was made, wherever the layout has it now.
            dx, dy = comp.x - self._origin.x(), comp.y - self._origin.y()
            pos = layout.positions
            self._rects = [
                (n, QRectF(pos[n][0] - dx, pos[n][1] - dy, NODE_W, NODE_H)) for n in comp.nodes
            ]
        return self._rects

    def boundingRect(self) -> QRectF:
        return self._bounds

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ):
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        if lod < LOD_NAME:
            return
        exposed = option.exposedRect
        detail = lod >= LOD_DETAIL
        px = 0 if detail else compact_size(lod)
        matches = self._scene.matches
        status = self._scene.snapshot.status  # type: ignore[union-attr]
        painter.setBrush(Qt.BrushStyle.NoBrush)
        for node, rect in self.rects:
            if rect.intersects(exposed):
                dim = matches is not None and node not in matches
                painter.setOpacity(0.3 if dim else 1.0)  # no saved state: set it every time
                # The box's border (the box item only fills: a path's outline costs far more
                # to draw zoomed out, where the border is thinner than a pixel anyway).
                painter.setPen(_style(status[node].state)[1])
                painter.drawRect(rect)
                if detail:
                    self._card(painter, node, rect)
                else:
                    self._paint_compact(painter, node, rect, px)
        painter.setOpacity(1.0)

    def compact_lines(self, node: str, px: int) -> tuple[str, ...]:
        """The lines a card shows zoomed out (font ``px``): its name, and for a broken card the
        reason (the name then gets one line)."""
        key = (node, px)
        lines = self._compact_cache.get(key)
        if lines is None:
            snap = self._scene.snapshot
            assert snap is not None
            _, fm = _compact_font(px)
            width = NODE_W - 16 - (compact_marker(px) + 4) * (node in snap.domains)
            name = display_path(short_name(node))
            reason = card_reason(snap, node)
            if reason:
                _, small = _compact_font(int(px * 0.8))
                lines = (
                    fm.elidedText(name, Qt.TextElideMode.ElideMiddle, width),
                    fit_reason(reason, small, width),
                )
                self._compact_cache[(node, -px)] = ("reason",)
            else:
                lines = _wrap_name(name, fm, width)
            self._compact_cache[key] = lines
        return lines

    def _paint_compact(self, painter: QPainter, node: str, rect: QRectF, px: int) -> None:
        snap = self._scene.snapshot
        assert snap is not None
        status = snap.status[node]
        _, _, border = _style(status.state)
        x, y = rect.x(), rect.y()
        painter.fillRect(QRectF(x, y, 6, NODE_H), border)
        lines = self.compact_lines(node, px)
        font, _ = _compact_font(px)
        painter.setPen(theme.current().card(status.state).text)
        painter.setFont(font)
        line_h = min(px * 1.12, (NODE_H - 2) / 2)
        top = y + (NODE_H - line_h * len(lines)) / 2
        if node in snap.domains:  # a libvirt VM uses it: the marker, as tall as the text
            size = compact_marker(px)
            colour = theme.current().card(status.state).text
            painter.drawPixmap(
                QRectF(x + NODE_W - size - 4, y + 4, size, size),
                vm_marker(colour.name()),
                QRectF(0, 0, 32, 32),
            )
        for i, line in enumerate(lines):
            if i == 1 and key_has_reason(self._compact_cache, node, px):
                small, _ = _compact_font(int(px * 0.8))
                painter.setFont(small)
            painter.drawText(
                QRectF(x + 12, top + i * line_h, NODE_W - 14, line_h),
                Qt.AlignmentFlag.AlignVCenter,
                line,
            )

    def _card(self, painter: QPainter, node: str, rect: QRectF) -> None:
        snap = self._scene.snapshot
        assert snap is not None
        status = snap.status[node]
        _, _, border = _style(status.state)
        name_font, small_font, name_fm, _ = _fonts()
        x, y = rect.x(), rect.y()
        painter.fillRect(QRectF(x, y, 6, NODE_H), border)
        painter.drawPixmap(
            QRectF(x + 14, y + 9, 20, 20),
            resources.pixmap(STATE_ICON[status.state], 20, 2.0),
            QRectF(0, 0, 40, 40),
        )
        used = node in snap.domains
        if used:  # a libvirt VM uses it: its marker in the corner, the line below says which
            painter.drawPixmap(
                QRectF(x + NODE_W - 24, y + 10, 16, 16),
                vm_marker(theme.current().card(status.state).text.name()),
                QRectF(0, 0, 32, 32),
            )
        name = self._elided.get(node)
        if name is None:
            name = name_fm.elidedText(
                display_path(short_name(node)),
                Qt.TextElideMode.ElideMiddle,
                NODE_W - 50 - 22 * used,
            )
            self._elided[node] = name
        colours = theme.current().card(status.state)
        painter.setPen(colours.text)
        painter.setFont(name_font)
        painter.drawText(
            QRectF(x + 40, y + 8, NODE_W - 48, 22), Qt.AlignmentFlag.AlignVCenter, name
        )
        painter.setFont(small_font)
        painter.setPen(colours.subtext)
        line1, line2, broken = self.detail_lines(node)
        painter.drawText(
            QRectF(x + 14, y + 32, NODE_W - 20, 16), Qt.AlignmentFlag.AlignVCenter, line1
        )
        if broken:
            painter.setPen(colours.text)
        painter.drawText(
            QRectF(x + 14, y + 47, NODE_W - 20, 16), Qt.AlignmentFlag.AlignVCenter, line2
        )
        badges = []
        if status.in_use and status.state is not State.IN_USE:
            badges.append("state-in-use")
        if status.unused_base and status.state is not State.UNUSED_BASE:
            badges.append("state-unused")
        if status.warnings and status.state is State.ERROR:
            badges.append("state-warning")
        bx = x + NODE_W - 22
        for badge in badges:
            painter.drawPixmap(
                QRectF(bx, y + 44, 16, 16), resources.pixmap(badge, 16, 2.0), QRectF(0, 0, 32, 32)
            )
            bx -= 19

    def detail_lines(self, node: str) -> tuple[str, str, bool]:
        """The two small lines under the name at full detail; a broken card's second line is
        its reason (then True)."""
        key = "\0" + node
        cached = self._elided.get(key)
        if cached is None:
            snap = self._scene.snapshot
            assert snap is not None
            status = snap.status[node]
            _, _, _, small_fm = _fonts()
            line1, line2 = _detail_lines(node, snap.graph.nodes[node], status)
            used = uses_label(snap.domains.get(node))
            if status.in_use and (who := holder_label(snap.holders.get(node))):
                line2 = f"in use ({'rw' if status.writer else 'ro'}) by {display_path(who)}"
            elif used:  # the size moves up: which VM uses it is what the card must say
                line1 = f"{line1} · {line2}" if line2.startswith("disk ") else line1
                line2 = ""
            reason = card_reason(snap, node)
            width = NODE_W - 20 - 19 * _badge_count(status)
            line1 = small_fm.elidedText(line1, Qt.TextElideMode.ElideRight, NODE_W - 20)
            if reason:
                line2 = fit_reason(reason, small_fm, width)
            elif not line2:
                line2 = fit_used(snap.domains.get(node), small_fm, width)
            else:
                line2 = small_fm.elidedText(line2, Qt.TextElideMode.ElideMiddle, width)
            cached = line1 + "\0" + line2 + "\0" + ("1" if reason else "")
            self._elided[key] = cached
        line1, line2, broken = cached.split("\0")
        return line1, line2, bool(broken)


def fit_used(uses, fm: QFontMetricsF, width: float) -> str:
    """``used by web01 (shut off)`` in ``width``: the VM's name is shortened, never its state."""
    name, rest = uses_parts(uses)
    head = "used by "
    room = width - fm.horizontalAdvance(head) - fm.horizontalAdvance(rest)
    return head + fm.elidedText(display_path(name), Qt.TextElideMode.ElideMiddle, room) + rest


def _badge_count(status: NodeStatus) -> int:
    return (
        (status.in_use and status.state is not State.IN_USE)
        + (status.unused_base and status.state is not State.UNUSED_BASE)
        + (status.warnings > 0 and status.state is State.ERROR)
    )


def _detail_lines(node: str, entry: tuple, status: NodeStatus) -> tuple[str, str]:
    kind, info = entry
    if info is None:
        what = {
            State.MISSING: "missing: moved or deleted?",
            State.PROTOCOL: "network / protocol source",
            State.UNREADABLE: "not a readable image",
        }.get(status.state, kind)
        where = node.rsplit("/", 1)[0] if "/" in node and "://" not in node else node
        return what, display_path(where)
    line1 = f"{info.format} · {human_size(info.virtual_size)}"
    line2 = f"disk {human_size(info.actual_size)}"
    if status.in_use:
        line2 += " · in use" + (" (rw)" if status.writer else " (ro)")
    elif status.unused_base:
        line2 += " · unused base"
    return line1, line2


class MarkerLayer(QGraphicsItem):
    """A dot of a fixed size on screen at every broken card (large) and every card above a break
    (smaller), so trouble is found by looking at 10,000 images zoomed out. One item and two
    ``drawPoints`` calls with wide cosmetic pens: Qt draws them all in C++."""

    def __init__(
        self, bounds: QRectF, breaks: QPolygonF | list[QPointF], above: QPolygonF | list[QPointF]
    ):
        super().__init__()
        self._bounds = bounds
        self.breaks = QPolygonF(breaks)
        self.above = QPolygonF(above)
        self.setZValue(5)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self._pens: list[tuple[QPolygonF, QPen]] = []
        self.set_colours()

    def set_colours(self) -> None:
        """Error hue on a halo of the base colour (so a dot shows on any card), from the theme."""
        t = theme.current()
        red, halo = t.card(State.ERROR).border, t.base
        self._pens = []
        # Every halo first, then every dot: a neighbour's halo never hides a dot.
        for colour, grow in ((halo, 3.0), (red, 0.0)):
            for points, size in ((self.above, 7.0), (self.breaks, 11.0)):
                pen = QPen(colour, size + grow, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap)
                pen.setCosmetic(True)
                self._pens.append((points, pen))
        self.update()

    def count(self) -> int:
        return self.breaks.size() + self.above.size()

    def boundingRect(self) -> QRectF:
        return self._bounds

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ):
        smooth = painter.testRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)  # round dots
        for points, pen in self._pens:
            if points.size():
                painter.setPen(pen)
                painter.drawPoints(points)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, smooth)
