"""Background work held back until the graph has been painted.

A worker thread that runs Python beside the GUI thread makes every Python call Qt makes while
painting wait for the GIL (up to the 5 ms switch interval each). The space report and the
Folders listing are such workers: started beside the scene's build and first paint of 100,000
images they stretched it by ~0.5 s and its longest stall to ~170 ms. So they start once the
view has painted the new graph; at once when the view is not on screen (another view in front,
the welcome page); after ``FALLBACK_MS`` when it is but does not paint (a minimized window):
late, never lost.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer

#: The longest a held-back job waits when the view paints nothing.
FALLBACK_MS = 1000


class AfterPaint(QObject):
    """Jobs by name, each run once after the next paint the view makes while ``busy()`` is
    false; a newer job of the same name replaces the one still waiting (a second snapshot's
    Folders listing replaces the first's)."""

    def __init__(
        self, busy: Callable[[], bool], shown: Callable[[], bool], parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._busy = busy
        self._shown = shown
        self._waiting: dict[str, Callable[[], None]] = {}
        self._fallback = QTimer(self)
        self._fallback.setSingleShot(True)
        self._fallback.setInterval(FALLBACK_MS)
        self._fallback.timeout.connect(self.run_now)

    def add(self, name: str, work: Callable[[], None]) -> None:
        self._waiting[name] = work
        if self._shown():
            self._fallback.start()
        else:  # no paint to wait for
            QTimer.singleShot(0, self.run_now)

    def painted(self) -> None:
        """The view painted: what waits runs now, unless a scene is still being built (its
        slices would then share the GIL with the jobs)."""
        if self._waiting and not self._busy():
            # After this paint has returned to the event loop, not inside paintEvent.
            QTimer.singleShot(0, self.run_now)

    def run_now(self) -> None:
        if self._busy():
            self._fallback.start()
            return
        self._fallback.stop()
        waiting, self._waiting = self._waiting, {}
        for work in waiting.values():
            work()

    @property
    def waiting(self) -> tuple[str, ...]:
        return tuple(self._waiting)
