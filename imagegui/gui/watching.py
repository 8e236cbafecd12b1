"""The open folder's inotify watcher (``core.read.watch``), its reports brought to the GUI thread.

The watcher's thread emits a private signal; Qt queues it to this object's thread (the GUI
thread), so the slots never touch anything from the watcher's thread. Each watcher gets a
generation number: a report still queued when the folder changed or watching stopped is
dropped, so nothing of an old folder reaches the session.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from imagegui.core.read.watch import Changes, TreeWatcher, WatchStatus


class LiveWatch(QObject):
    #: ``core.read.watch.Changes`` of the watched folder.
    changed = Signal(object)
    #: ``core.read.watch.WatchStatus``, or None when nothing is watched (another host's images).
    statusChanged = Signal(object)
    #: (generation, Changes | WatchStatus), emitted on the watcher's thread.
    _report = Signal(int, object)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._watcher: TreeWatcher | None = None
        self._generation = 0
        self.root: str | None = None
        self.status: WatchStatus | None = None
        self._report.connect(self._on_report)
        # The thread must not outlive its owner (a window closed without Session.stop()).
        self.destroyed.connect(_stopper(self))

    def watch(self, root: str) -> None:
        """Watches ``root`` (all of it, on a thread); nothing happens if it is watched already."""
        if self._watcher is not None and self.root == root and self._watcher.running:
            return
        self.stop()
        self._generation += 1
        generation = self._generation
        self.root = root
        self._watcher = TreeWatcher(
            root,
            lambda changes: self._report.emit(generation, changes),
            lambda status: self._report.emit(generation, status),
        )
        self._watcher.start()

    def stop(self) -> None:
        """Stops watching (waits for the thread: it ends between two directories at worst)."""
        self._generation += 1
        watcher, self._watcher = self._watcher, None
        self.root = None
        if watcher is not None:
            watcher.stop()
        if self.status is not None:
            self.status = None
            self.statusChanged.emit(None)

    @property
    def complete(self) -> bool:
        """Every folder of the tree is watched and the watcher runs: paths it reports are all
        that changed."""
        return self.status is not None and self.status.complete

    def _on_report(self, generation: int, report: object) -> None:
        if generation != self._generation:
            return  # an old folder's, queued before it was stopped
        if isinstance(report, WatchStatus):
            self.status = report
            self.statusChanged.emit(report)
        elif isinstance(report, Changes):
            self.changed.emit(report)


def _stopper(live: LiveWatch):
    """A slot for ``destroyed`` that does not reach the dead QObject, only its watcher."""

    def stop() -> None:
        watcher = live._watcher
        if watcher is not None:
            watcher.stop()

    return stop
