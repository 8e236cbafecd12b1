"""The view onto the chain scene: zoom, pan, select, tooltips and keyboard navigation.

Selection is the window's single "current image", not Qt's item selection: the view reports a
click through ``nodeClicked`` and the window tells the scene and the list what is current, so the
graph and the list can never disagree.

The wheel scrolls and Ctrl+wheel zooms (``wheel_zooms`` swaps them, a preference). The arrow keys
follow the drawing: Left to the backing file, Right to the topmost overlay, Up and Down to the
card drawn just above or below; zoomed out to the overview they move between the trees' blocks
(the nearest that way) and Enter zooms in on the current one; Shift+F10 and the Menu key open
the selected card's menu. While the view has the focus a frame runs round it and a dashed ring
round the current card (zoomed out, round the current tree's block).
"""

from __future__ import annotations

import bisect

from PySide6.QtCore import QEvent, QPoint, QPointF, QRect, QRectF, Qt, Signal
from PySide6.QtGui import (
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPalette,
    QPen,
    QRegion,
    QWheelEvent,
)
from PySide6.QtWidgets import QApplication, QFrame, QGraphicsView, QToolTip

from imagegui.core.chains.trees import TreeSummary
from imagegui.gui import dnd
from imagegui.gui.graph.cards import LOD_MARKER, LOD_NAME
from imagegui.gui.graph.minimap import Minimap
from imagegui.gui.graph.overview import FADE_FROM, Overview, tree_tooltip
from imagegui.gui.graph.scene import ChainScene
from imagegui.gui.graph.trouble import TroubleList
from imagegui.gui.panels.chains_model import tooltip

MIN_SCALE = 0.004
MAX_SCALE = 4.0
STEP = 1.2
#: Below this scale antialiasing costs more than it shows.
ANTIALIAS_FROM = 0.3
#: Width of the focus frame round the viewport, in pixels.
FOCUS_FRAME = 2


class ChainView(QGraphicsView):
    nodeClicked = Signal(str)
    #: Ctrl+click on a card: add it to the images selected, or take it out.
    nodeToggled = Signal(str)
    nodeActivated = Signal(str)
    #: (node, global position): the window shows the image context menu.
    contextMenuRequested = Signal(str, QPoint)
    #: Scale after a zoom, 1.0 = 100 %.
    zoomChanged = Signal(float)
    #: The view has painted (its viewport): background work waits for the first one after
    #: a new graph (``gui.afterpaint``).
    painted = Signal()

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
        #: The wheel zooms and Ctrl+wheel scrolls (a preference); by default the other way.
        self.wheel_zooms = False
        scene.built.connect(self._on_built)
        scene.region = self.wanted_region  # a big graph's trees get items as they come in view
        #: Zoomed out, each tree drawn as one block (gui/graph/overview.py).
        self.overview = Overview(scene)
        self._press_at: QPointF | None = None
        #: The overview in the bottom-right corner while only part of the graph is in view.
        self.minimap = Minimap(self)
        #: Zoomed out, the broken chains by name in the top-left corner.
        self.trouble = TroubleList(self)
        #: A card pressed with the left button: (node, where, its click still to be reported).
        #: Moved far enough it is dragged (onto a folder of the Folders panel).
        self._press: tuple[str, QPoint, bool] | None = None

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
        """Shows every card, whatever the count (the cards write their names larger as the zoom
        shrinks, so a hundred stay legible); never zooms in past 100 %."""
        if self.chain_scene.layout is None:
            return
        rect = self.chain_scene.sceneRect()  # the cards plus a margin: no scroll bar needed
        self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
        if self.scale_factor > 1.0:
            self.set_scale(1.0)
        self.centerOn(rect.center())
        self._zoomed()

    def aspect(self) -> float:
        size = self.viewport().size()
        return size.width() / max(1, size.height())

    def _zoomed(self) -> None:
        self.setRenderHint(QPainter.RenderHint.Antialiasing, self.scale_factor >= ANTIALIAS_FROM)
        self.chain_scene.set_details_visible(self.scale_factor >= LOD_NAME)
        self.chain_scene.set_markers_visible(self.scale_factor < LOD_MARKER)
        self.overview.set_scale(self.scale_factor)
        self.chain_scene.view_moved()
        self.zoomChanged.emit(self.scale_factor)

    def wanted_region(self) -> QRectF:
        """The part of the scene whose cards need items: what is in view and half a view round
        it (a scroll finds them made); none while the overview stands for the cards."""
        if self.scale_factor < FADE_FROM:
            return QRectF()
        r = self.mapToScene(self.viewport().rect()).boundingRect()
        return r.adjusted(-r.width() / 2, -r.height() / 2, r.width() / 2, r.height() / 2)

    def wheelEvent(self, event: QWheelEvent) -> None:
        """The wheel scrolls (Shift: sideways) and Ctrl+wheel zooms, or the other way round."""
        delta = event.angleDelta().y()
        ctrl = bool(event.modifiers() & Qt.KeyboardModifier.ControlModifier)
        if delta != 0 and ctrl != self.wheel_zooms:
            self.set_scale(self.scale_factor * STEP ** (delta / 120), anchor_mouse=True)
            event.accept()
            return
        if ctrl:  # Ctrl would make the scroll bars jump by pages: scroll as a plain wheel does
            event = QWheelEvent(
                event.position(),
                event.globalPosition(),
                event.pixelDelta(),
                event.angleDelta(),
                event.buttons(),
                event.modifiers() & ~Qt.KeyboardModifier.ControlModifier,
                event.phase(),
                event.inverted(),
            )
        super().wheelEvent(event)

    # -- showing a node

    def show_node(self, node: str) -> None:
        """Scrolls so the card is visible (zooming in first when cards are unreadably small)."""
        rect = self.chain_scene.node_rect(node)
        if rect is None:
            return
        if self.scale_factor < LOD_NAME:  # nothing legible yet: zoom in to where sizes show
            self.set_scale(0.8)
            self.centerOn(rect.center())
        else:
            self.ensureVisible(rect, 80, 60)

    def zoom_to_tree(self, root: str) -> None:
        """Zooms in on the tree based on ``root`` (a click on its overview block): the whole tree
        when it fits at a legible zoom, else its base, legible."""
        scene = self.chain_scene
        layout = scene.layout
        index = layout.component_of.get(root) if layout is not None else None
        if index is None:
            return
        comp = layout.components[index]
        rect = QRectF(comp.x, comp.y, comp.w, comp.h).adjusted(-40, -40, 40, 40)
        area = self.viewport().rect()
        fit = min(area.width() / rect.width(), area.height() / rect.height())
        self.set_scale(max(LOD_NAME * 1.5, min(1.0, fit)))
        base = scene.node_rect(root)
        self.centerOn(rect.center() if fit >= LOD_NAME * 1.5 or base is None else base.center())

    # -- mouse

    def drag_paths(self, node: str) -> list[str]:
        """What a drag from ``node``'s card carries: the images selected (the current card and
        the Ctrl-clicked ones) when it is one of them, else it alone; only files of the scan,
        ``node`` first. Empty when ``node`` is not one (a missing backing file)."""
        snap = self.chain_scene.snapshot
        images = snap.graph.scan.images if snap is not None else {}
        if node not in images:
            return []
        scene = self.chain_scene
        group = set(scene.also_selected) | ({scene.selected} if scene.selected else set())
        if node not in group:
            return [node]
        return [node, *sorted(n for n in group - {node} if n in images)]

    def _drags_cards(self) -> bool:
        """Cards are dragged where they can be told apart (zoomed out, a press pans)."""
        return self.scale_factor >= LOD_NAME

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self._press_at = event.position()
        node = self.chain_scene.node_at(self.mapToScene(event.position().toPoint()))
        ctrl = event.modifiers() & Qt.KeyboardModifier.ControlModifier
        self._press = None
        if node is not None and event.button() == Qt.MouseButton.LeftButton and ctrl:
            self.nodeToggled.emit(node)
        elif node is not None and event.button() == Qt.MouseButton.LeftButton:
            scene = self.chain_scene
            several = node in scene.also_selected and len(scene.also_selected | {node}) > 1
            if not several:  # pressing one of several selected keeps them for a drag
                self.nodeClicked.emit(node)
            if self._drags_cards() and node in self._scanned():
                self._press = (node, event.position().toPoint(), several)
                event.accept()
                return  # no hand-scrolling from a card: it is dragged
        elif node is not None and event.button() == Qt.MouseButton.RightButton:
            self.nodeClicked.emit(node)
        super().mousePressEvent(event)

    def _scanned(self):
        snap = self.chain_scene.snapshot
        return snap.graph.scan.images if snap is not None else {}

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        press = self._press
        if press is not None and event.buttons() & Qt.MouseButton.LeftButton:
            node, where, _ = press
            moved = (event.position().toPoint() - where).manhattanLength()
            if moved >= QApplication.startDragDistance():
                self._press = None
                paths = self.drag_paths(node)
                if paths:
                    dnd.start_drag(self, paths)
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        """Ends a card's press (a click on one of several selected: it alone); a click (not a
        drag) on a tree's overview block selects its base and zooms in on the tree."""
        press, self._press = self._press, None
        pressed_at, self._press_at = self._press_at, None
        if press is not None:
            node, _, pending = press
            if pending:  # a click (no drag) on one of several selected: it alone, as usual
                self.nodeClicked.emit(node)
            event.accept()
            return
        super().mouseReleaseEvent(event)
        if event.button() != Qt.MouseButton.LeftButton or pressed_at is None:
            return
        if (event.position() - pressed_at).manhattanLength() > 4:
            return
        at = self.mapToScene(event.position().toPoint())
        if self.chain_scene.node_at(at) is not None:
            return
        tree = self.overview.tree_at(at)
        if tree is not None:
            self.nodeClicked.emit(tree.root)
            self.zoom_to_tree(tree.root)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        node = self.chain_scene.node_at(self.mapToScene(event.position().toPoint()))
        if node is not None:
            self.nodeActivated.emit(node)
            event.accept()
            return
        super().mouseDoubleClickEvent(event)

    def contextMenuEvent(self, event) -> None:
        if event.reason() != event.Reason.Mouse:  # the Menu key: the selected card's menu
            self.open_menu_for_selected()
            event.accept()
            return
        node = self.chain_scene.node_at(self.mapToScene(event.pos()))
        if node is not None:
            self.nodeClicked.emit(node)
            self.contextMenuRequested.emit(node, event.globalPos())

    def open_menu_for_selected(self) -> bool:
        """Asks for the selected card's menu, at the card (scrolled into view first)."""
        node = self.chain_scene.selected
        rect = self.chain_scene.node_rect(node) if node else None
        if node is None or rect is None:
            return False
        self.show_node(node)
        inside = self.mapFromScene(rect.center())
        inside.setX(max(0, min(self.viewport().width() - 1, inside.x())))
        inside.setY(max(0, min(self.viewport().height() - 1, inside.y())))
        self.contextMenuRequested.emit(node, self.viewport().mapToGlobal(inside))
        return True

    def viewportEvent(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip:
            snap = self.chain_scene.snapshot
            at = self.mapToScene(event.pos())
            node = self.chain_scene.node_at(at)
            tree = self.overview.tree_at(at) if node is None and snap is not None else None
            if tree is not None:
                QToolTip.showText(event.globalPos(), tree_tooltip(tree), self.viewport())
                return True
            if node is None or snap is None:
                QToolTip.hideText()
                event.ignore()
                return True
            QToolTip.showText(event.globalPos(), tooltip(snap, node), self.viewport())
            return True
        return super().viewportEvent(event)

    # -- keyboard

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        shift = event.modifiers() & Qt.KeyboardModifier.ShiftModifier
        menu_key = key == Qt.Key.Key_Menu or (key == Qt.Key.Key_F10 and shift)
        if menu_key and self.open_menu_for_selected():
            event.accept()
            return
        plain = not event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        if self.overview.shown and self._block_key(key, plain):
            event.accept()
            return
        if key in _NAV_KEYS and plain:
            target = self.neighbour(key)
            if target is not None:
                self.nodeClicked.emit(target)
                self.show_node(target)
                event.accept()
                return
            if self.chain_scene.selected in self._positions():
                event.accept()  # at the edge of the drawing: stay, do not scroll away
                return
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.chain_scene.selected:
            self.nodeActivated.emit(self.chain_scene.selected)
            return
        super().keyPressEvent(event)

    def _block_key(self, key: int, plain: bool) -> bool:
        """Zoomed out (the overview drawn, names too small to read), the arrow keys move between
        the trees' blocks and Enter zooms in on the current one; True when ``key`` was that."""
        if key in _NAV_KEYS and plain:
            target = self.tree_neighbour(key)
            if target is not None:
                self.nodeClicked.emit(target)
                self.show_tree(target)
            return True  # at the edge: stay, do not scroll away
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and plain:
            tree = self.current_tree()
            if tree is not None:
                self.zoom_to_tree(tree.root)
                return True
        return False

    def current_tree(self) -> TreeSummary | None:
        """The overview's record of the tree the current image belongs to."""
        data, layout = self.overview.current(), self.chain_scene.layout
        node = self.chain_scene.selected
        if data is None or layout is None or node is None:
            return None
        index = layout.component_of.get(node)
        return data.trees[index] if index is not None and index < len(data.trees) else None

    def tree_neighbour(self, key: int) -> str | None:
        """The base of the tree an arrow key moves to zoomed out, as the blocks are drawn: the
        nearest block whose centre lies that way (within 45 degrees, else anywhere that way);
        the first tree when none is current."""
        data = self.overview.current()
        if data is None or not data.trees:
            return None
        here = self.current_tree()
        if here is None:
            return data.trees[0].root
        cx, cy = here.x + here.w / 2, here.y + here.h / 2
        best: tuple[bool, float, str] | None = None
        for t in data.trees:
            if t.index == here.index:
                continue
            dx, dy = t.x + t.w / 2 - cx, t.y + t.h / 2 - cy
            along, across = {
                Qt.Key.Key_Right: (dx, dy),
                Qt.Key.Key_Left: (-dx, dy),
                Qt.Key.Key_Down: (dy, dx),
                Qt.Key.Key_Up: (-dy, dx),
            }[Qt.Key(key)]
            if along <= 0:
                continue
            # In the cone first; then by distance, a sideways step counting double.
            rank = (abs(across) > along, along + 2 * abs(across), t.root)
            if best is None or rank < best:
                best = rank
        return best[2] if best is not None else None

    def show_tree(self, root: str) -> None:
        """Scrolls the tree's block into view without changing the zoom."""
        layout = self.chain_scene.layout
        index = layout.component_of.get(root) if layout is not None else None
        if layout is None or index is None:
            return
        comp = layout.components[index]
        self.ensureVisible(QRectF(comp.x, comp.y, comp.w, comp.h), 40, 40)

    def _positions(self) -> dict[str, tuple[float, float]]:
        layout = self.chain_scene.layout
        return layout.positions if layout is not None else {}

    def neighbour(self, key: int) -> str | None:
        """The card an arrow key moves to, as drawn: Left the backing file, Right the topmost
        overlay, Up / Down the nearest card above / below in the same column."""
        layout = self.chain_scene.layout
        if layout is None or not layout.components:
            return None
        pos = layout.positions
        node = self.chain_scene.selected
        if node not in pos:
            return layout.components[0].root if key in _NAV_KEYS else None
        forest = layout.forest
        if key == Qt.Key.Key_Left:
            return forest.parent.get(node)
        if key == Qt.Key.Key_Right:
            kids = [k for k in forest.kids(node) if k in pos]
            return min(kids, key=lambda k: pos[k][1]) if kids else None
        if key in (Qt.Key.Key_Up, Qt.Key.Key_Down):
            x, y = pos[node]
            column = self.chain_scene.column(x)
            i = bisect.bisect_left(column, (y, node))
            j = i + 1 if key == Qt.Key.Key_Down else i - 1
            return column[j][1] if 0 <= j < len(column) else None
        return None

    # -- focus: a frame round the view, a dashed ring round the current card

    def focusInEvent(self, event) -> None:
        super().focusInEvent(event)
        self.chain_scene.set_focus_visible(True)
        self.viewport().update()

    def focusOutEvent(self, event) -> None:
        super().focusOutEvent(event)
        self.chain_scene.set_focus_visible(False)
        self.viewport().update()

    def paintEvent(self, event) -> None:
        super().paintEvent(event)
        self.painted.emit()
        scene = self.chain_scene
        if scene.problems_only and scene.snapshot is not None and not scene.card_count:
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(
                self.viewport().rect(),
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                "No problems: every chain opens.\nTurn off View ▸ Problems Only to see them all.",
            )
            painter.end()
        if self.hasFocus():
            painter = QPainter(self.viewport())
            pen = QPen(self.palette().color(QPalette.ColorRole.Highlight), FOCUS_FRAME)
            pen.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
            painter.setPen(pen)
            half = FOCUS_FRAME / 2
            painter.drawRect(QRectF(self.viewport().rect()).adjusted(half, half, -half, -half))
            painter.end()

    def scrollContentsBy(self, dx: int, dy: int) -> None:
        super().scrollContentsBy(dx, dy)
        self.chain_scene.view_moved()
        if self.hasFocus():  # the scrolled pixels carried the frame inwards: paint the edges
            r = self.viewport().rect()
            w = FOCUS_FRAME + abs(dx) + 1
            h = FOCUS_FRAME + abs(dy) + 1
            edges = QRegion(QRect(0, 0, r.width(), h)) + QRegion(
                QRect(0, r.height() - h, r.width(), h)
            )
            edges += QRegion(QRect(0, 0, w, r.height())) + QRegion(
                QRect(r.width() - w, 0, w, r.height())
            )
            self.viewport().update(edges)

    def _on_built(self) -> None:
        self.viewport().update()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.chain_scene.view_moved()
        self.minimap.follow()


_NAV_KEYS = (Qt.Key.Key_Left, Qt.Key.Key_Right, Qt.Key.Key_Up, Qt.Key.Key_Down)
