"""Dragging images inside the window: cards and list rows onto a folder of the Folders panel.

A drag carries the images' paths in a MIME type of our own, marked with this window's process,
and nothing else: no ``text/uri-list``, so a file manager is never offered the files and cannot
move one away from under its overlays (a plain file move breaks every chain that backs onto it).
The drop only opens the Move preview (``MoveOps.move_into``); nothing is moved before it is
accepted. A drag from another program (a file manager's files) is refused: a file from outside
the scanned folder may have overlays imagegui has not scanned, which a move would break.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

from PySide6.QtCore import QMimeData, QObject, QPoint, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QDrag, QFontMetrics, QPainter, QPainterPath, QPixmap
from PySide6.QtWidgets import QWidget

from imagegui.core.units import counted, display_path

#: The MIME type of a drag of images inside imagegui.
IMAGES_MIME = "application/x-imagegui-images"
#: This window's mark: a drag made by another imagegui (or forged) carries another one.
_TOKEN = f"{os.getpid()}-{os.urandom(16).hex()}"  # (not uuid: its import costs the window start)

FOREIGN_REFUSED = (
    "Only images dragged from this window can be dropped on a folder: a file from elsewhere may "
    "have overlays that are not scanned here, and moving it would break them."
)


class DragNews(QObject):
    """Says when a drag of images starts and ends (the window brings the Folders panel to the
    front for it, and puts back the panel it covered)."""

    #: The paths dragged.
    started = Signal(list)
    ended = Signal()


_news: DragNews | None = None


def news() -> DragNews:
    global _news
    if _news is None:
        _news = DragNews()
    return _news


def image_mime(paths: Sequence[str]) -> QMimeData:
    """The drag's data: the paths, marked as coming from this window."""
    mime = QMimeData()
    payload = {"token": _TOKEN, "paths": list(paths)}
    mime.setData(IMAGES_MIME, json.dumps(payload).encode())
    return mime


def dragged_paths(mime: QMimeData | None) -> list[str] | None:
    """The paths of a drag made in this window; None for any other drag (another program's,
    another imagegui's, or data that does not read)."""
    if mime is None or not mime.hasFormat(IMAGES_MIME):
        return None
    try:
        payload = json.loads(bytes(mime.data(IMAGES_MIME).data()).decode())
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(payload, dict) or payload.get("token") != _TOKEN:
        return None
    paths = payload.get("paths")
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths) or not paths:
        return None
    return paths


def drag_label(paths: Sequence[str]) -> str:
    """What the drag pixmap says: the image's name, or "3 images"."""
    if len(paths) == 1:
        return display_path(os.path.basename(paths[0]))
    return counted(len(paths), "image")


def drag_pixmap(widget: QWidget, text: str) -> QPixmap:
    """A rounded label in the palette's highlight colours naming what is dragged."""
    font = widget.font()
    font.setBold(True)
    metrics = QFontMetrics(font)
    text = metrics.elidedText(text, Qt.TextElideMode.ElideMiddle, 320)
    pad_x, pad_y = 10, 5
    width = metrics.horizontalAdvance(text) + 2 * pad_x
    height = metrics.height() + 2 * pad_y
    ratio = widget.devicePixelRatioF()
    pixmap = QPixmap(int(width * ratio), int(height * ratio))
    pixmap.setDevicePixelRatio(ratio)
    pixmap.fill(Qt.GlobalColor.transparent)
    pal = widget.palette()
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    path = QPainterPath()
    path.addRoundedRect(QRectF(0.5, 0.5, width - 1, height - 1), 6, 6)
    fill = QColor(pal.highlight().color())
    fill.setAlpha(230)
    painter.fillPath(path, fill)
    painter.setPen(pal.highlightedText().color())
    painter.setFont(font)
    painter.drawText(QRectF(0, 0, width, height), Qt.AlignmentFlag.AlignCenter, text)
    painter.end()
    return pixmap


def make_drag(source: QWidget, paths: Sequence[str]) -> QDrag:
    """The drag of ``paths`` from ``source`` (run it with ``exec``: Esc cancels it)."""
    drag = QDrag(source)
    drag.setMimeData(image_mime(paths))
    pixmap = drag_pixmap(source, drag_label(paths))
    drag.setPixmap(pixmap)
    drag.setHotSpot(QPoint(-12, -8))  # beside the pointer, not under it: the folder shows
    return drag


def start_drag(source: QWidget, paths: Sequence[str]) -> Qt.DropAction:
    """Drags ``paths`` (a move only: the drop opens the Move preview); returns how it ended."""
    if not paths:
        return Qt.DropAction.IgnoreAction
    drag = make_drag(source, paths)
    news().started.emit(list(paths))
    try:
        return drag.exec(Qt.DropAction.MoveAction, Qt.DropAction.MoveAction)
    finally:
        news().ended.emit()
