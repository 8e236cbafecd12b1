"""What a card shows and in which colours; painted per tree, by level of detail.

Zoomed far out a card is only its coloured box (painted by Qt in C++). From ``LOD_NAME`` up the
layer writes the name and the state icon, from ``LOD_DETAIL`` up the format, both sizes and the
badges. Only cards inside the exposed rectangle are painted, so a tree of 1,000 overlays costs
what its visible part costs.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QPainter, QPen
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from imagegui.core.layout import NODE_H, NODE_W
from imagegui.core.nodestate import NodeStatus, State, short_name
from imagegui.core.units import display_path, human_size
from imagegui.gui import resources, theme
from imagegui.gui.models import STATE_ICON

if TYPE_CHECKING:
    from imagegui.gui.chain_scene import ChainScene

#: Zoom levels (scene-to-screen scale) from which text is worth painting.
LOD_NAME = 0.42
LOD_DETAIL = 0.6


def _style(state: State) -> tuple[QBrush, QPen, QColor]:
    """Fill, border pen and border colour of a state's card, from the palette (gui/theme.py)."""
    card = theme.current().card(state)
    return card.brush, card.pen, card.border


def palette(status: NodeStatus) -> tuple[QBrush, QPen]:
    """Brush and pen for a card box; shared objects, so 10,000 cards cost 9 brushes."""
    brush, pen, _ = _style(status.state)
    return brush, pen


@cache
def _fonts() -> tuple[QFont, QFont, QFontMetricsF, QFontMetricsF]:
    name = QFont()
    name.setPixelSize(14)
    name.setBold(True)
    small = QFont()
    small.setPixelSize(12)
    return name, small, QFontMetricsF(name), QFontMetricsF(small)


class CardLayer(QGraphicsItem):
    """Paints the text, icons and badges of one tree's cards. Hidden by the view below
    ``LOD_NAME`` (then Qt does not even call it); the selection ring is a separate item."""

    def __init__(self, scene: ChainScene, index: int, rects: list[tuple[str, QRectF]], box: QRectF):
        super().__init__()
        self._scene = scene
        self.index = index
        self.rects = rects
        self.members = {n for n, _ in rects}
        self._bounds = box.adjusted(-10, -10, 10, 10)
        self._elided: dict[str, str] = {}
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)

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
        matches = self._scene.matches
        for node, rect in self.rects:
            if rect.intersects(exposed):
                dim = matches is not None and node not in matches
                painter.setOpacity(0.3 if dim else 1.0)  # no saved state: set it every time
                self._card(painter, node, rect, detail)
        painter.setOpacity(1.0)

    def _card(self, painter: QPainter, node: str, rect: QRectF, detail: bool) -> None:
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
        name = self._elided.get(node)
        if name is None:
            name = name_fm.elidedText(
                display_path(short_name(node)), Qt.TextElideMode.ElideMiddle, NODE_W - 50
            )
            self._elided[node] = name
        colours = theme.current().card(status.state)
        painter.setPen(colours.text)
        painter.setFont(name_font)
        painter.drawText(
            QRectF(x + 40, y + 8, NODE_W - 48, 22), Qt.AlignmentFlag.AlignVCenter, name
        )
        if not detail:
            return
        painter.setFont(small_font)
        painter.setPen(colours.subtext)
        line1, line2 = self._lines(node, snap.graph.nodes[node], status)
        painter.drawText(
            QRectF(x + 14, y + 32, NODE_W - 20, 16), Qt.AlignmentFlag.AlignVCenter, line1
        )
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

    def _lines(self, node: str, entry: tuple, status: NodeStatus) -> tuple[str, str]:
        key = "\0" + node
        cached = self._elided.get(key)
        if cached is None:
            _, _, _, small_fm = _fonts()
            line1, line2 = _detail_lines(node, entry, status)
            width = NODE_W - 20 - 19 * _badge_count(status)
            line2 = small_fm.elidedText(line2, Qt.TextElideMode.ElideMiddle, width)
            cached = line1 + "\0" + line2
            self._elided[key] = cached
        line1, line2 = cached.split("\0")
        return line1, line2


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
