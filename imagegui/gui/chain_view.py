"""The view onto the chain scene: zoom, pan, select, tooltips and keyboard navigation.

Selection is the window's single "current image", not Qt's item selection: the view reports a
click through ``nodeClicked`` and the window tells the scene and the list what is current, so the
graph and the list can never disagree.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QPoint, QRectF, Qt, Signal
from PySide6.QtGui import QKeyEvent, QMouseEvent, QPainter, QWheelEvent
from PySide6.QtWidgets import QFrame, QGraphicsView, QToolTip

from imagegui.gui.cards import LOD_NAME
from imagegui.gui.chain_scene import ChainScene
from imagegui.gui.models import tooltip

MIN_SCALE = 0.004
MAX_SCALE = 4.0
STEP = 1.2
#: Below this scale antialiasing costs more than it shows.
ANTIALIAS_FROM = 0.3
#: A small graph is never fitted below this scale: its names must stay readable.
READABLE = 0.72
SMALL_GRAPH = 120


class ChainView(QGraphicsView):
    nodeClicked = Signal(str)
    nodeActivated = Signal(str)
    #: (node, global position): the window shows the image context menu.
    contextMenuRequested = Signal(str, QPoint)
    #: Scale after a zoom, 1.0 = 100 %.
    zoomChanged = Signal(float)

    def __init__(self, scene: ChainScene, parent=None):
        super().__init__(scene, parent)
        self.chain_scene = scene
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setCacheMode(QGraphicsView.CacheModeFlag.CacheBackground)
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontAdjustForAntialiasing)
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontSavePainterState)
        self.setRenderHints(
            QPainter.RenderHint.Antialiasing
            | QPainter.RenderHint.TextAntialiasing
            | QPainter.RenderHint.SmoothPixmapTransform
        )
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setToolTip("")  # tooltips come from viewportEvent, per card
        self.setAccessibleName("Chain graph")

    # -- zoom

    @property
    def scale_factor(self) -> float:
        return self.transform().m11()

    def set_scale(self, scale: float, anchor_mouse: bool = False) -> None:
        scale = max(MIN_SCALE, min(MAX_SCALE, scale))
        factor = scale / self.scale_factor
        if abs(factor - 1.0) < 1e-9:
            return
        if not anchor_mouse:
            self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.scale(factor, factor)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self._zoomed()

    def zoom_in(self) -> None:
        self.set_scale(self.scale_factor * STEP)

    def zoom_out(self) -> None:
        self.set_scale(self.scale_factor / STEP)

    def zoom_reset(self) -> None:
        self.set_scale(1.0)

    def fit_all(self) -> None:
        snap = self.chain_scene.snapshot
        if snap is None:
            return
        rect = QRectF(-40, -40, snap.layout.width + 80, snap.layout.height + 80)
        self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
        if self.scale_factor > 1.0:
            self.set_scale(1.0)
            self.centerOn(rect.center())
        elif self.scale_factor < READABLE and len(snap.graph.nodes) <= SMALL_GRAPH:
            # A few dozen cards: readable and scrollable beats all visible and illegible.
            self.set_scale(READABLE)
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().minimum())
            self.verticalScrollBar().setValue(self.verticalScrollBar().minimum())
            self.ensureVisible(QRectF(-20, -20, 10, 10), 0, 0)
        self._zoomed()

    def aspect(self) -> float:
        size = self.viewport().size()
        return size.width() / max(1, size.height())

    def _zoomed(self) -> None:
        self.setRenderHint(QPainter.RenderHint.Antialiasing, self.scale_factor >= ANTIALIAS_FROM)
        self.chain_scene.set_details_visible(self.scale_factor >= LOD_NAME)
        self.zoomChanged.emit(self.scale_factor)

    def wheelEvent(self, event: QWheelEvent) -> None:
        delta = event.angleDelta().y()
        if delta == 0 or event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            super().wheelEvent(event)
            return
        self.set_scale(self.scale_factor * STEP ** (delta / 120), anchor_mouse=True)
        event.accept()

    # -- showing a node

    def show_node(self, node: str) -> None:
        """Scrolls so the card is visible (zooming in first when cards are unreadably small)."""
        rect = self.chain_scene.node_rect(node)
        if rect is None:
            return
        if self.scale_factor < 0.45:
            self.set_scale(0.8)
            self.centerOn(rect.center())
        else:
            self.ensureVisible(rect, 80, 60)

    # -- mouse

    def mousePressEvent(self, event: QMouseEvent) -> None:
        node = self.chain_scene.node_at(self.mapToScene(event.position().toPoint()))
        if node is not None and event.button() in (
            Qt.MouseButton.LeftButton,
            Qt.MouseButton.RightButton,
        ):
            self.nodeClicked.emit(node)
        super().mousePressEvent(event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        node = self.chain_scene.node_at(self.mapToScene(event.position().toPoint()))
        if node is not None:
            self.nodeActivated.emit(node)
            event.accept()
            return
        super().mouseDoubleClickEvent(event)

    def contextMenuEvent(self, event) -> None:
        node = self.chain_scene.node_at(self.mapToScene(event.pos()))
        if node is None and event.reason() != event.Reason.Mouse:
            node = self.chain_scene.selected
            rect = self.chain_scene.node_rect(node) if node else None
            if rect is not None:
                pos = self.viewport().mapToGlobal(self.mapFromScene(rect.center()))
                self.contextMenuRequested.emit(node, pos)
                return
        if node is not None:
            self.nodeClicked.emit(node)
            self.contextMenuRequested.emit(node, event.globalPos())

    def viewportEvent(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip:
            snap = self.chain_scene.snapshot
            node = self.chain_scene.node_at(self.mapToScene(event.pos()))
            if node is None or snap is None:
                QToolTip.hideText()
                event.ignore()
                return True
            QToolTip.showText(event.globalPos(), tooltip(snap, node), self.viewport())
            return True
        return super().viewportEvent(event)

    # -- keyboard

    def keyPressEvent(self, event: QKeyEvent) -> None:
        target = self._navigate(event.key())
        if target is not None:
            self.nodeClicked.emit(target)
            self.show_node(target)
            return
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.chain_scene.selected:
            self.nodeActivated.emit(self.chain_scene.selected)
            return
        super().keyPressEvent(event)

    def _navigate(self, key: int) -> str | None:
        """Left: the backing file; Right: the first overlay; Up/Down: the neighbouring sibling."""
        snap = self.chain_scene.snapshot
        node = self.chain_scene.selected
        if snap is None:
            return None
        forest = snap.layout.forest
        if node is None:
            return forest.roots[0] if forest.roots and key in _NAV_KEYS else None
        if key == Qt.Key.Key_Left:
            return forest.parent.get(node)
        if key == Qt.Key.Key_Right:
            kids = forest.kids(node)
            return kids[0] if kids else None
        if key in (Qt.Key.Key_Up, Qt.Key.Key_Down):
            parent = forest.parent.get(node)
            siblings = forest.kids(parent) if parent else forest.roots
            i = siblings.index(node) + (1 if key == Qt.Key.Key_Down else -1)
            return siblings[i] if 0 <= i < len(siblings) else None
        return None


_NAV_KEYS = (Qt.Key.Key_Left, Qt.Key.Key_Right, Qt.Key.Key_Up, Qt.Key.Key_Down)
