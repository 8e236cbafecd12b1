"""The open directory: scanning it on the worker pool, watching it, and the current image.

One scan at a time per directory: a rescan asked for while one runs is remembered and started when
it ends (so a burst of file events costs two scans, not twenty); opening another directory cancels
the running scan. Directory changes reach a debounce timer; while an operation is writing into the
directory (``hold``) automatic rescans wait for it, so a half-written flatten output never shows up
as a broken image.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QFileSystemWatcher, QObject, QTimer, Signal

from imagegui.gui.settings import Settings
from imagegui.gui.snapshot import ScanReporter, Snapshot, make_scan_job
from imagegui.gui.workers import JobHandle

#: Quiet time after the last file event before an automatic rescan.
DEBOUNCE_MS = 800
#: inotify watches are a per-user resource: watch at most this many directories.
MAX_WATCHED = 2000


class Selection(QObject):
    """The current image, shared by the graph, the list, the details panel and the actions."""

    changed = Signal(object)  # str | None

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.node: str | None = None

    def set(self, node: str | None) -> None:
        if node != self.node:
            self.node = node
            self.changed.emit(node)


class Session(QObject):
    scanStarted = Signal(str)
    scanProgress = Signal(int)
    scanStage = Signal(str)
    snapshotReady = Signal(object)
    #: (target, message)
    scanFailed = Signal(str, str)

    def __init__(self, settings: Settings, parent: QObject | None = None):
        super().__init__(parent)
        self.settings = settings
        self.root: str | None = None
        self.snapshot: Snapshot | None = None
        self._job: JobHandle | None = None
        self._target: str | None = None
        self._pending = False
        self._holds = 0
        #: Width / height of the graph area, for the layout (the window keeps it current).
        self.aspect = 1.6
        self._reporter = ScanReporter(self)
        self._reporter.files.connect(self.scanProgress)
        self._reporter.stage.connect(self.scanStage)
        self._watcher = QFileSystemWatcher(self)
        self._watcher.directoryChanged.connect(self._on_directory_changed)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.timeout.connect(self._on_debounce_timeout)

    @property
    def scanning(self) -> bool:
        return self._job is not None

    # -- scanning

    def open(self, target: str) -> None:
        """Scans ``target`` (a directory, or a file whose directory is scanned)."""
        if self._job is not None:
            self._job.cancel()
        self._pending = False
        self._start(target)

    def rescan(self) -> None:
        if self.root is None:
            return
        if self._job is not None:
            self._pending = True
            return
        self._start(self.root)

    def rescan_soon(self, delay_ms: int = 150) -> None:
        """A rescan after a short quiet period (merges with file events that are on their way)."""
        self._debounce.start(delay_ms)

    def _start(self, target: str) -> None:
        self._target = target
        self.scanStarted.emit(target)
        handle = JobHandle(make_scan_job(target, self._reporter, self.aspect))
        # Each handler knows its own handle: a cancelled scan that still reports is ignored.
        handle.signals.finished.connect(lambda snap: self._on_scan_finished(handle, snap))
        handle.signals.failed.connect(lambda exc: self._on_scan_failed(handle, exc))
        handle.signals.cancelled.connect(lambda _msg: self._on_scan_cancelled(handle))
        self._job = handle
        handle.start()

    def _on_scan_finished(self, handle: JobHandle, snapshot: Snapshot) -> None:
        if handle is not self._job:
            return
        self._job = None
        self.root = snapshot.root
        self.snapshot = snapshot
        self._watch(snapshot)
        self.snapshotReady.emit(snapshot)
        self._next()

    def _on_scan_failed(self, handle: JobHandle, exc: object) -> None:
        if handle is not self._job:
            return
        self._job = None
        target = self._target or ""
        if isinstance(exc, OSError) and exc.strerror:
            message = f"Cannot open {target}: {exc.strerror}."
        else:
            message = f"Scanning {target} failed: {exc}"
        self.scanFailed.emit(target, message)
        self._next()

    def _on_scan_cancelled(self, handle: JobHandle) -> None:
        if handle is self._job:
            self._job = None
            self._next()

    def _next(self) -> None:
        if self._pending and self.root is not None:
            self._pending = False
            self._start(self.root)

    # -- watching

    def _watch(self, snapshot: Snapshot) -> None:
        old = self._watcher.directories()
        if old:
            self._watcher.removePaths(old)
        dirs = {snapshot.root}
        for path in snapshot.graph.scan.images:
            dirs.add(os.path.dirname(path))
            if len(dirs) >= MAX_WATCHED:
                break
        self._watcher.addPaths(sorted(dirs))

    def _on_directory_changed(self, _path: str) -> None:
        if self.settings.auto_rescan():
            self._debounce.start(DEBOUNCE_MS)

    def _on_debounce_timeout(self) -> None:
        if self._holds:
            return  # release() rescans
        self.rescan()

    # -- writers

    def hold(self) -> None:
        """An operation is writing into the directory: automatic rescans wait."""
        self._holds += 1

    def release(self) -> None:
        self._holds = max(0, self._holds - 1)
        if not self._holds:
            self.rescan_soon()

    def stop(self) -> None:
        """Cancels a running scan and stops watching (window closing)."""
        self._debounce.stop()
        if self._job is not None:
            self._job.cancel()
        old = self._watcher.directories()
        if old:
            self._watcher.removePaths(old)
