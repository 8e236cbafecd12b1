"""The open folder's inotify watcher (``core.read.watch``), its reports brought to the GUI thread.

The watcher's thread emits a private signal; Qt queues it to this object's thread (the GUI
thread), so the slots never touch anything from the watcher's thread. Each watcher gets a
generation number: a report still queued when the folder changed or watching stopped is
dropped, so nothing of an old folder reaches the session.

**The watch starts before the first walk.** A change made after the scan read a file and before
its directory was watched would stay unseen until some other event (a rebase rewrites a header
in place: no directory changes, no stamp a later look at directories would notice). So the
first (full) scan of a folder starts the watch from the worker and waits until every directory
is watched (``TreeWatcher.ready``); what changes during the walk is then reported as it happens
and the session rescans it afterwards, with those paths as hints. The price is the watch's set-up
before the walk instead of beside or after it (one ``scandir`` per directory, ``add_watch``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal

from imagegui import logsetup
from imagegui.core.chains import checkstore
from imagegui.core.ops import journal
from imagegui.core.read.locks import read_qemu_locks
from imagegui.core.read.rescan import ScanState
from imagegui.core.read.scan import ScanResult
from imagegui.core.read.watch import Changes, TreeWatcher, WatchStatus, stale_locks


class ScanMemory:
    """What the last scan of the open folder read (``core.read.rescan.ScanState``), so that a
    rescan costs what changed and returns what a full scan would.

    Used by the scan jobs on the worker, one at a time (the session starts a rescan only when
    no scan runs); opening a folder makes a new memory, so a superseded job that still runs
    never shares one with its successor. A rescan that fails or is cancelled leaves the state
    as it was. ``watch_first(root)``, when given, is called on the worker before a full scan and
    returns once ``root`` is watched (``LiveWatch.watch_and_wait``)."""

    def __init__(self, watch_first: Callable[[str], None] | None = None) -> None:
        self.state: ScanState | None = None
        self.watch_first = watch_first

    def scanner(
        self, changed: set[str] | None
    ) -> Callable[[str, Callable[[int], None]], ScanResult]:
        """A scan function for ``make_scan_job``: the first scan of a folder is a full one that
        keeps its state; later ones rescan ``changed`` (None: every stamp checked)."""

        def scan(root: str, progress: Callable[[int], None]) -> ScanResult:
            state = self.state
            if state is None or state.root != root:
                self.state = None
                if self.watch_first is not None:
                    progress(0)  # raises if this job was superseded: never watch its folder
                    self.watch_first(root)
                state = ScanState.from_full(root, progress)
                self.state = state
                return state.result
            result = state.rescan(changed, progress)
            if changed is None:
                # Every stamp was checked, but a VM that opened an image since changed none
                # (the watch's lock poll tells the hinted rescans): ask the lock table.
                locks = read_qemu_locks()
                stale = stale_locks(result, locks) if locks is not None else set()
                if stale:
                    result = state.rescan(stale, progress)
            return result

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
        #: Guards ``_watcher``, ``_generation`` and ``root``: the scan job's worker starts the
        #: watch of a folder it is about to walk (``watch_and_wait``).
        self._lock = threading.Lock()
        self._report.connect(self._on_report)
        # The thread must not outlive its owner (a window closed without Session.stop()).
        self.destroyed.connect(_stopper(self))

    def watch(self, root: str) -> bool:
        """Watches ``root`` (all of it, on a thread); nothing happens if it is watched already.
        True when a new watch was started: changes made before it is in place were not seen.
        Callable from any thread."""
        with self._lock:
            old = self._watcher
            if old is not None and self.root == root and old.running:
                return False
            self._generation += 1
            generation = self._generation
            self.root = root
            self._watcher = TreeWatcher(
                root,
                lambda changes: self._report.emit(generation, changes),
                lambda status: self._report.emit(generation, status),
            )
            self._watcher.start()
        if old is not None:
            old.stop()
        return True

    def watch_and_wait(self, root: str) -> None:
        """``watch(root)``, then waits until every directory under it is watched (or watching
        failed or was stopped). For the scan job's worker, before a first walk; never the GUI
        thread."""
        self.watch(root)
        with self._lock:
            watcher = self._watcher if self.root == root else None
        if watcher is not None:
            watcher.ready.wait()

    def follow(self, result: ScanResult) -> None:
        """Hands the watched folder's latest scan to the watcher: it watches the folders of
        backing files outside the tree and polls the images' locks (``TreeWatcher.follow``)."""
        with self._lock:
            watcher = self._watcher if self.root == result.root else None
        if watcher is not None:
            watcher.follow(result)

    def stop(self) -> None:
        """Stops watching (waits for the thread: it ends between two directories at worst)."""
        with self._lock:
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
