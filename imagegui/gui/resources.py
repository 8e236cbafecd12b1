"""The one place that knows where the resources are: icons, the style sheet, the app icon.

They are package data, found with ``importlib.resources`` whatever the install: in the repository
``imagegui/resources`` is a symlink to the top-level ``resources/`` (an editable install, or a
worktree on PYTHONPATH, reads its own copy), and a wheel or sdist carries the files themselves in
``imagegui/resources/`` (pip, pipx). Qt wants file names, so the package must live on a file
system (not in a zip), which pip and pipx always do.
"""

from __future__ import annotations

from functools import cache
from importlib import resources as _importlib_resources
from pathlib import Path

from PySide6.QtCore import QByteArray, QEvent, QRect, QSize, Qt
from PySide6.QtGui import QIcon, QIconEngine, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QApplication, QLabel, QStyleOption, QWidget

from imagegui.gui import theme


@cache
def resources_dir() -> Path:
    found = _importlib_resources.files("imagegui") / "resources"
    path = Path(str(found))
    if not isinstance(found, Path) or not (path / "icons").is_dir():
        raise FileNotFoundError(
            f"imagegui's resources are missing: {found} has no icons/ (a broken install; "
            "reinstall imagegui)"
        )
    return path


def icon_path(name: str) -> Path:
    return resources_dir() / "icons" / f"{name}.svg"


@cache
def icon(name: str) -> QIcon:
    """An SVG icon by file name (``icons/<name>.svg``); the theme's icon of that name wins when
    the desktop has one, so the toolbar matches the rest of the desktop."""
    path = icon_path(name)
    own = QIcon(str(path)) if path.exists() else QIcon()
    if path.exists():
        svg = path.read_text(encoding="utf-8")
        if theme.ICON_INK in svg:
            own = QIcon(_InkedSvgEngine(svg))
    return QIcon.fromTheme(name, own) if not name.startswith("state-") else own


class _InkedSvgEngine(QIconEngine):
    """A monochrome SVG icon drawn in the palette's ink (``theme.icon_svg``) each time it is
    asked for, so toolbar icons stay visible when the palette turns dark, live."""

    def __init__(self, svg: str):
        super().__init__()
        self._svg = svg
        self._cache: dict[tuple, QPixmap] = {}

    def clone(self) -> QIconEngine:
        return _InkedSvgEngine(self._svg)

    def paint(self, painter: QPainter, rect: QRect, mode: QIcon.Mode, state: QIcon.State) -> None:
        ratio = painter.device().devicePixelRatioF() if painter.device() else 1.0
        painter.drawPixmap(rect, self.scaledPixmap(rect.size(), mode, state, ratio))

    def pixmap(self, size: QSize, mode: QIcon.Mode, state: QIcon.State) -> QPixmap:
        return self.scaledPixmap(size, mode, state, 1.0)

    def scaledPixmap(self, size: QSize, mode: QIcon.Mode, state: QIcon.State, scale: float):
        svg = theme.icon_svg(self._svg)
        key = (size.width(), size.height(), mode, scale, svg)
        pm = self._cache.get(key)
        if pm is None:
            w, h = max(1, round(size.width() * scale)), max(1, round(size.height() * scale))
            pm = QPixmap(w, h)
            pm.fill(Qt.GlobalColor.transparent)
            painter = QPainter(pm)
            QSvgRenderer(QByteArray(svg.encode())).render(painter)
            painter.end()
            app = QApplication.instance()
            if mode == QIcon.Mode.Disabled and isinstance(app, QApplication):
                option = QStyleOption()
                option.palette = app.palette()
                pm = app.style().generatedIconPixmap(mode, pm, option)
            pm.setDevicePixelRatio(scale)
            if len(self._cache) > 32:
                self._cache.clear()
            self._cache[key] = pm
        return pm


def app_icon() -> QIcon:
    return QIcon(str(resources_dir() / "imagegui.svg"))


_pixmaps: dict[tuple[str, int, float, int], QPixmap] = {}


def pixmap(name: str, size: int, ratio: float = 1.0) -> QPixmap:
    """A rendered icon, cached: the graph paints the same few badges thousands of times. The
    cache is keyed by the palette's ink too: a monochrome icon drawn for the light palette is
    invisible on the dark one."""
    key = (name, size, ratio, theme.current().icon_ink.rgba())
    pm = _pixmaps.get(key)
    if pm is None:
        px = max(1, round(size * ratio))
        pm = QPixmap(px, px)
        pm.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pm)
        icon(name).paint(painter, 0, 0, px, px)
        painter.end()
        pm.setDevicePixelRatio(ratio)
        _pixmaps[key] = pm
    return pm


class IconLabel(QLabel):
    """A monochrome icon as a label, drawn again in the new ink when the palette changes (a
    pixmap set once keeps the old palette's ink: light on light after switching back)."""

    def __init__(self, name: str, size: int, parent: QWidget | None = None):
        super().__init__(parent)
        self._name, self._size = name, size
        self._render()

    def _render(self) -> None:
        self.setPixmap(pixmap(self._name, self._size, self.devicePixelRatioF()))

    def event(self, e: QEvent) -> bool:
        if e.type() in (QEvent.Type.ApplicationPaletteChange, QEvent.Type.PaletteChange):
            self._render()
        return super().event(e)


def stylesheet() -> str:
    path = resources_dir() / "style.qss"
    return path.read_text(encoding="utf-8") if path.exists() else ""
