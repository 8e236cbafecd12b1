"""The open folder's inotify watcher (``core.read.watch``), its reports brought to the GUI thread.

The watcher's thread emits a private signal; Qt queues it to this object's thread (the GUI
thread), so the slots never touch anything from the watcher's thread. Each watcher gets a
generation number: a report still queued when the folder changed or watching stopped is
dropped, so nothing of an old folder reaches the session.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal

from imagegui import logsetup
from imagegui.core.chains import checkstore
from imagegui.core.ops import journal
from imagegui.core.read.rescan import ScanState
from imagegui.core.read.scan import ScanResult
from imagegui.core.read.watch import Changes, TreeWatcher, WatchStatus


class ScanMemory:
    """What the last scan of the open folder read (``core.read.rescan.ScanState``), so that a
    rescan costs what changed and returns what a full scan would.

    Used by the scan jobs on the worker, one at a time (the session starts a rescan only when
    no scan runs); opening a folder makes a new memory, so a superseded job that still runs
    never shares one with its successor. A rescan that fails or is cancelled leaves the state
    as it was."""

    def __init__(self) -> None:
        self.state: ScanState | None = None

    def scanner(
        self, changed: set[str] | None
    ) -> Callable[[str, Callable[[int], None]], ScanResult]:
        """A scan function for ``make_scan_job``: the first scan of a folder is a full one that
        keeps its state; later ones rescan ``changed`` (None: every stamp checked)."""

        def scan(root: str, progress: Callable[[int], None]) -> ScanResult:
            state = self.state
            if state is None or state.root != root:
                self.state = None
                state = ScanState.from_full(root, progress)
                self.state = state
                return state.result
            return state.rescan(changed, progress)

        return scan


def own_dirs(settings_file: str) -> frozenset[str]:
    """The folders where imagegui writes its own files: settings, log, journal, check results.
    Their changes are not news (a scan of the home folder would otherwise rescan after every
    settings or log write, and each rescan writes them again)."""
    files = [
        settings_file,
        str(logsetup.log_path()),
        journal.journal_path(),
        checkstore.store_path(),
    ]
    return frozenset(os.path.dirname(os.path.abspath(f)) for f in files if f)


def drop_own(changes: Changes, dirs: frozenset[str]) -> Changes:
    """``changes`` without the paths of imagegui's own files (``own_dirs``)."""
    kept = frozenset(p for p in changes.paths if os.path.dirname(p) not in dirs)
    if len(kept) == len(changes.paths):
        return changes
    return Changes(kept, changes.overflow, changes.root_gone)


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
