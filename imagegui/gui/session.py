"""The open directory: scanning it on the worker pool, watching it, and the current image.

One scan at a time, in the session's task slot: a rescan asked for while one runs is remembered
and started when it ends (so a burst of file events costs two scans, not twenty); opening another
directory supersedes the running scan (the slot cancels it, and its result never arrives).
A local folder is watched with inotify (``gui.watching``: every directory under it, on a thread
of its own, started by the first scan's job before it walks, so no change falls between the scan
and the watch; then also the folders of backing files outside it, and the images' locks, for a
VM that opens an image without writing it); the paths it reports gather in ``changed`` until a
debounce timer fires, and the rescan is told them (everything when events were lost or the
watch is incomplete). While an operation is writing into the directory (``hold``) automatic
rescans wait for it, so a half-written flatten output never shows up as a broken image. When the
system refuses to watch every folder, the folder is rescanned periodically instead
(``PERIODIC_MIN_MS``), and the status bar says so. A rescan that file events started is a *live*
update (``live_update``): the window keeps its zoom and scroll position for it.

Each scan also reads the local libvirt hosts (``hosts``, beside the walk, on a worker); the scan
job takes that read before it builds the graph, so the graph knows which VMs use which images.
When the read ends after the graph was built and says something new, the graph is built once more
from the same scan (no new walk) and announced again; the local graph is never held back for it.

Each local scan's space report (``gui.spacejob``: allocation maps, guest data, shadowed and
reclaimable bytes) is read in a task slot of its own, reusing the maps of files that did not
change, once the window has drawn the scan (``read_space``): thousands of maps read in Python
beside the graph's construction would slow both. ``spaceReady`` announces it (None when a new
snapshot makes the last one stale, or for another host's images).
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Signal

from imagegui.core.read.watch import Changes, WatchStatus
from imagegui.core.virt.connect import LibvirtUnreachable
from imagegui.core.virt.inventory import Hosts
from imagegui.gui.hosts import HostsReader, hosts_key
from imagegui.gui.settings import Settings
from imagegui.gui.snapshot import Snapshot, make_attach_job, make_remote_job, make_scan_job
from imagegui.gui.spacejob import SpaceResult, make_space_job
from imagegui.gui.watching import LiveWatch, ScanMemory, drop_own, own_dirs
from imagegui.gui.workers import TaskSlot

#: Quiet time after the last file event before an automatic rescan.
DEBOUNCE_MS = 800
#: When not every folder can be watched: rescan at most this often, and at most a 1/PERIODIC_SHARE
#: of the time (a scan taking 6 s runs every 2 minutes at most).
PERIODIC_MIN_MS = 60_000
PERIODIC_SHARE = 20
#: Past this many changed paths gathered, the next rescan looks at everything instead.
MAX_CHANGED = 50_000


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
    #: A rescan found nothing new: the snapshot shown stays (no graph built, nothing redrawn).
    scanUnchanged = Signal()
    #: (target, message)
    scanFailed = Signal(str, str)
    #: (target) the scan of ``target`` was stopped (``cancel_scan``): what was shown stays.
    scanCancelled = Signal(str)
    #: The space report of the current snapshot (``core.chains.space.SpaceReport``), or None:
    #: being read (``spaceProgress`` follows), or not available (``space_note`` says why).
    spaceReady = Signal(object)
    spaceProgress = Signal(float)
    #: The folder watch's ``core.read.watch.WatchStatus``, or None when nothing is watched.
    watchStatusChanged = Signal(object)

    def __init__(self, settings: Settings, parent: QObject | None = None):
        super().__init__(parent)
        self.settings = settings
        self.root: str | None = None
        self.snapshot: Snapshot | None = None
        self._scan = TaskSlot(
            self,
            on_done=self._on_scan_finished,
            on_failed=self._on_scan_failed,
            on_cancelled=self._on_scan_cancelled,
            on_note=self._on_scan_note,
        )
        self._target: str | None = None
        #: The host whose images are shown (``open_remote``) instead of a directory.
        self.remote_uri: str | None = None
        self._pending = False
        self._holds = 0
        #: Width / height of the graph area, for the layout (the window keeps it current).
        self.aspect = 1.6
        #: The local folder's inotify watch; its status is the window's "Watching N folders".
        self.live = LiveWatch(self)
        self.live.changed.connect(self._on_files_changed)
        self.live.statusChanged.connect(self._on_watch_status)
        self._own_dirs = own_dirs(settings.q.fileName())
        #: What the open folder's last scan read: rescans reuse it (``ScanMemory``).
        self._memory = ScanMemory(self.live.watch_and_wait)
        #: The shown folder's memory while another folder is being opened, when no job can be
        #: using it: a failed or stopped open gives it back, so the rescan that follows reads
        #: only what changed (``_restore_memory``).
        self._shown_memory: ScanMemory | None = None
        #: Paths changed since the last rescan started; None: look at everything.
        self.changed: set[str] | None = None
        #: The last scan finished was started by file events or the periodic rescan, not by a
        #: user or an operation: the window keeps its view as it is.
        self.live_update = False
        self._live_next = False
        self._live_running = False
        #: What the running (or last) scan was told changed; None: everything.
        self.scan_changed: set[str] | None = None
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.timeout.connect(self._on_debounce_timeout)
        self._periodic = QTimer(self)
        self._periodic.timeout.connect(self._on_periodic)
        #: The libvirt hosts (``gui.hosts``): local ones read with every scan.
        self.hosts = HostsReader(settings, self)
        self.hosts.localRead.connect(self._on_local_hosts)
        #: Builds the graph again when the local hosts were read after the scan's graph was.
        self._attach = TaskSlot(self, on_done=self._on_attached)
        self._attaching: Hosts | None = None
        #: The space report of ``snapshot`` (None until read), and why there is none.
        self.space_report = None
        self.space_note = ""
        self._space = TaskSlot(
            self,
            on_done=self._on_space_read,
            on_failed=self._on_space_failed,
            on_progress=self.spaceProgress.emit,
        )
        self._maps: dict = {}
        self._space_for: Snapshot | None = None

    @property
    def scanning(self) -> bool:
        return self._scan.running

    @property
    def live_scan(self) -> bool:
        """The running (or last started) scan was started by file events or the periodic
        rescan, not by the user or an operation."""
        return self._live_running

    # -- scanning

    def open(self, target: str) -> None:
        """Scans ``target`` (a directory, or a file whose directory is scanned)."""
        self._pending = False
        self._live_next = False
        self._debounce.stop()
        self.remote_uri = None
        if not self._scan.running and self._memory.state is not None:
            self._shown_memory = self._memory
        # A full scan (watching first); a superseded job keeps the old memory.
        self._memory = ScanMemory(self.live.watch_and_wait)
        self._start(target)

    def open_remote(self, uri: str) -> None:
        """Shows the images of the host at ``uri`` (its storage volumes, through libvirt)."""
        self._pending = False
        self._live_next = False
        self._debounce.stop()
        self.remote_uri = uri
        self._start(uri)

    def rescan(self) -> None:
        """Scans the open folder (or host) again, looking at everything (Rescan)."""
        self.changed = None
        self._live_next = False
        self._rescan()

    def _rescan(self) -> None:
        if self.root is None:
            return
        if self._scan.running:
            self._pending = True
            return
        self._start(self.remote_uri or self.root)

    def rescan_soon(self, delay_ms: int = 150) -> None:
        """A rescan of everything after a short quiet period (merges with file events on their
        way); not a live update: what an operation asked to show is shown."""
        self.changed = None
        self._live_next = False
        self._debounce.start(delay_ms)

    def _start(self, target: str) -> None:
        self._target = target
        self._live_running, self._live_next = self._live_next, False
        changed = self.changed if self.live.complete and target == self.root else None
        self.changed = set()
        self.scan_changed = changed
        self.scanStarted.emit(target)
        self._attach.discard()  # this scan takes the newest read itself
        aspect = self.aspect
        self.hosts.read_local()  # beside the walk; the job takes it before building the graph
        if self.remote_uri is not None:
            uri = self.remote_uri
            self._scan.start_noting(lambda note: make_remote_job(uri, note, aspect))
            return
        latest = self.hosts.feed.latest
        scan = self._memory.scanner(changed)
        shown = self.snapshot  # its scene's trees are compared with the new ones on the worker
        # A rescan of the folder shown (not an open: that scans afresh) may find nothing new.
        rescan = self._memory.state is not None and target == self.root
        self._scan.start_noting(
            lambda note: make_scan_job(
                target, note, aspect, latest, scan, previous=shown, rescan=rescan
            )
        )

    def _on_scan_note(self, news: object) -> None:
        """The current scan's file count so far (an int), or the name of its next stage."""
        if isinstance(news, int):
            self.scanProgress.emit(news)
        else:
            self.scanStage.emit(str(news))

    def cancel_scan(self) -> None:
        """Stops the running scan (Stop Scanning). What was shown stays shown and watched: a
        folder being opened stops being watched at once (its first scan, still waiting for
        its watches, stops waiting) and ``scanCancelled`` follows when the job has ended."""
        if not self._scan.running:
            return
        self._pending = False
        self._live_next = False
        self._debounce.stop()
        self._scan.cancel()
        self._back_to_shown()

    def _back_to_shown(self) -> None:
        """After a scan that failed or was stopped: the host read and the watch follow what is
        shown again (the scan's job may have moved the watch to the folder it opened)."""
        shown = self.snapshot
        self.remote_uri = shown.remote_uri if shown is not None else None
        if shown is not None:
            self._watch(shown)
        else:
            self.live.stop()

    def _restore_memory(self) -> None:
        """Once an open of another folder has failed or stopped (its job has ended): the shown
        folder's memory again, if kept."""
        kept, self._shown_memory = self._shown_memory, None
        shown = self.snapshot
        if (
            kept is not None
            and kept.state is not None
            and shown is not None
            and shown.remote_uri is None
            and kept.state.root == shown.root
        ):
            self._memory = kept

    def _on_scan_finished(self, snapshot: Snapshot | None) -> None:
        self._shown_memory = None
        if snapshot is None:  # a rescan that changed nothing: the graph shown is current
            self.live_update = self._live_running
            self.scanUnchanged.emit()
            if not self._next():
                self._attach_hosts()
            return
        self.root = snapshot.root
        self.snapshot = snapshot
        self.remote_uri = snapshot.remote_uri
        self.live_update = self._live_running
        self._watch(snapshot)
        self._forget_space()
        self.snapshotReady.emit(snapshot)
        if not self._next():
            self._attach_hosts()

    def _on_scan_failed(self, exc: object) -> None:
        target = self._target or ""
        if self.remote_uri is not None:
            reason = exc.reason if isinstance(exc, LibvirtUnreachable) else str(exc)
            message = f"Cannot show the images of {target}: {reason}"
        elif isinstance(exc, OSError) and exc.strerror:
            message = f"Cannot open {target}: {exc.strerror}."
        else:
            message = f"Scanning {target} failed: {exc}"
        # What a rescan reads again is what is shown (a host that failed is not retried).
        self.changed = None  # what this scan was told is not shown: look at everything next
        self._restore_memory()
        self._back_to_shown()
        self.scanFailed.emit(target, message)
        self._next()

    def _on_scan_cancelled(self, _message: str) -> None:
        self.changed = None
        self._restore_memory()
        self._back_to_shown()  # the job may have watched its folder after the stop was asked
        self.scanCancelled.emit(self._target or "")
        self._next()

    def _next(self) -> bool:
        """Starts the rescan asked for meanwhile, if any (True then)."""
        if self._pending and self.root is not None:
            self._pending = False
            self._start(self.remote_uri or self.root)
            return True
        return False

    # -- libvirt hosts

    def refresh_hosts(self) -> None:
        """Reads every libvirt connection again (Refresh VMs); the graph follows if the local
        domains changed, without scanning the directory again."""
        self.hosts.refresh()

    def _on_local_hosts(self, _hosts: Hosts) -> None:
        if not self._scan.running:
            self._attach_hosts()

    def _attach_hosts(self) -> None:
        """Builds the graph again from the same scan when the local hosts read since say
        something else than the ones it was built with (only then: same read, same graph)."""
        snap = self.snapshot
        if snap is None or self.hosts.feed.pending or self._scan.running:
            return
        if snap.remote_uri is not None:  # another host's images: this machine's VMs use none
            return
        hosts = self.hosts.feed.current()
        if hosts is None or hosts_key(hosts) == hosts_key(snap.hosts):
            return
        self._attaching = hosts
        self._attach.start(make_attach_job(snap, hosts, self.aspect))

    def _on_attached(self, snapshot: Snapshot | None) -> None:
        hosts, self._attaching = self._attaching, None
        if snapshot is None:  # nothing the window shows changed: keep the graph drawn
            if self.snapshot is not None:
                self.snapshot.hosts = hosts
            return
        self.snapshot = snapshot
        self._forget_space()  # which VMs use an image changes what is reclaimable
        self.snapshotReady.emit(snapshot)

    # -- space

    def _forget_space(self) -> None:
        """A new snapshot: the report of the last one no longer applies."""
        self._space.discard()
        self._space_for = None
        if self.space_report is not None:
            self.space_report = None
            self.spaceReady.emit(None)

    def read_space(self) -> None:
        """Reads the space report of the current snapshot on a worker (maps of unchanged files
        reused), unless it is read or being read already; announces None meanwhile."""
        snap = self.snapshot
        if snap is None or self._space_for is snap:
            return
        self._space_for = snap
        self.space_report = None
        if snap.remote_uri is not None:
            self._space.discard()
            self.space_note = "not read for another host's images"
            self.spaceReady.emit(None)
            return
        self.space_note = "reading where the space goes…"
        self.spaceReady.emit(None)
        self._space.start(make_space_job(snap, self._maps, self.settings.qemu_img()))

    def _on_space_read(self, result: SpaceResult) -> None:
        self._maps = result.maps
        self.space_report = result.report
        self.space_note = ""
        self.spaceReady.emit(result.report)

    def _on_space_failed(self, exc: BaseException) -> None:
        self.space_note = f"where the space goes could not be read: {exc}"
        self.spaceReady.emit(None)

    # -- watching

    def _watch(self, snapshot: Snapshot) -> None:
        """Watches the scanned folder (kept across rescans of it); another host's images are
        not files here: nothing is watched for them."""
        if snapshot.remote_uri is not None:
            self.live.stop()
            self._periodic.stop()
            return
        if self.live.watch(snapshot.root):
            # Watching starts only now (the scan's job watched another folder, or the folder
            # came back): what changed since the scan read it is unknown. Look at everything.
            self.changed = None
            if self.settings.auto_rescan():
                self._live_next = self._live_next or not self._debounce.isActive()
                self._debounce.start(DEBOUNCE_MS)
        self.live.follow(snapshot.graph.scan)
        self._plan_periodic(self.live.status)

    def _on_files_changed(self, changes: Changes) -> None:
        changes = drop_own(changes, self._own_dirs)
        if not changes:
            return  # only imagegui's own settings, log or journal: rescanning would write them
        if changes.overflow:
            self.changed = None  # events were lost: only a look at everything can tell
        elif self.changed is not None:
            self.changed |= changes.paths
            if len(self.changed) > MAX_CHANGED:
                self.changed = None
        if changes.root_gone:
            return  # said in the status bar; a rescan would only fail to open it
        if self.settings.auto_rescan():
            if not self._debounce.isActive():
                self._live_next = True
            self._debounce.start(DEBOUNCE_MS)

    def _on_watch_status(self, status: WatchStatus | None) -> None:
        self.watchStatusChanged.emit(status)
        self._plan_periodic(status)

    def _plan_periodic(self, status: WatchStatus | None) -> None:
        """Rescans now and then while not every folder is watched (the watch limit, or no
        inotify), at most a 1/PERIODIC_SHARE of the time; never while watching is complete."""
        partial = status is not None and (status.limited or status.failure is not None)
        if not partial or not self.settings.auto_rescan() or self.snapshot is None:
            self._periodic.stop()
            return
        took = sum(self.snapshot.timings.values())
        interval = max(PERIODIC_MIN_MS, int(took * 1000 * PERIODIC_SHARE))
        if not self._periodic.isActive() or self._periodic.interval() != interval:
            self._periodic.start(interval)

    def settings_changed(self) -> None:
        """Preferences were saved: automatic rescans may have been turned on or off."""
        self._plan_periodic(self.live.status)

    def _on_periodic(self) -> None:
        if self._holds or self._scan.running or self._debounce.isActive():
            return
        self.changed = None
        self._live_next = True
        self._rescan()

    def _on_debounce_timeout(self) -> None:
        if self._holds:
            return  # release() rescans
        self._rescan()

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
        self._scan.discard()
        self._attach.discard()
        self._space.discard()
        self.hosts.stop()
        self._periodic.stop()
        self.live.stop()
