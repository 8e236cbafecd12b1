"""The broken chains named in a corner of the zoomed-out graph.

At 100,000 images fitted in the window a tree's block is a few pixels tall and the labels of
broken trees rarely find room between the marker dots (``overview.LabelLayer``): the picture says
*that* chains are broken and where, not *which*. This list says which: every tree with a chain
qemu cannot open, worst first, by its base's name and image count, in the top-left corner while
the overview is drawn. Choosing one (click, or Enter in the list) selects its base and zooms in on
it, as a click on its block does. While the chains list is filtered it lists only trees with a
match, as the blocks are faded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QFrame, QLabel, QListWidget, QListWidgetItem, QVBoxLayout
from shiboken6 import isValid

from imagegui.core.units import display_path
from imagegui.gui import resources
from imagegui.gui.panels.chains_model import STATE_ICON

if TYPE_CHECKING:
    from imagegui.gui.graph.view import ChainView

#: Distance from the view's corner, the list's width, and the rows shown before it scrolls.
INSET = 10
WIDTH = 280
ROWS = 6
#: The state icon's size in a row (pixels).
ICON = 14
#: Trees listed at most (the title gives the whole count).
MAX_ITEMS = 500
ROOT_ROLE = Qt.ItemDataRole.UserRole + 1


class TroubleList(QFrame):
    """The broken trees of the overview, each a row that zooms in on it."""

    def __init__(self, view: ChainView):
        super().__init__(view)
        self.view = view
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAutoFillBackground(True)
        self.setAccessibleName("Broken chains")
        self.title = QLabel()
        self.list = QListWidget()
        self.list.setAccessibleName("Broken chains")
        self.list.setAccessibleDescription(
            "Chain trees qemu cannot open all of, worst first: choose one to zoom in on it"
        )
        self.list.setToolTip("Chains qemu cannot open: click one to zoom in on it")
        self.list.setUniformItemSizes(True)
        self.list.setIconSize(QSize(ICON, ICON))
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.list.itemActivated.connect(self._on_activated)
        self.list.itemClicked.connect(self._on_activated)
        box = QVBoxLayout(self)
        box.setContentsMargins(6, 4, 6, 6)
        box.setSpacing(2)
        box.addWidget(self.title)
        box.addWidget(self.list)
        #: (overview data, filter's trees) the rows were made for.
        self._made_for: tuple[object, object] | None = None
        self.hide()
        view.zoomChanged.connect(self.follow)
        view.chain_scene.built.connect(self.follow)
        view.chain_scene.matchesChanged.connect(self.follow)

    def follow(self) -> None:
        """Shown while the overview is drawn and some tree is broken; the rows made again when
        the overview's data or the filter changed."""
        if not isValid(self):
            return
        overview = self.view.overview
        data = overview.current() if overview.shown else None
        if data is None:
            self.hide()
            return
        scene = self.view.chain_scene
        hits = scene.matched_trees if scene.matches is not None else None
        key = (data, scene.matches)
        if (
            self._made_for is None
            or self._made_for[0] is not key[0]
            or (self._made_for[1] is not key[1])
        ):
            self._made_for = key
            self._fill(data, hits)
        if self.list.count() == 0:
            self.hide()
            return
        rows = min(ROWS, self.list.count())
        self.list.setFixedHeight(rows * self.list.sizeHintForRow(0) + 2 * self.list.frameWidth())
        self.setFixedWidth(WIDTH)
        self.adjustSize()
        self.move(INSET, INSET)
        self.show()
        self.raise_()

    def _fill(self, data, hits: set[int] | None) -> None:
        broken = [i for i in data.troubled if data.trees[i].broken and (hits is None or i in hits)]
        self.list.clear()
        for i in broken[:MAX_ITEMS]:
            tree = data.trees[i]
            text = f"{display_path(tree.name)} · {tree.count_label()}"
            item = QListWidgetItem(resources.icon(STATE_ICON[tree.worst]), text)
            item.setData(ROOT_ROLE, tree.root)
            item.setToolTip(display_path(tree.root))
            self.list.addItem(item)
        more = f" (the first {MAX_ITEMS:,})" if len(broken) > MAX_ITEMS else ""
        self.title.setText(f"<b>Broken chains: {len(broken):,}</b>{more}")
        self.title.setAccessibleName(f"Broken chains: {len(broken):,}")

    def roots(self) -> list[str]:
        """The bases listed, in order."""
        return [self.list.item(r).data(ROOT_ROLE) for r in range(self.list.count())]

    def _on_activated(self, item: QListWidgetItem) -> None:
        root = item.data(ROOT_ROLE)
        self.view.nodeClicked.emit(root)
        self.view.zoom_to_tree(root)
