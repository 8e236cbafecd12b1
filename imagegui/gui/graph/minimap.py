"""The overview in a corner of the graph: the whole scene small, the visible part framed.

At 10,000 images the graph is a large picture and the view shows a corner of it; the overview
says where that corner is and where the trouble is (broken and unusable cards as dots of a fixed
size), and a click or a drag on it moves the view there. It is shown only while the view does not
show everything.

The picture is made once per built scene, and only once it is needed (the view shows part of
the graph), on a zero-timer: each tree drawn as its overview block (a few paths, whatever the
image count), or failing that ``QGraphicsScene.render`` of the card boxes; moving the view only
repaints the frame.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, QTimer
from PySide6.QtGui import (
    QColor,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPalette,
    QPen,
    QPixmap,
    QPolygonF,
)
from PySide6.QtWidgets import QWidget
from shiboken6 import isValid

from imagegui.core.chains.nodestate import State
from imagegui.gui import theme

if TYPE_CHECKING:
    from imagegui.gui.graph.view import ChainView

#: The overview's largest size in pixels, and its distance from the view's corner.
MAX_SIZE = QSize(220, 150)
INSET = 10
#: Above this share of the view's area the overview would hide more than it helps (a small
#: window: the selected card ended up underneath it), so it stays hidden.
MAX_SHARE = 0.12


class Minimap(QWidget):
    def __init__(self, view: ChainView):
        super().__init__(view)
        self.view = view
        self._pixmap: QPixmap | None = None
        #: The scene changed since the picture was made.
        self._stale = True
        #: Scene rect the pixmap shows, and the scale from scene to overview pixels.
        self._source = QRectF()
        self._scale = 1.0
        self._render_timer = QTimer(self)
        self._render_timer.setSingleShot(True)
        self._render_timer.setInterval(0)
        self._render_timer.timeout.connect(self._render)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("Overview of the whole graph: click or drag to go there")
        self.setAccessibleName("Graph overview")
        self.hide()
        scene = view.chain_scene
        scene.built.connect(self.invalidate)
        theme.watcher().changed.connect(self.invalidate)
        view.horizontalScrollBar().valueChanged.connect(self.follow)
        view.verticalScrollBar().valueChanged.connect(self.follow)
        view.zoomChanged.connect(self.follow)

    # -- the picture

    def invalidate(self) -> None:
        """The scene was rebuilt or recoloured: a new picture when one is next needed."""
        self._pixmap = None
        self._stale = True
        self.follow()

    def _render(self) -> None:
        scene = self.view.chain_scene
        if not isValid(scene):
            return
        source = scene.sceneRect()
        self._stale = False
        if scene.layout is None or not scene.card_count or source.isEmpty():
            self._pixmap = None
            self.hide()
            return
        scale = min(MAX_SIZE.width() / source.width(), MAX_SIZE.height() / source.height())
        size = QSize(
            max(24, round(source.width() * scale)), max(24, round(source.height() * scale))
        )
        pixmap = QPixmap(size)
        pixmap.fill(theme.current().scene_bg)
        painter = QPainter(pixmap)
        sx, sy = size.width() / source.width(), size.height() / source.height()
        # Each tree as its overview block (gui/graph/overview.py): at 100,000 images a few
        # paths, where a render of the scene would paint every card box.
        if not self.view.overview.paint_picture(painter, source, sx, sy):
            scene.render(
                painter, QRectF(pixmap.rect()), source, Qt.AspectRatioMode.IgnoreAspectRatio
            )
        self._paint_trouble(painter, source, size)
        painter.end()
        self._pixmap, self._source, self._scale = pixmap, source, scale
        self.resize(size)
        self.follow()

    def _paint_trouble(self, painter: QPainter, source: QRectF, size: QSize) -> None:
        """Broken and unusable cards as dots, whatever their size at this scale."""
        markers = self.view.chain_scene.markers
        if markers is None:
            return
        sx, sy = size.width() / source.width(), size.height() / source.height()
        t = theme.current()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        dots = [
            (
                QPolygonF(
                    [QPointF((p.x() - source.x()) * sx, (p.y() - source.y()) * sy) for p in points]
                ),
                width,
            )
            for points, width in ((markers.above, 4.0), (markers.breaks, 6.0))
            if points.size()
        ]
        for colour, grow in ((t.base, 2.0), (t.card(State.ERROR).border, 0.0)):  # halos first
            for mapped, width in dots:
                pen = QPen(colour, width + grow, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap)
                painter.setPen(pen)
                painter.drawPoints(mapped)

    # -- following the view

    def visible_scene_rect(self) -> QRectF:
        view = self.view
        return view.mapToScene(view.viewport().rect()).boundingRect()

    def follow(self, *_args) -> None:
        """Shows the overview while the view shows part of the graph; places it; repaints."""
        scene = self.view.chain_scene
        if not isValid(scene):  # the window is closing: its scene goes before the view
            return
        source = scene.sceneRect()
        whole = self.visible_scene_rect().contains(source.adjusted(20, 20, -20, -20))
        if whole or scene.building or not scene.card_count:
            self.hide()
            return
        if self._stale:
            self._render_timer.start()  # shown once the picture is made
            return
        if self._pixmap is None:
            self.hide()
            return
        area = self.view.viewport().geometry()
        if self.width() * self.height() > MAX_SHARE * area.width() * area.height():
            self.hide()
            return
        self.move(
            area.right() - self.width() - INSET + 1,
            area.bottom() - self.height() - INSET + 1,
        )
        self.show()
        self.raise_()
        self.update()

    def frame_rect(self) -> QRectF:
        """The visible part of the graph, in overview pixels."""
        r = self.visible_scene_rect().intersected(self._source)
        return QRectF(
            (r.x() - self._source.x()) * self._scale,
            (r.y() - self._source.y()) * self._scale,
            r.width() * self._scale,
            r.height() * self._scale,
        )

    def scene_point(self, pos: QPointF) -> QPointF:
        return QPointF(
            self._source.x() + pos.x() / self._scale, self._source.y() + pos.y() / self._scale
        )

    # -- painting and pointing

    def paintEvent(self, event: QPaintEvent) -> None:
        if self._pixmap is None:
            return
        painter = QPainter(self)
        painter.drawPixmap(0, 0, self._pixmap)
        highlight = self.palette().color(QPalette.ColorRole.Highlight)
        frame = self.frame_rect().adjusted(0.5, 0.5, -0.5, -0.5)
        fill = QColor(highlight)
        fill.setAlpha(40)
        painter.fillRect(frame, fill)
        painter.setPen(QPen(highlight, 1.5))
        painter.drawRect(frame)
        painter.setPen(QPen(self.palette().color(QPalette.ColorRole.Mid), 1))
        painter.drawRect(QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5))
        painter.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self._pixmap is not None:
            self.view.centerOn(self.scene_point(event.position()))
            event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton and self._pixmap is not None:
            self.view.centerOn(self.scene_point(event.position()))
            event.accept()
