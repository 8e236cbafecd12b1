"""What each layer of a chain gives its guest, as a stacked bar above the details.

"62 % of web01's disk comes from debian-12.qcow2": for the selected image's chain (or, for a
base or a middle layer, each chain it is part of, a few at most), one bar as long as the guest
data the chain holds, a segment per layer in proportion to the bytes the guest reads from it,
base on the left as in the graph, then a legend row per layer with its bytes and share. The
figures are the space report's (``core.chains.space``: ``ChainSpace.layers``), read on a
worker after each scan; until it is there, or for an image it has no figures for, the panel is
hidden.

Segments take the state's hue (a broken layer is red) and deepen from base to top so
neighbours differ; the selected image's segment is outlined. Hover names a segment, a click
selects that layer. The bar is one painted widget: its accessible description lists every
layer's share, as the legend does.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from html import escape

from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QFont, QFontMetricsF, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QLabel, QSizePolicy, QToolTip, QVBoxLayout, QWidget

from imagegui.core.chains.nodestate import short_name
from imagegui.core.units import counted, display_path, human_size
from imagegui.gui import theme
from imagegui.gui.snapshot import Snapshot

#: Chains shown for an image that is a layer of many (a base): the rest are counted.
MAX_BARS = 3
BAR_H = 22.0
ROW_H = 18.0
SWATCH = 11.0


@dataclass(frozen=True)
class Segment:
    path: str
    #: Bytes of the guest's disk read from this layer, and that over the chain's guest data.
    share: int
    fraction: float
    state: str


@dataclass(frozen=True)
class Bar:
    """One chain: its top, its guest data, and each layer's segment, base first."""

    top: str
    virtual_size: int
    guest_data: int
    segments: tuple[Segment, ...]
    #: Layers without figures (a map not read, a missing file).
    unknown: tuple[str, ...] = ()


def bars_for(report, snapshot: Snapshot, node: str) -> tuple[list[Bar], int]:
    """The bars for ``node``: its own chain when it is a top, else each chain it is a layer of
    (largest first, at most ``MAX_BARS``); and how many chains were left out."""
    if report is None or node is None:
        return [], 0
    chains = [c for c in report.chains if c.top == node] or report.chains_through(node)
    chains = sorted(chains, key=lambda c: (-(c.guest_data or 0), c.top))
    bars = []
    for chain in chains[:MAX_BARS]:
        segments, unknown = [], []
        for layer in reversed(chain.layers):  # base first
            if layer.share is None or layer.placeholder:
                unknown.append(layer.path)
                continue
            status = snapshot.status.get(layer.path)
            state = str(status.state) if status is not None else "ok"
            segments.append(Segment(layer.path, layer.share, layer.fraction or 0.0, state))
        guest = chain.guest_data if chain.guest_data is not None else sum(s.share for s in segments)
        bars.append(Bar(chain.top, chain.virtual_size, guest, tuple(segments), tuple(unknown)))
    return bars, max(0, len(chains) - MAX_BARS)


def percent(fraction: float) -> str:
    if fraction <= 0:
        return "0 %"
    if fraction < 0.01:
        return "under 1 %"
    return f"{fraction * 100:.0f} %"


@cache
def _fonts() -> tuple[QFont, QFontMetricsF, QFont, QFontMetricsF]:
    small = QFont()
    small.setPixelSize(11)
    bold = QFont(small)
    bold.setBold(True)
    return small, QFontMetricsF(small), bold, QFontMetricsF(bold)


class LayerBar(QWidget):
    """One chain's stacked bar and its legend, painted."""

    layerClicked = Signal(str)

    def __init__(self, bar: Bar, selected: str | None, parent: QWidget | None = None):
        super().__init__(parent)
        self.bar = bar
        self.selected = selected
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFixedHeight(int(BAR_H + 6 + ROW_H * len(bar.segments) + 2))
        self.setAccessibleName(f"Layers of {display_path(short_name(bar.top))}'s disk")
        self.setAccessibleDescription(self.describe())
        self._hover: str | None = None

    def describe(self) -> str:
        """Every layer's share, base first, as a screen reader says it."""
        parts = [
            f"{display_path(short_name(s.path))} {percent(s.fraction)} ({human_size(s.share)})"
            for s in self.bar.segments
        ]
        return (
            f"{human_size(self.bar.guest_data)} of guest data: " + ", ".join(parts)
            if parts
            else "No layer's figures are known"
        )

    def sizeHint(self) -> QSize:
        return QSize(240, self.height())

    # -- geometry

    def segment_rects(self) -> list[tuple[Segment, QRectF]]:
        """Each segment's rectangle in the bar, in proportion to its bytes (an empty layer
        gets a hairline, so it is still there to point at)."""
        width = self.width() - 2.0
        total = sum(s.share for s in self.bar.segments) or 1
        out = []
        x = 1.0
        for s in self.bar.segments:
            w = max(2.0, width * s.share / total) if s.share else 2.0
            out.append((s, QRectF(x, 1.0, w, BAR_H)))
            x += w
        if out and x > width + 1.0:  # the hairlines pushed it over: squeeze the widest
            over = x - (width + 1.0)
            seg, rect = max(out, key=lambda p: p[1].width())
            i = out.index((seg, rect))
            rect = QRectF(rect.x(), rect.y(), rect.width() - over, rect.height())
            out[i] = (seg, rect)
            for j in range(i + 1, len(out)):
                r = out[j][1]
                out[j] = (out[j][0], r.translated(-over, 0))
        return out

    def row_rect(self, i: int) -> QRectF:
        return QRectF(0, BAR_H + 6 + i * ROW_H, self.width(), ROW_H)

    def path_at(self, pos: QPointF) -> str | None:
        for seg, rect in self.segment_rects():
            if rect.contains(pos):
                return seg.path
        for i, seg in enumerate(self.bar.segments):
            if self.row_rect(i).contains(pos):
                return seg.path
        return None

    # -- painting

    def colours(self) -> dict[str, tuple]:
        """(fill, text) per layer: its state's hue, deeper from base to top."""
        t = theme.current()
        n = len(self.bar.segments)
        out = {}
        for i, s in enumerate(self.bar.segments):
            hue = t.card(s.state).border
            amount = 0.28 + 0.5 * (i / (n - 1) if n > 1 else 0.5)
            fill = theme.mix(t.base, hue, amount)
            out[s.path] = (fill, theme.readable(t.text, fill))
        return out

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        t = theme.current()
        small, small_fm, bold, bold_fm = _fonts()
        colours = self.colours()
        painter.setPen(QPen(t.edge, 1))
        painter.setBrush(t.base)
        painter.drawRect(QRectF(0.5, 0.5, self.width() - 1.0, BAR_H + 1.0))
        painter.setFont(small)
        rects = self.segment_rects()
        for seg, rect in rects:
            painter.fillRect(rect, colours[seg.path][0])
        painter.setPen(QPen(t.base, 1.5))  # a gap between neighbours of like colours
        for _, rect in rects[1:]:
            painter.drawLine(QPointF(rect.left(), rect.top()), QPointF(rect.left(), rect.bottom()))
        for seg, rect in rects:
            fill, text = colours[seg.path]
            label = percent(seg.fraction)
            if small_fm.horizontalAdvance(label) + 6 <= rect.width():
                painter.setPen(text)
                painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, label)
            if seg.path in (self.selected, self._hover):
                pen = QPen(t.selection if seg.path == self.selected else t.text, 2.0)
                pen.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
                painter.setPen(pen)
                painter.setBrush(Qt.BrushStyle.NoBrush)
                painter.drawRect(rect.adjusted(1, 1, -1, -1))
        for i, seg in enumerate(self.bar.segments):
            row = self.row_rect(i)
            fill, _ = colours[seg.path]
            swatch = QRectF(2, row.y() + (ROW_H - SWATCH) / 2, SWATCH, SWATCH)
            painter.fillRect(swatch, fill)
            painter.setPen(QPen(t.edge, 1))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(swatch)
            figures = f"{human_size(seg.share)} · {percent(seg.fraction)}"
            fw = small_fm.horizontalAdvance(figures)
            name_font, name_fm = (bold, bold_fm) if seg.path == self.selected else (small, small_fm)
            name = name_fm.elidedText(
                display_path(short_name(seg.path)),
                Qt.TextElideMode.ElideMiddle,
                row.width() - SWATCH - 16 - fw,
            )
            painter.setFont(name_font)
            painter.setPen(t.text)
            painter.drawText(
                QRectF(SWATCH + 8, row.y(), row.width() - SWATCH - 8, ROW_H),
                Qt.AlignmentFlag.AlignVCenter,
                name,
            )
            painter.setFont(small)
            painter.setPen(t.muted)
            painter.drawText(
                QRectF(0, row.y(), row.width() - 2, ROW_H),
                Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                figures,
            )
        painter.end()

    # -- mouse

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        path = self.path_at(event.position())
        if path != self._hover:
            self._hover = path
            self.update()
        super().mouseMoveEvent(event)

    def leaveEvent(self, event) -> None:
        if self._hover is not None:
            self._hover = None
            self.update()
        super().leaveEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        path = self.path_at(event.position())
        if path is not None and event.button() == Qt.MouseButton.LeftButton:
            self.layerClicked.emit(path)
        super().mousePressEvent(event)

    def tooltip(self, path: str) -> str:
        seg = next((s for s in self.bar.segments if s.path == path), None)
        if seg is None:
            return ""
        top = display_path(short_name(self.bar.top))
        return (
            f"<b>{escape(display_path(short_name(seg.path)))}</b><br>"
            f"{escape(percent(seg.fraction))} of {escape(top)}'s guest data comes from it: "
            f"{human_size(seg.share)} of {human_size(self.bar.guest_data)}.<br>"
            "Click to select it."
        )

    def event(self, e) -> bool:
        if e.type() == QEvent.Type.ToolTip:
            path = self.path_at(QPointF(e.pos()))
            if path is None:
                QToolTip.hideText()
                e.ignore()
                return True
            QToolTip.showText(e.globalPos(), self.tooltip(path), self)
            return True
        return super().event(e)


class LayerBarPanel(QWidget):
    """The title, a bar per chain (``MAX_BARS`` at most) and what was left out; hidden when the
    space report has no figures for the selected image."""

    nodeRequested = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("layerBarPanel")
        self.setAccessibleName("What each layer provides")
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(6, 6, 6, 4)
        self._layout.setSpacing(3)
        self.title = QLabel()
        self.title.setObjectName("layerBarTitle")
        self.title.setWordWrap(True)
        self.title.setTextFormat(Qt.TextFormat.RichText)
        self._layout.addWidget(self.title)
        self.bars: list[LayerBar] = []
        self._extra: list[QWidget] = []
        self.report = None
        self.snapshot: Snapshot | None = None
        self.node: str | None = None
        self.hide()
        theme.watcher().changed.connect(self._refresh)

    def set_report(self, report) -> None:
        self.report = report
        self._refresh()

    def show_node(self, snapshot: Snapshot | None, node: str | None) -> None:
        self.snapshot, self.node = snapshot, node
        self._refresh()

    def _refresh(self) -> None:
        for widget in self.bars + self._extra:
            self._layout.removeWidget(widget)
            widget.deleteLater()
        self.bars, self._extra = [], []
        snap, node = self.snapshot, self.node
        if self.report is None or snap is None or node is None:
            self.hide()
            return
        bars, more = bars_for(self.report, snap, node)
        if not bars or not any(b.segments for b in bars):
            self.hide()
            return
        name = escape(display_path(short_name(node)))
        own = len(bars) == 1 and bars[0].top == node
        if own:
            bar = bars[0]
            self.title.setText(
                f"<b>What {name}'s disk is made of</b><br>"
                f"{human_size(bar.guest_data)} of data in a {human_size(bar.virtual_size)} disk"
                f", from {counted(len(bar.segments), 'layer')}"
            )
        else:
            self.title.setText(f"<b>What {name} gives the disks above it</b>")
        for bar in bars:
            if not own:
                label = QLabel(
                    f"{escape(display_path(short_name(bar.top)))}: "
                    f"{human_size(bar.guest_data)} of data"
                )
                self._add(label)
            if bar.guest_data <= 0:  # nothing to divide: say so rather than draw hairlines
                empty = QLabel("No layer holds data yet: the whole disk reads as zeroes.")
                empty.setObjectName("hint")
                empty.setWordWrap(True)
                self._add(empty)
            else:
                widget = LayerBar(bar, node)
                widget.layerClicked.connect(self.nodeRequested)
                self._layout.addWidget(widget)
                self.bars.append(widget)
            if bar.unknown:
                note = QLabel(
                    f"Not counted: {counted(len(bar.unknown), 'layer')} whose allocation was "
                    "not read (missing, or unreadable here)"
                )
                note.setObjectName("hint")
                note.setWordWrap(True)
                self._add(note)
        if more:
            self._add(QLabel(f"… and {counted(more, 'more chain')}"))
        self.show()

    def _add(self, widget: QWidget) -> None:
        self._layout.addWidget(widget)
        self._extra.append(widget)
