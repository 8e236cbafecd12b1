"""Walk a directory safely and probe every image in it.

Safety rules: FIFOs, sockets and devices are never opened; directory symlinks are followed only
once (a loop is reported, never walked); a symlinked image is listed at its link path; every
failure (dangling link, permission, a file that vanishes or changes while read, a name that is not
UTF-8) becomes a :class:`ScanError` and the walk goes on. No file costs more than
``formats.base.MAX_READ`` bytes of reading.

Reads: the walk (listing directories, in name order) always runs on one thread. Each file is then
read either right there (``reads="serial"``) or on a small pool of threads (``"parallel"``), whose
results are taken back in the walk's order, so both give exactly the same :class:`ScanResult`.
``"auto"`` starts serial and moves to the pool for the rest of the walk once the walk is seen
waiting on storage (a cold page cache, a network filesystem): see :func:`parallel_reads_pay`.
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
import posixpath
import stat
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

from imagegui.core.gcpause import paused_gc
from imagegui.core.read import backing
from imagegui.core.read.fileid import FileId, file_id, stat_id
from imagegui.core.read.fileread import FileRead, os_error, read_file
from imagegui.core.read.model import ImageInfo, ScanError
from imagegui.core.read.partials import LEFTOVER_RE, leftover_note
from imagegui.core.read.probe import (
    ProbeError,
    file_kind,
    has_image_extension,
    open_regular,
    probe_fd,
)
from imagegui.core.read.reader_process import SharedReads, decode
from imagegui.core.units import printable

log = logging.getLogger(__name__)

#: How far to follow backing pointers that leave the scanned directory.
MAX_EXTERNAL_DEPTH = 64


@dataclass
class ScanResult:
    root: str
    #: Images under the root, keyed by their absolute listed path.
    images: dict[str, ImageInfo] = field(default_factory=dict)
    #: Backing files outside the root that scanned images point at (probed, never walked).
    external: dict[str, ImageInfo] = field(default_factory=dict)
    errors: list[ScanError] = field(default_factory=list)
    #: Other names of scanned images (hard links, symlinks to them): alias path -> image path.
    aliases: dict[str, str] = field(default_factory=dict)
    files_seen: int = 0
    seconds: float = 0.0
    #: The libvirt host whose files these paths name (``core.virt.remote.scan_host``), or None
    #: for files on this machine. Nothing built from a remote result may look at this machine's
    #: file system with its paths: :meth:`identify` and :meth:`normalise` answer instead.
    remote_uri: str | None = None
    #: For a remote result: every path known to exist on that host (its volumes, and backing
    #: files libvirt could open), with the file id made up for it (never a local one).
    remote_ids: dict[str, FileId] = field(default_factory=dict)

    def identify(self, path: str) -> FileId | None:
        """The id of the file ``path`` names where these images live, or None when it names
        none (a missing file): ``stat`` here, the host's known files for a remote result."""
        if self.remote_uri is None:
            return file_id(path)
        return self.remote_ids.get(path)

    def normalise(self, path: str) -> str:
        """``path`` as these images' paths are written: the kernel's way here, lexically for
        a remote host (its symlinks are not this machine's)."""
        if self.remote_uri is None:
            return backing.canonical(path)
        return posixpath.normpath(path if path.startswith("/") else "/" + path)

    def within(self, path: str, root: str) -> bool:
        """``path`` lies under ``root``: through this machine's symlinks too for local files
        (``backing.is_inside``), as written for a remote host."""
        if self.remote_uri is None:
            return backing.is_inside(path, root)
        return backing.is_within(path, root)


def _utf8_problem(path: str) -> bool:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


#: How a scan reads its files' headers (:func:`scan_directory`).
Reads = Literal["auto", "serial", "parallel"]

#: Threads reading headers in parallel. Reading 10,000 headers after the page cache was dropped
#: took 0.92 s with 8 threads against 1.6-2.1 s with one; more threads only queue at the disk.
READ_THREADS = 8
#: Files handed to a reading thread at once: one task per file cost more in hand-overs (a future,
#: a wake-up, the GIL) than a warm read itself.
READ_BATCH = 16
#: Batches read ahead of the one the walk takes back next; bounds memory on a huge tree.
READ_AHEAD = 4 * READ_THREADS


@dataclass(slots=True)
class _Batch:
    """Files handed to the reading threads at once, and the walk's other findings (errors)
    between them, in the walk's order: taken back in that order, they make the same result as
    a serial scan."""

    #: A listed file (path, is_symlink), or an error the walk found itself.
    steps: list[tuple[str, bool] | ScanError] = field(default_factory=list)
    files: list[tuple[str, bool]] = field(default_factory=list)
    reads: Future[list[FileRead]] | None = None


class _Walker:
    """Lists the tree on one thread and reads each file (:meth:`_file`) where it is found, or
    hands it to the reading threads (:meth:`_queue`) once reads are parallel.

    Listing and reading are separate steps: :meth:`_read_file` does a file's I/O and nothing
    else (it may run on a reading thread, so it changes no state here); :meth:`_settle` files its
    result (images, aliases, errors, raw candidates) on the walk's thread, in the walk's order.
    Only :meth:`walk` starts reading threads (and takes every read back before it returns): a
    subclass with a walk of its own reads serially through :meth:`_file`.
    """

    def __init__(
        self, root: str, progress: Callable[[int], None] | None, reads: Reads = "auto"
    ) -> None:
        self.result = ScanResult(root)
        self.progress = progress
        self.reads = reads
        #: As asked: ``reads`` turns serial once the walk is done, this stays (the backing
        #: files probed after the walk use the reading threads unless asked not to).
        self.requested: Reads = reads
        #: Files without magic that might still be raw bases: file id -> path.
        self.unclaimed: dict[tuple[int, int], str] = {}
        self.by_id: dict[tuple[int, int], str] = {}
        #: Images whose backing path named no image filed yet (:meth:`_settle`); shared with the
        #: base's path once the walk is done (:func:`_adopt_backing_files`).
        self.unshared: list[ImageInfo] = []
        #: The files of a big serial walk shared with a second process (``reader_process``).
        self.shared = SharedReads()
        #: When the walk last looked at whether it waits on the disk: wall clock and its
        #: thread's time on a CPU and waiting for one (None: not looking any more).
        self.waiting_check = self._clocks()
        #: During :meth:`walk` with ``reads="auto"``, still serial: where the window the choice
        #: looks at began (the same clocks; None once chosen, or not walking).
        self.reads_window: tuple[float, float, float] | None = None
        self.reads_next: tuple[float, float, float] | None = None
        #: The reading threads, once reads are parallel; the batch being filled and those
        #: handed over, oldest first.
        self.pool: ThreadPoolExecutor | None = None
        self.batch: _Batch | None = None
        self.handed: deque[_Batch] = deque()

    def error(self, path: str, message: str, image_like: bool) -> None:
        self._found(ScanError(path, message, image_like))

    def _found(self, error: ScanError) -> None:
        """Something the walk itself found: filed once every file listed before it is (never
        ``result.errors.append`` during the walk: with parallel reads it would jump ahead)."""
        if self.batch is not None:  # after the files listed before it are settled
            self.batch.steps.append(error)
        else:
            self.result.errors.append(error)

    def walk(self) -> None:
        """Depth-first in name order. Real directories come first; directories reached through
        symlinks are walked last and only if not already seen, so an image is listed at its real
        path when the root contains it, and a link loop is never followed."""
        if self.reads == "parallel":
            self._start_pool()
        elif self.reads == "auto":
            self.reads_window = self.reads_next = self._clocks()
        root = self.result.root
        st = os.stat(root)
        visited = {stat_id(st)}
        stack = [root]
        linked: list[tuple[str, tuple[int, int]]] = []
        while stack or linked:
            if not stack:
                path, key = linked.pop(0)
                if key in visited:
                    self.error(path, _LINK_SEEN, False)
                    continue
                visited.add(key)
                stack.append(path)
            directory = stack.pop()
            try:
                entries = list(os.scandir(directory))
            except OSError as exc:
                self.error(directory, f"cannot list this directory: {exc.strerror}", False)
                continue
            entries.sort(key=lambda e: e.name)
            if self.pool is None:  # read here: a big walk shares the reads with a process
                self.shared.plan([e.path for e in entries if _plain_file(e)])
            subdirs = []
            for entry in entries:
                sub = self._entry(entry, linked)
                if sub:
                    try:
                        st = os.stat(sub)
                    except OSError as exc:  # listed but not enterable: never skip in silence
                        self.error(sub, _unenterable(sub, exc), False)
                        continue
                    key = stat_id(st)
                    if key not in visited:
                        visited.add(key)
                        subdirs.append(sub)
            stack.extend(reversed(subdirs))
        self.finish_reads()

    def _entry(self, entry: os.DirEntry, linked: list) -> str | None:
        """Handle one directory entry; returns a real directory to descend into, if any."""
        path = entry.path
        if not path.isascii() and _utf8_problem(path):
            self.error(path, _NOT_UTF8, False)
        try:
            if entry.is_symlink():
                self._symlink(path, linked)
            elif entry.is_dir(follow_symlinks=False):
                if (left := _leftover_folder(path, entry.name)) is not None:
                    self._found(left)
                    return None
                return path
            elif entry.is_file(follow_symlinks=False):
                self._listed(path, False)
            elif has_image_extension(path):
                self.error(path, _not_regular(entry.stat(follow_symlinks=False).st_mode), True)
        except OSError as exc:
            self._found(os_error(path, exc))
        return None

    def _symlink(self, path: str, linked: list) -> None:
        try:
            st = os.stat(path)
        except OSError as exc:
            self.error(path, _link_problem(path, exc), has_image_extension(path))
            return None
        if stat.S_ISDIR(st.st_mode):
            linked.append((path, stat_id(st)))
            return
        if stat.S_ISREG(st.st_mode):
            self._listed(path, True)
        elif has_image_extension(path):
            self.error(path, _not_regular(st.st_mode, linked=True), True)

    def _listed(self, path: str, is_symlink: bool) -> None:
        """A regular file (or a link to one) found by the walk: read now or by the pool."""
        if self.batch is None:
            self._file(path, is_symlink)
        else:
            self._queue(path, is_symlink)

    def _file(self, path: str, is_symlink: bool, raw_ok: bool | None = None) -> ImageInfo | None:
        """Read one file here and now and file the result."""
        self._count()
        return self._settle(path, is_symlink, self._read_file(path, is_symlink, raw_ok))

    def _read_file(self, path: str, is_symlink: bool, raw_ok: bool | None = None) -> FileRead:
        """One file's I/O (:func:`read_file`). Runs on a reading thread once reads are
        parallel: it must not change the walker's state (the shared reads are planned only
        while reads are not: ``_start_pool`` ends them)."""
        got = self.shared.take(path)
        if got is not None:
            return FileRead(decode(path, got, self.shared.flags))
        return read_file(path, is_symlink, raw_ok)

    def _clocks(self) -> tuple[float, float, float] | None:
        """:func:`_thread_clocks`, less the time spent waiting for the reader process's
        answers: that is not the disk, and must not move the reads to threads."""
        now = _thread_clocks()
        if now is None:
            return None
        wall, cpu, queued = now
        return wall - self.shared.waited, cpu, queued

    def _count(self) -> None:
        self.result.files_seen += 1
        if self.result.files_seen % 256 == 0:
            if self.progress is not None:
                self.progress(self.result.files_seen)
            if self.reads_window is not None:
                self._choose_reads()
            if self.waiting_check is not None:
                self._prefetch_while_waiting()

    def _settle(self, path: str, is_symlink: bool, read: FileRead) -> ImageInfo | None:
        """File one read's result, in the walk's order: the first real name of a file wins."""
        info = read.info
        if info is None:
            if read.error is not None:
                self.result.errors.append(read.error)
            elif read.unclaimed is not None:
                self.unclaimed[read.unclaimed] = path
            return None
        first = self.by_id.get(info.file_id)
        if first is not None:
            # The same file under a second name (hard link, or a link to a scanned image): one
            # node, so every overlay of it is counted as a sibling; the real path wins.
            if self.result.images[first].is_symlink and not is_symlink:
                del self.result.images[first]
                self.result.aliases[first] = path
            else:
                self.result.aliases[path] = first
                return self.result.images[first]
        self.by_id[info.file_id] = path
        images = self.result.images
        images[path] = info
        target = info.backing_path
        if target is not None:
            # Listed before its overlay (name order: a chain's base first, as a rule): the
            # overlay's backing path is the base's own path string, not a copy of it (~90 bytes
            # an image at 100,000).
            base = images.get(target)
            if base is not None:
                info.backing_path = base.path
            else:
                self.unshared.append(info)
        return info

    def _start_pool(self) -> None:
        self.shared.close()  # the threads read everything from here (waiting on the disk)
        self.pool = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="imagegui-read")
        self.batch = _Batch()

    def _queue(self, path: str, is_symlink: bool) -> None:
        """Hand a file to the reading threads; take back whatever they have finished."""
        assert self.batch is not None
        self.batch.steps.append((path, is_symlink))
        self.batch.files.append((path, is_symlink))
        if len(self.batch.files) >= READ_BATCH:
            self._hand_over()
            while self.handed and (len(self.handed) > READ_AHEAD or _done(self.handed[0].reads)):
                self._take_back(self.handed.popleft())

    def _hand_over(self) -> None:
        assert self.pool is not None and self.batch is not None
        batch, self.batch = self.batch, _Batch()
        if batch.files:
            batch.reads = self.pool.submit(self._read_all, batch.files)
        self.handed.append(batch)

    def _read_all(self, files: list[tuple[str, bool]]) -> list[FileRead]:
        return [self._read_file(path, is_symlink) for path, is_symlink in files]

    def _take_back(self, batch: _Batch) -> None:
        """File a batch's steps in order (waiting for its reads): as if read one by one."""
        reads = iter(batch.reads.result() if batch.reads is not None else ())
        for step in batch.steps:
            if isinstance(step, ScanError):
                self.result.errors.append(step)
            else:
                self._count()
                self._settle(step[0], step[1], next(reads))

    def finish_reads(self) -> None:
        """Take back every file still being read; the walk's reads are serial from here on
        (the backing files probed after it are read ahead on threads of their own when there
        are many: :func:`_read_backing_ahead`)."""
        self.reads = "serial"
        self.reads_window = None
        if self.batch is not None:
            self._hand_over()
            self.batch = None
            while self.handed:
                self._take_back(self.handed.popleft())
        self.close()

    def close(self) -> None:
        """Stop the reading threads; a file being read is finished and closed, queued ones are
        dropped (a cancelled scan)."""
        self.batch = None
        self.handed.clear()
        self.shared.close()
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None

    def _choose_reads(self) -> None:
        """With ``reads="auto"``: read the rest of the files on the reading threads once the walk
        is seen waiting on storage (:func:`parallel_reads_pay`, over the files since the window
        began: the walk's start, later the last :data:`READS_WINDOW` to twice as many files, so
        a tree whose first part was cached and the rest not is still seen, and no short window
        decides alone: a warm walk of 10,000 images on a machine at load 15 once chose threads
        over a window of its last 512 files)."""
        assert self.reads_window is not None
        now = self._clocks()
        if now is None:
            self.reads_window = None
            return
        wall, cpu, queued = (b - a for a, b in zip(self.reads_window, now, strict=True))
        if parallel_reads_pay(wall, cpu, queued):
            log.debug(
                "waiting on storage after %d files: reading the rest in parallel",
                self.result.files_seen,
            )
            self.reads_window = None
            self._start_pool()
            # The import of networkx (its files as uncached as these, as a rule) can run in
            # the same waits (:func:`prefetch_networkx`).
            prefetch_networkx()
            self.waiting_check = None
        elif self.result.files_seen % READS_WINDOW == 0:
            # Windows overlap: never judged on fewer than READS_WINDOW files after the first.
            self.reads_window, self.reads_next = self.reads_next, now

    def _prefetch_while_waiting(self) -> None:
        """Start importing networkx (:func:`prefetch_networkx`) once the walk is seen waiting
        on the disk: over its last 256 files or more (at least :data:`MIN_SAMPLE` seconds:
        256 warm files took 1.5 ms once another process read half of them, and a window
        shorter than the CPU clock's tick read as blocked), more than half the wall time went
        neither to running (its own CPU time, the kernel's included) nor to waiting for a CPU,
        so the thread was blocked reading (or, its reads handed to the reading threads, waiting for
        them). Waiting for a CPU does not count: on a busy machine an import beside the walk
        made a 10,000-image scan three times slower (every GIL hand-over then waits for a CPU
        too)."""
        assert self.waiting_check is not None
        wall0, cpu0, queued0 = self.waiting_check
        now = self._clocks()
        if now is None:
            self.waiting_check = None
            return
        wall, cpu, queued = now
        if wall - wall0 < MIN_SAMPLE:
            return  # the CPU clock moves a tick (4 ms here) at a time: judge longer windows
        blocked = (wall - wall0) - (cpu - cpu0) - (queued - queued0)
        if blocked > (wall - wall0) * WAITING_SHARE:
            prefetch_networkx()
            self.waiting_check = None
        else:
            self.waiting_check = now


def _plain_file(entry: os.DirEntry) -> bool:
    """A listed regular file that is no symlink: what ``_Walker._entry`` reads as listed."""
    try:
        return entry.is_file(follow_symlinks=False)
    except OSError:
        return False  # the walk reports it


def _done(reads: Future[list[FileRead]] | None) -> bool:
    return reads is None or reads.done()


#: Above this share of the time it was not waiting for a CPU, a walk blocked (on storage, or on
#: anything else that is not a CPU) reads faster on threads (:func:`parallel_reads_pay`).
STORAGE_SHARE = 0.2
#: The least time (seconds, running or blocked) the choice looks at: the kernel's accounting of
#: a thread's CPU time may move a scheduler tick at a time (4 ms on this project's machine), so
#: a window must run 50 ms for one tick to be 8 % of it, well under ``STORAGE_SHARE``. Windows of
#: 10 ms once read warm walks as 22 % blocked and moved them to threads (2.5 times slower). A
#: cold walk still reaches it within its first 256 files.
MIN_SAMPLE = 0.05
#: Files after which ``reads="auto"`` starts a new window to look at.
READS_WINDOW = 4096


def parallel_reads_pay(wall: float, cpu: float, queued: float) -> bool:
    """Whether reading on threads pays, from a walk thread's clocks over its last files:
    ``wall`` seconds, ``cpu`` of them running (the kernel's work for it included) and
    ``queued`` waiting for a CPU. It pays when the walk was blocked for more than
    :data:`STORAGE_SHARE` of the time it was not queued: threads then overlap those waits.

    Measured on 10,000 qcow2 images at load average 15 on 2 cores (other work queueing every
    thread): with the page cache dropped the walk was blocked 29-46 % of its unqueued time from
    the first 128 files on; warm, at most 4 % once it had run for 10 ms (-31 % to +47 % over
    shorter windows: the lagging CPU clock). Queued time is left out, not counted against: on a
    busy machine a cold walk spends most of its wall time queued, yet its waits on storage
    still add up to as much as on a quiet one."""
    running = wall - queued
    return running >= MIN_SAMPLE and running - cpu > running * STORAGE_SHARE


#: Above this share of wall time blocked (neither on a CPU nor waiting for one), the walk is
#: waiting on the disk (``_Walker._prefetch_while_waiting``).
WAITING_SHARE = 0.5


def _thread_clocks() -> tuple[float, float, float] | None:
    """Wall clock, and this thread's seconds on a CPU and waiting in a run queue for one
    (Linux ``/proc/thread-self/schedstat``); None where the kernel does not say."""
    try:
        with open("/proc/thread-self/schedstat", "rb") as f:
            on_cpu, queued = f.read().split()[:2]
        return time.perf_counter(), int(on_cpu) / 1e9, int(queued) / 1e9
    except (OSError, ValueError):
        return None


_prefetch_lock = threading.Lock()
_prefetch: threading.Thread | None = None


def _import_networkx() -> None:
    try:
        import networkx  # noqa: F401
    except Exception:  # noqa: BLE001 - whoever builds the graph imports it again and says why
        log.debug("importing networkx on the side failed", exc_info=True)


def prefetch_networkx() -> threading.Thread | None:
    """Start importing networkx on a second thread, once per process; the thread, or None when
    it is already imported or being imported.

    The chain graph is a networkx graph, and importing networkx costs 0.08-0.15 s, as much as
    scanning 5,000 images. The import can hide only in time the walk spends *waiting*: both are
    Python and share the GIL, which the walk lets go at each of its five or so system calls per
    file. Measured here (10,000 images): with the page cache warm and two cores free, an import
    running beside the walk made the scan 0.15 s slower (a GIL hand-over at every system call)
    to save 0.08 s; on the machine busy with other work, 0.5 s slower; with the files' data not
    cached, the walk waits on the disk and the import disappears into those waits. So the walk
    starts this only once it sees itself blocked (``_Walker._prefetch_while_waiting``), and
    ``import networkx`` where the graph is built finds the module done, or waits on its import
    lock for the rest. A daemon thread: a process that never builds a graph does not wait for it
    at exit.
    """
    global _prefetch
    with _prefetch_lock:
        if "networkx" in sys.modules or _prefetch is not None:
            return None
        _prefetch = threading.Thread(target=_import_networkx, name="import networkx", daemon=True)
        _prefetch.start()
        return _prefetch


def scan_directory(
    root: str, progress: Callable[[int], None] | None = None, reads: Reads = "auto"
) -> ScanResult:
    """Every image under ``root``; ``progress(files_seen)`` is called now and then (from this
    thread; an exception it raises ends the scan). While the walk waits on the disk, networkx is
    imported beside it for the graph that follows (:func:`prefetch_networkx`) and, with
    ``reads="auto"``, the rest of the headers are read on :data:`READ_THREADS` threads;
    ``"serial"`` and ``"parallel"`` force one way (the result is the same either way).

    Raises NotADirectoryError / FileNotFoundError / PermissionError for a bad root only.
    """
    started = time.perf_counter()
    root = backing.canonical(root)
    if not os.path.isdir(root):
        if not os.path.exists(root):
            raise FileNotFoundError(errno.ENOENT, "no such directory", root)
        raise NotADirectoryError(errno.ENOTDIR, "not a directory", root)
    walker = _Walker(root, progress, reads)
    try:
        with paused_gc():
            walker.walk()
            _adopt_backing_files(walker)
            _drop_extents(walker.result)
    finally:
        walker.close()  # the reading threads, also when progress() ended the scan
    walker.result.seconds = time.perf_counter() - started
    r = walker.result
    log.info(
        "scanned %s: %d images, %d outside it, %d not readable or skipped, %d files in %.3f s",
        printable(root), len(r.images), len(r.external), len(r.errors), r.files_seen, r.seconds,
    )  # fmt: skip
    return r


#: Backing files to look at after the walk (one level of a chain at a time) from which they
#: are read ahead on :data:`READ_THREADS` threads: each costs a ``stat`` and a header read, a
#: round trip each on network storage, and a directory of overlays of one shared base
#: directory (Nova's ``_base`` beside the scanned instances) can name thousands.
BACKING_AHEAD_MIN = 64


@dataclass(slots=True)
class _Ahead:
    """What reading one backing file ahead found (:func:`_read_backing_ahead`): exactly what
    :func:`_adopt_backing_files` would have found reading it then."""

    #: ``os.stat`` of the backing path, or the error it raised.
    st: os.stat_result | OSError
    #: The probe of a file outside the root (or a leftover's name): the image, None for a file
    #: that is not one, or the message of the error.
    probe: ImageInfo | str | None = None
    probed: bool = False
    #: A file without magic inside the root that the walk set aside (``unclaimed``): its read,
    #: under the name the walk listed it by.
    listed: str | None = None
    read: FileRead | None = None


def _adopt_backing_files(walker: _Walker) -> None:
    """Files without magic that an image names as backing are raw images after all; backing files
    outside the root are probed (never walked) so formats and chains can be checked. Many at one
    level of the chains are read ahead on threads (:func:`_read_backing_ahead`); the result is
    the same as reading each here in turn."""
    result = walker.result
    leftovers = {e.path: e for e in result.errors if e.leftover}
    images = result.images
    # Only images whose backing file is not scanned itself have anything to adopt (one pass
    # at C speed: a rescan of 100,000 unchanged images spends most of its time here).
    pending = [i for i in images.values() if (t := i.backing_path) is not None and t not in images]
    depth = 0
    pool: ThreadPoolExecutor | None = None
    try:
        while pending and depth <= MAX_EXTERNAL_DEPTH:
            depth += 1
            targets = [
                t
                for t in dict.fromkeys(i.backing_path for i in pending)
                if t is not None and t not in result.images and t not in result.external
            ]
            ahead: dict[str, _Ahead] = {}
            if len(targets) >= BACKING_AHEAD_MIN and walker.requested != "serial":
                if pool is None:
                    pool = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="imagegui-read")
                ahead = _read_backing_ahead(pool, walker, targets, leftovers)
            pending = _adopt_level(walker, pending, leftovers, ahead)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    for info in pending:  # the depth limit was reached: say where the scan stopped following
        target = info.backing_path
        if target and target not in result.images and target not in result.external:
            walker.error(
                target,
                f"not read: more than {MAX_EXTERNAL_DEPTH} backing files in a row outside the "
                "scanned directory; scan their directory to see the rest of the chain",
                False,
            )
    # Bases listed after their overlays (and adopted raw bases): their overlays' backing
    # paths become the bases' own path strings too (see ``_Walker._settle``).
    for info in walker.unshared:
        base = images.get(info.backing_path)  # type: ignore[arg-type]
        if base is not None:
            info.backing_path = base.path
    walker.unshared.clear()


def _adopt_level(
    walker: _Walker,
    pending: list[ImageInfo],
    leftovers: dict[str, ScanError],
    ahead: dict[str, _Ahead],
) -> list[ImageInfo]:
    """One level of backing files: adopt or probe the files ``pending`` images back onto;
    returns the images found (whose own backing files are the next level). ``ahead``: reads
    already made (each used once: a second look reads again, as without them)."""
    result = walker.result
    found: list[ImageInfo] = []
    for info in pending:
        target = info.backing_path
        if target is None or target in result.images or target in result.external:
            continue
        got = ahead.pop(target, None)
        if got is None:
            try:
                st = os.stat(target)
            except OSError:
                continue  # missing: the graph shows a placeholder
        elif isinstance(got.st, OSError):
            continue
        else:
            st = got.st
        key = stat_id(st)
        if key in walker.by_id:
            continue
        inside = backing.is_within(target, result.root)
        if target in leftovers and stat.S_ISREG(st.st_mode):
            # Named like a flatten's temporary file, yet an image backs onto it: a real
            # base (kept or renamed under that name), never a leftover to remove.
            adopted = _probe_external(target, walker, got)
            if adopted is not None:
                result.errors.remove(leftovers.pop(target))
                result.images[adopted.path] = adopted
                found.append(adopted)
            continue
        if key in walker.unclaimed:
            listed = walker.unclaimed.pop(key)
            is_link = os.path.islink(target)
            if got is not None and got.read is not None and got.listed == listed:
                walker._count()
                adopted = walker._settle(listed, is_link, got.read)
            else:
                adopted = walker._file(listed, is_link, True)
            if adopted is not None:
                found.append(adopted)
        elif not inside and stat.S_ISREG(st.st_mode):
            ext = _probe_external(target, walker, got)
            if ext is not None:
                result.external[ext.path] = ext
                found.append(ext)
    return found


def _read_backing_ahead(
    pool: ThreadPoolExecutor,
    walker: _Walker,
    targets: list[str],
    leftovers: dict[str, ScanError],
) -> dict[str, _Ahead]:
    """Read ``targets`` (backing paths, none of them scanned yet) on the reading threads, as
    :func:`_adopt_level` would read each of them: ``stat``, then the probe of a file outside
    the root or named like a leftover, or the read of a file the walk set aside. Nothing here
    changes the walker: its state is only looked at, while the walk's thread waits."""
    root = walker.result.root
    unclaimed = walker.unclaimed
    # Only the plain walk's adoption (``_Walker._file``) is a read and a settle; a subclass
    # (an incremental rescan) adopts its own way, so its adoptions are not read ahead.
    adopts = type(walker)._file is _Walker._file

    def one(target: str) -> _Ahead:
        try:
            st = os.stat(target)
        except OSError as exc:
            return _Ahead(exc)
        got = _Ahead(st)
        regular = stat.S_ISREG(st.st_mode)
        if target in leftovers and regular:
            got.probe, got.probed = _probe_outcome(target), True
        elif (listed := unclaimed.get(stat_id(st))) is not None:
            if adopts:
                got.listed = listed
                got.read = read_file(listed, os.path.islink(target), True)
        elif regular and not backing.is_within(target, root):
            got.probe, got.probed = _probe_outcome(target), True
        return got

    def batch(chunk: list[str]) -> list[_Ahead]:
        return [one(t) for t in chunk]

    chunks = [targets[i : i + READ_BATCH] for i in range(0, len(targets), READ_BATCH)]
    reads = itertools.chain.from_iterable(pool.map(batch, chunks))
    return dict(zip(targets, reads, strict=True))


def _probe_outcome(path: str) -> ImageInfo | str | None:
    """Probe a backing file as :func:`_probe_external` does: the image, None for a file that
    is not one, or the message of why it cannot be read. Touches nothing but the file."""
    try:
        fd, st = open_regular(path)
    except ProbeError as exc:
        return str(exc)
    try:
        return probe_fd(fd, path, st, True, os.path.islink(path))
    except (ProbeError, OSError) as exc:
        return str(exc)
    finally:
        os.close(fd)


def _probe_external(path: str, walker: _Walker, ahead: _Ahead | None = None) -> ImageInfo | None:
    """A backing file outside the root; if it cannot be read, say why (its overlays need it).
    ``ahead``: its probe, when already made (:func:`_read_backing_ahead`)."""
    got = ahead.probe if ahead is not None and ahead.probed else _probe_outcome(path)
    if isinstance(got, str):
        walker.error(path, got, True)
        return None
    if got is not None:
        walker.by_id.setdefault(got.file_id, path)
    return got


def _drop_extents(result: ScanResult) -> None:
    """Extent files belong to their VMDK descriptor: they are not images of their own."""
    extents = {
        e
        for p, info in result.images.items()
        if info.format == "vmdk"
        for e in info.extents
        if e != p
    }
    for path in extents:
        result.images.pop(path, None)
    result.errors = [e for e in result.errors if e.path not in extents]


def _unenterable(path: str, exc: OSError) -> str:
    """Why a listed directory cannot be scanned, in a user's words."""
    if exc.errno == errno.ENAMETOOLONG:
        limit = os.pathconf("/", "PC_PATH_MAX")
        return (
            f"not scanned: its path is longer than the system allows ({len(os.fsencode(path)):,} "
            f"bytes, the limit is {limit}); qemu cannot open images there either"
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "not scanned: permission denied (its parent can be listed but not entered)"
    if exc.errno == errno.ENOENT:
        return "vanished during the scan"
    return f"not scanned: {exc.strerror}"


def _readlink(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return "?"


#: A name that is not valid UTF-8 (shown with replacement characters, read all the same).
_NOT_UTF8 = "file name is not valid UTF-8; shown with replacement characters"

#: A directory reached again through a symbolic link (a loop, or a second way in).
_LINK_SEEN = "link to a directory already scanned; not followed"


def _link_problem(path: str, exc: OSError) -> str:
    """Why a symbolic link reaches no file: a loop, or a target that does not exist."""
    target = _readlink(path)
    if exc.errno == errno.ELOOP:
        return f"symbolic link loop ({path} -> {target}): never reaches a file"
    return f"broken symbolic link: its target {target} does not exist"


def _not_regular(mode: int, linked: bool = False) -> str:
    """Why an entry with an image's name that is no regular file (a device, a pipe...) is not
    read; ``linked``: a symbolic link leads to it."""
    if linked:
        return f"links to {file_kind(mode)}, not a regular file; not read"
    return f"not a regular file ({file_kind(mode)}); not read"


def _leftover_folder(path: str, name: str) -> ScanError | None:
    """A killed move's copy of a folder (``NAME.<id>.partial``): a leftover, its copies not
    walked; None for any other folder."""
    if not path.endswith(".partial") or not (m := LEFTOVER_RE.match(name)):
        return None
    message, left = leftover_note(path, m[1], is_dir=True)
    return ScanError(path, message, False, left)


# The walk's steps, public for ``core.read.rescan``: it replays this walk with kept results and
# must stay step for step equal to it.
Walker = _Walker
adopt_backing_files = _adopt_backing_files
drop_extents = _drop_extents
unenterable = _unenterable
readlink_text = _readlink
LINK_SEEN = _LINK_SEEN
NOT_UTF8 = _NOT_UTF8
link_problem = _link_problem
not_regular = _not_regular
leftover_folder = _leftover_folder
utf8_problem = _utf8_problem
