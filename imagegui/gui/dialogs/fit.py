"""Dialogs that fit their content: a minimum size below which nothing would overlap, and an
opening size that shows everything.

Qt drops a window's minimum height to nothing as soon as its layout holds a word-wrapped label
(the height then depends on the width), so a dialog could be shrunk until its buttons were painted
over the text, and a dialog whose text grew after it opened (a plan's refusal arrives from a
worker) stayed too short. ``fit_to_contents`` sets the minimum from the layout's minimum height at
the minimum width (the tallest the content gets) and grows the dialog, never shrinks it, up to the
screen. Call it when the content changes.
"""

from __future__ import annotations

from PySide6.QtWidgets import QWidget


def fit_to_contents(dialog: QWidget, min_width: int = 0) -> None:
    layout = dialog.layout()
    if layout is None:
        return
    layout.activate()
    width = max(min_width, layout.totalMinimumSize().width())
    if layout.hasHeightForWidth():
        min_height = layout.totalMinimumHeightForWidth(width)
    else:
        min_height = layout.totalMinimumSize().height()
    screen = dialog.screen().availableGeometry() if dialog.screen() else None
    if screen is not None:
        # A frame and a panel take some of the screen; content taller than that must scroll.
        min_height = min(min_height, screen.height() - 60)
        width = min(width, screen.width() - 20)
    dialog.setMinimumSize(width, min_height)
    # (dialog.width(), not size(): the overlay dialog has a field called ``size``)
    current = dialog.width() if dialog.isVisible() else dialog.sizeHint().width()
    want_w = max(current, width)
    if layout.hasHeightForWidth():
        want_h = layout.totalHeightForWidth(want_w)
    else:
        want_h = layout.totalSizeHint().height()
    want_h = max(want_h, min_height)
    if screen is not None:
        want_h = min(want_h, screen.height() - 60)
    if dialog.isVisible():
        if dialog.height() < want_h or dialog.width() < want_w:
            dialog.resize(want_w, max(dialog.height(), want_h))
            if screen is not None:  # grown past the screen's bottom: move up
                extra = dialog.y() + dialog.frameGeometry().height() - screen.bottom()
                if extra > 0:
                    dialog.move(dialog.x(), max(screen.top(), dialog.y() - extra))
    else:
        dialog.resize(want_w, want_h)
