"""The one place that knows where ``resources/`` is: icons, the style sheet, the app icon.

The package is installed editable, so ``resources/`` sits at the repository root beside the
package: ``Path(imagegui.__file__).parents[1] / "resources"``. A wheel that ships the directory
inside the package (``imagegui/resources``) is looked at first.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon, QPainter, QPixmap

import imagegui


@cache
def resources_dir() -> Path:
    package = Path(imagegui.__file__).resolve().parent
    for candidate in (package / "resources", package.parent / "resources"):
        if (candidate / "icons").is_dir():
            return candidate
    raise FileNotFoundError(f"imagegui's resources/ directory is missing (looked beside {package})")


def icon_path(name: str) -> Path:
    return resources_dir() / "icons" / f"{name}.svg"


@cache
def icon(name: str) -> QIcon:
    """An SVG icon by file name (``icons/<name>.svg``); the theme's icon of that name wins when
    the desktop has one, so the toolbar matches the rest of the desktop."""
    path = icon_path(name)
    own = QIcon(str(path)) if path.exists() else QIcon()
    return QIcon.fromTheme(name, own) if not name.startswith("state-") else own


def app_icon() -> QIcon:
    return QIcon(str(resources_dir() / "imagegui.svg"))


_pixmaps: dict[tuple[str, int, float], QPixmap] = {}


def pixmap(name: str, size: int, ratio: float = 1.0) -> QPixmap:
    """A rendered icon, cached: the graph paints the same few badges thousands of times."""
    key = (name, size, ratio)
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


def stylesheet() -> str:
    path = resources_dir() / "style.qss"
    return path.read_text(encoding="utf-8") if path.exists() else ""


ICON_SIZE = QSize(20, 20)
