"""Watch a directory tree for changes with Linux inotify, for live updates of a scanned tree.

Every directory the scan walks is watched (``core.read.scan``: real directories first, then
directories reached through symlinks, each once: the target of a link is watched and named by the
link's path, so the paths reported are the scan's). Directories created or moved in are watched
as they appear, removed or moved-out ones are dropped. The events are coalesced into a set of
changed paths per read (:class:`Changes`):

- a file's path when it was created, removed, written (``IN_MODIFY``, ``IN_CLOSE_WRITE``), had
  its metadata changed (``IN_ATTRIB``: ``touch``, ``chmod``) or was renamed (both names). A file
  kept open and written is reported at its first write and when it is closed, not at every
  write: a running VM writes its disk all day, and each report costs a rescan;
- a directory's path when the directory was created, removed or renamed (both names): then
  anything under it may have changed, and files written into a new directory before its watch
  was added are not reported one by one (a rescan lists the new directory anyway);
- ``overflow``: the kernel's queue overflowed (``IN_Q_OVERFLOW``) and events were lost, so only
  a rescan of everything can tell what changed;
- ``root_gone``: the root itself was removed, moved or unmounted; watching ends.

**Backing files outside the tree** (:meth:`TreeWatcher.follow`): after each scan the watcher is
given its result, and watches the directory of each backing file that lies outside the root (a
base in another folder, or a missing one whose folder exists), that directory only, not its
subtree, and reports only events on those files' names (a busy folder of other VMs' disks is
not news). A base whose folder does not exist (an NFS ``_base`` not mounted yet, a folder being
restored) is awaited: the nearest folder above it that exists is watched for the next name on
the way down, so the base is reported once its folder is back. At most :data:`MAX_OUTSIDE_DIRS`
such directories are watched: the rest are still looked at by every rescan (externals are
always probed again), just not reported by themselves.

**Images opened without being written** (a VM started on an image, an image opened as a VM's
backing file): the in-use state comes from QEMU's byte-range locks, and taking or dropping a
lock changes no stamp and sends no event the directory watches listen for. Two ways were weighed:

- ``IN_OPEN`` / ``IN_CLOSE_NOWRITE`` on the watched directories: every reader's open is an event,
  the scan's own reads and the space report's included, so each rescan would report the files it
  read and start the next one (inotify does not say who opened a file); every backup or ``cat``
  would start a rescan too.
- The kernel's lock table, ``/proc/locks``, read every :data:`LOCK_POLL_S` seconds on the watcher's
  thread (one read of a short file: a line per lock on the whole system; no image is opened):
  when the QEMU locks held on some inode appear, go or change mode, the images with that inode
  are reported as changed, and the rescan reads them again (a hinted file always is). Chosen:
  its cost does not grow with the tree, and it sees a VM's stop as well as its start. It polls,
  so a VM is seen up to :data:`LOCK_POLL_S` late; where ``/proc/locks`` cannot be read it is off.

inotify watches are a per-user resource (``fs.inotify.max_user_watches``): when the kernel
refuses one (``ENOSPC``), the watcher keeps what it has, counts the directories it could not
watch and says so (:class:`WatchStatus`), so the window can fall back to periodic rescans.

Why a thread with a blocking ``poll`` on the inotify descriptor and a pipe: no polling loop, no
sleep, and ``stop()`` wakes it at once (a byte in the pipe). The callbacks run on that thread.
The library is ``inotify_simple`` (a thin ctypes binding, no compiled part); not ``watchdog``,
whose observer re-walks directories on moves and keeps a snapshot of every file in memory.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import posixpath
import select
import stat
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from imagegui.core.read.scan import ScanResult

from inotify_simple import INotify
from inotify_simple import flags as F

from imagegui.core.read.fileid import FileId, stat_id
from imagegui.core.read.locks import WRITE_LOCK_BYTE, HeldLock, read_qemu_locks

log = logging.getLogger(__name__)

#: What a directory's watch listens for (``EXCL_UNLINK``: nothing about files already removed
#: but still open; ``ONLYDIR``: a directory replaced by a file is not watched).
MASK = (
    F.CREATE
    | F.DELETE
    | F.MODIFY
    | F.CLOSE_WRITE
    | F.ATTRIB
    | F.MOVED_FROM
    | F.MOVED_TO
    | F.DELETE_SELF
    | F.MOVE_SELF
    | F.EXCL_UNLINK
    | F.ONLYDIR
)
#: What the watch of a directory outside the tree (a backing file's) listens for: no subtree.
OUTSIDE_MASK = MASK
#: At most this many directories outside the tree are watched for backing files.
MAX_OUTSIDE_DIRS = 256
#: How often the lock table is read for images opened or closed without a write (seconds).
LOCK_POLL_S = 2.0
#: Where the kernel says how many watches one user may hold.
MAX_WATCHES_FILE = "/proc/sys/fs/inotify/max_user_watches"
MAX_INSTANCES_FILE = "/proc/sys/fs/inotify/max_user_instances"


@dataclass(frozen=True)
class Changes:
    """What one read of the kernel's queue said changed (see the module's docstring)."""

    paths: frozenset[str] = frozenset()
    overflow: bool = False
    root_gone: bool = False

    def __bool__(self) -> bool:
        return bool(self.paths) or self.overflow or self.root_gone

    def with_paths(self, more: Iterable[str]) -> Changes:
        more = frozenset(more)
        if more <= self.paths:
            return self
        return Changes(self.paths | more, self.overflow, self.root_gone)


@dataclass(frozen=True)
class WatchStatus:
    """How much of the tree is watched.

    ``folders`` directories are watched; ``unwatched`` were found but not watched because the
    kernel refused more watches (``limit`` is then ``fs.inotify.max_user_watches``, None if it
    cannot be read); ``failure`` says why nothing can be watched at all; ``stopped`` why
    watching ended (the root went away); ``outside``: folders of backing files outside the
    tree watched besides (``TreeWatcher.follow``)."""

    folders: int = 0
    unwatched: int = 0
    limit: int | None = None
    limited: bool = False
    failure: str | None = None
    stopped: str | None = None
    outside: int = 0

    @property
    def complete(self) -> bool:
        """Every directory of the tree is watched: no change goes unnoticed."""
        return not self.limited and self.failure is None and self.stopped is None


def read_limit(path: str = MAX_WATCHES_FILE) -> int | None:
    """The kernel's limit in ``path`` (a number in /proc), or None when it cannot be read."""
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


class TreeWatcher:
    """Watches ``root`` and everything under it on a thread of its own (``start``/``stop``).

    ``on_changes(Changes)`` and ``on_status(WatchStatus)`` are called on that thread: the first
    status once the initial watches are in place (changes made after that are all reported),
    then whenever the number of watched directories or the limit's state changes. ``ready`` is
    set once the initial watches are in place (or watching failed or was stopped): a scan that
    starts after it misses no change, since every later change is reported."""

    def __init__(
        self,
        root: str,
        on_changes: Callable[[Changes], None],
        on_status: Callable[[WatchStatus], None] | None = None,
        inotify_factory: Callable[[], INotify] = INotify,
    ):
        self.root = root
        self.on_changes = on_changes
        self.on_status = on_status
        self._factory = inotify_factory
        self.inotify: INotify | None = None
        #: watch descriptor -> directory path (as the scan names it), and back.
        self.paths: dict[int, str] = {}
        self.wds: dict[str, int] = {}
        #: directory path -> its watched subdirectories' paths (to drop a subtree at once).
        self.children: dict[str, set[str]] = {}
        #: (st_dev, st_ino) of every directory met (watched or not): each is watched once.
        self.keys: dict[FileId, str] = {}
        #: ... and back: directory path -> its (st_dev, st_ino) when it was watched.
        self.key_of: dict[str, FileId] = {}
        self.root_wd: int | None = None
        #: Files written since their last report and not closed yet: their writes are known.
        self.writing: set[str] = set()
        self.unwatched = 0
        self.limited = False
        self.failure: str | None = None
        self.stopped: str | None = None
        self._stop = threading.Event()
        self._wake_r, self._wake_w = -1, -1
        self._thread: threading.Thread | None = None
        self._last_status: WatchStatus | None = None
        self.ready = threading.Event()
        #: watch descriptor -> (directory outside the tree, the backing files' names in it).
        self.outside: dict[int, tuple[str, frozenset[str]]] = {}
        #: watch descriptor -> (the nearest existing folder above folders of backing files
        #: that do not exist, the names in it on the way down to them), and the backing files
        #: outside the tree last asked for (looked at again when one of those names appears).
        self.awaiting: dict[int, tuple[str, frozenset[str]]] = {}
        self._outside_files: frozenset[str] = frozenset()
        #: The last scan's result handed over by ``follow`` and not applied yet (the thread
        #: takes it), and the one applied: its images' locks are polled.
        self._followed: ScanResult | None = None
        self._result: ScanResult | None = None
        #: The QEMU locks seen at the last poll (None: the lock table cannot be read), and the
        #: inodes whose locks changed while no scan result could name them.
        self.locks: frozenset[HeldLock] | None = None
        self._lock_news: set[int] = set()
        self._next_poll = 0.0

    # -- the thread

    def start(self) -> None:
        """Starts watching on a new thread (the initial watches are added there)."""
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._thread = threading.Thread(target=self._run, name="imagegui-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ends watching and waits for the thread (it stops between two directories while it
        adds watches, at once while it waits for events). No callback runs after this."""
        self._stop.set()
        self.ready.set()  # nobody waits for a watch that will not come
        self._wake(b"x")
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self._close()

    def follow(self, result: ScanResult) -> None:
        """The tree's latest scan (callable from any thread): its images' locks are polled and
        the directories of its backing files outside the tree watched, from now on."""
        self._followed = result
        self._wake(b"f")

    def _wake(self, byte: bytes) -> None:
        if self._wake_w >= 0:
            with contextlib.suppress(OSError):  # the pipe is full: the thread wakes anyway
                os.write(self._wake_w, byte)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _close(self) -> None:
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._wake_r = self._wake_w = -1
        if self.inotify is not None:
            self.inotify.close()
            self.inotify = None

    def _run(self) -> None:
        try:
            self.inotify = self._factory()
        except OSError as exc:
            self.failure = _init_failure(exc)
            self.ready.set()
            self._report_status()
            return
        self.locks = read_qemu_locks()  # before the walk: what a scan then reads is newer
        self._next_poll = time.monotonic() + LOCK_POLL_S
        self.add_tree(self.root)
        self.ready.set()
        if self._stop.is_set():
            return
        if self.root_wd is None and self.failure is None and not self.limited:
            self.stopped = "the folder cannot be watched (it is gone or cannot be read)"
        self._report_status()
        if self.root_wd is None:
            return
        poller = select.poll()
        poller.register(self.inotify.fileno(), select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        while not self._stop.is_set():
            timeout = None
            if self.locks is not None:
                timeout = max(0, int((self._next_poll - time.monotonic()) * 1000))
            ready = {fd for fd, _ in poller.poll(timeout)}
            if self._stop.is_set():
                return
            if self._wake_r in ready:
                with contextlib.suppress(OSError):
                    os.read(self._wake_r, 4096)
                self._take_followed()
            changes = Changes()
            if self.inotify.fileno() in ready:
                changes = self.handle(self.inotify.read(timeout=0))
            if self.locks is not None and time.monotonic() >= self._next_poll:
                self._next_poll = time.monotonic() + LOCK_POLL_S
                changes = changes.with_paths(self.poll_locks())
            if self._stop.is_set():
                return
            if changes:
                self.on_changes(changes)
            self._report_status()
            if changes.root_gone:
                return

    def status(self) -> WatchStatus:
        limit = read_limit() if self.limited else None
        return WatchStatus(
            len(self.paths),
            self.unwatched,
            limit,
            self.limited,
            self.failure,
            self.stopped,
            len(self.outside),
        )

    def _report_status(self) -> None:
        status = self.status()
        if status != self._last_status and not self._stop.is_set():
            self._last_status = status
            if self.on_status is not None:
                self.on_status(status)

    # -- watches

    def add_tree(self, top: str) -> None:
        """Watches ``top`` and every directory under it, as the scan walks them: real
        directories depth-first, then those reached through symlinks, each directory once (a
        link loop is never followed)."""
        stack = [top]
        linked: list[str] = []
        while stack or linked:
            if self._stop.is_set():
                return
            if not stack:
                stack.append(linked.pop(0))
            directory = stack.pop()
            if not self._watch(directory):
                continue
            subdirs: list[str] = []
            links: list[str] = []
            try:
                with os.scandir(directory) as it:
                    for entry in it:  # only the directories are sorted: a few of thousands
                        try:
                            if entry.is_dir(follow_symlinks=False):
                                subdirs.append(entry.path)
                            elif entry.is_symlink() and entry.is_dir():
                                links.append(entry.path)
                        except OSError:
                            continue
            except OSError:
                continue  # the scan says it cannot list it; a rescan sees it when it can
            linked.extend(sorted(links))
            stack.extend(sorted(subdirs, reverse=True))

    def _watch(self, path: str) -> bool:
        """Adds the watch of one directory; False when it is not to be walked (gone, met
        already under another name, not a directory)."""
        try:
            st = os.stat(path)
        except OSError:
            return False
        key = stat_id(st)
        if key in self.keys:
            return False
        self.keys[key] = path
        if self.limited:
            self.unwatched += 1
            return True  # walked on, to count what is not watched
        assert self.inotify is not None
        try:
            wd = self.inotify.add_watch(path, MASK)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.ENOMEM):
                self.limited = True
                self.unwatched += 1
                log.warning("inotify watch limit reached at %d directories", len(self.paths))
                return True
            del self.keys[key]
            return False  # unreadable or gone: the scan reports it
        if wd in self.paths:  # the same directory as one watched (its key changed meanwhile)
            return False
        self.paths[wd] = path
        self.wds[path] = wd
        self.key_of[path] = key
        parent = posixpath.dirname(path)
        if path != self.root:
            self.children.setdefault(parent, set()).add(path)
        else:
            self.root_wd = wd
        return True

    def drop_tree(self, top: str) -> None:
        """Stops watching ``top`` and every watched directory under it (removed or moved away;
        a directory moved within the tree is watched again under its new name)."""
        todo = [top]
        while todo:
            path = todo.pop()
            todo.extend(self.children.pop(path, ()))
            if self.writing:
                inside = path + "/"
                self.writing = {p for p in self.writing if not p.startswith(inside)}
            wd = self.wds.pop(path, None)
            self.children.get(posixpath.dirname(path), set()).discard(path)
            if wd is None:
                continue
            self.paths.pop(wd, None)
            self._forget_key(path)
            if self.inotify is not None:
                with contextlib.suppress(OSError):  # the kernel dropped it (directory gone)
                    self.inotify.rm_watch(wd)

    def _forget_key(self, path: str) -> None:
        key = self.key_of.pop(path, None)
        if key is not None and self.keys.get(key) == path:
            del self.keys[key]

    # -- the last scan: backing files outside the tree, locks

    def _take_followed(self) -> None:
        result, self._followed = self._followed, None
        if result is None:
            return
        self._result = result
        self.watch_outside(outside_backing(result))
        if self._lock_news:  # locks that changed while the scan ran: name their images now
            self._next_poll = 0.0

    def watch_outside(self, files: Iterable[str]) -> None:
        """Watches the directories of ``files`` (backing files outside the tree), at most
        :data:`MAX_OUTSIDE_DIRS` (the first by name), and drops those no longer needed. A
        directory that does not exist is awaited: the nearest existing one above it is watched
        for the next folder down (:meth:`_await`)."""
        self._outside_files = frozenset(files)
        names: dict[str, set[str]] = {}
        for path in self._outside_files:
            directory, name = posixpath.split(path)
            names.setdefault(directory, set()).add(name)
        wanted = dict(sorted(names.items())[:MAX_OUTSIDE_DIRS])
        if len(names) > len(wanted):
            log.info(
                "%d folders of backing files outside the tree not watched", len(names) - len(wanted)
            )
        before = set(self.outside) | set(self.awaiting)
        have = {directory: wd for wd, (directory, _) in self.outside.items()}
        outside: dict[int, tuple[str, frozenset[str]]] = {}
        awaiting: dict[int, tuple[str, set[str]]] = {}
        for directory, base_names in wanted.items():
            added = have.get(directory)
            if added is None:
                added = self._watch_outside(directory)
            if added is not None:
                outside[added] = (directory, frozenset(base_names))
                continue
            found = None if os.path.exists(directory) else self._await(directory)
            if found is not None:
                wd, above, step = found
                awaiting.setdefault(wd, (above, set()))[1].add(step)
        self.outside = outside
        self.awaiting = {wd: (above, frozenset(steps)) for wd, (above, steps) in awaiting.items()}
        for wd in before - set(outside) - set(self.awaiting):
            if self.inotify is not None and wd not in self.paths:
                with contextlib.suppress(OSError):
                    self.inotify.rm_watch(wd)

    def _await(self, directory: str) -> tuple[int, str, str] | None:
        """The watch of the nearest existing folder above ``directory`` (which does not exist),
        that folder, and the name in it on the way down; None when there is none to watch."""
        if self.inotify is None or self.limited:
            return None
        path = directory
        while True:
            above = posixpath.dirname(path)
            if above == path:
                return None
            try:
                st = os.stat(above)
            except OSError:
                path = above
                continue
            if not stat.S_ISDIR(st.st_mode):
                return None  # a file where a folder should be: nothing to wait for here
            step = posixpath.basename(path)
            tree_name = self.keys.get(stat_id(st))
            if tree_name is not None:  # a folder of the tree: its own watch sees the step
                wd = self.wds.get(tree_name)
                return None if wd is None else (wd, above, step)
            try:
                return self.inotify.add_watch(above, OUTSIDE_MASK), above, step
            except OSError:
                return None

    def _arrived(self) -> list[str]:
        """After a step awaited appeared: the watches of outside folders again, and the backing
        files in the folders that exist now (they may have come with them)."""
        before = {directory for directory, _ in self.outside.values()}
        self.watch_outside(self._outside_files)
        return [
            posixpath.join(directory, name)
            for directory, names in self.outside.values()
            if directory not in before
            for name in names
        ]

    def _watch_outside(self, directory: str) -> int | None:
        """The watch of one directory outside the tree; None when it is not added: gone, the
        limit reached, or a directory of the tree under another name (adding it again would
        replace the tree watch's mask, and its events are reported already)."""
        if self.inotify is None or self.limited:
            return None
        try:
            key = stat_id(os.stat(directory))
        except OSError:
            return None
        if key in self.keys:
            return None
        try:
            return self.inotify.add_watch(directory, OUTSIDE_MASK)
        except OSError:
            return None

    def poll_locks(self) -> set[str]:
        """The images whose QEMU locks appeared, went or changed mode since the last poll."""
        locks = read_qemu_locks()
        if locks is None or self.locks is None:
            self.locks = locks
            return set()
        if locks != self.locks:
            self._lock_news |= {lock[0] for lock in locks ^ self.locks}
            self.locks = locks
        if not self._lock_news or self._result is None:
            return set()
        paths = images_with_inodes(self._result, self._lock_news)
        self._lock_news.clear()
        return paths

    # -- events

    def handle(self, events: Iterable) -> Changes:
        """The changes a batch of events (``inotify_simple.Event``) says, keeping the watches
        in step: new directories watched, removed ones dropped."""
        paths: set[str] = set()
        overflow = gone = False
        arrived = False
        if log.isEnabledFor(logging.DEBUG):  # what a lost watch is worked out from
            events = list(events)
            log.debug(
                "events %s; watched %s",
                [(wd, F.from_mask(mask), name) for wd, mask, _c, name in events],
                self.paths,
            )
        for wd, mask, _cookie, name in events:
            if mask & F.Q_OVERFLOW:
                overflow = True
                continue
            waiting = self.awaiting.get(wd)
            if waiting is not None and (name in waiting[1] or not name):
                arrived = True  # a folder on the way to a missing one, or the watch ended
            outside = self.outside.get(wd)
            if outside is not None:
                paths.update(self._outside_event(wd, mask, name, *outside))
                if wd not in self.paths:
                    continue
            directory = self.paths.get(wd)
            if directory is None:
                continue  # a watch dropped already (its last events were still queued)
            if not name and mask & (F.DELETE_SELF | F.MOVE_SELF | F.UNMOUNT | F.IGNORED):
                if wd == self.root_wd:
                    gone = True
                    self.stopped = "the folder was removed, moved or unmounted"
                    break
                paths.add(directory)  # e.g. a symlinked directory's target went away
                self.drop_tree(directory)
                continue
            path = posixpath.join(directory, name) if name else directory
            if mask & F.MODIFY:
                if path in self.writing:
                    continue
                self.writing.add(path)
            elif self.writing and mask & (F.CLOSE_WRITE | F.DELETE | F.MOVED_FROM):
                self.writing.discard(path)
            paths.add(path)
            if mask & (F.CREATE | F.MOVED_TO):
                if mask & F.ISDIR or (os.path.islink(path) and os.path.isdir(path)):
                    self.add_tree(path)
            elif mask & (F.DELETE | F.MOVED_FROM) and path in self.wds:
                self.drop_tree(path)
        if arrived and not gone:
            paths.update(self._arrived())
        return Changes(frozenset(paths), overflow, gone)

    def _outside_event(
        self, wd: int, mask: int, name: str, directory: str, names: frozenset[str]
    ) -> list[str]:
        """The backing files an event in a directory outside the tree names (all of them
        when the directory itself went away: it is no longer watched)."""
        if not name:
            if mask & (F.DELETE_SELF | F.MOVE_SELF | F.UNMOUNT | F.IGNORED):
                del self.outside[wd]
                return [posixpath.join(directory, n) for n in names]
            return []
        if name not in names:
            return []
        path = posixpath.join(directory, name)
        if mask & F.MODIFY:
            if path in self.writing:
                return []
            self.writing.add(path)
        elif mask & (F.CLOSE_WRITE | F.DELETE | F.MOVED_FROM):
            self.writing.discard(path)
        return [path]


def outside_backing(result: ScanResult) -> set[str]:
    """The backing files of ``result`` that are neither under its root nor scanned images:
    probed externals and missing bases alike (the folder they would appear in)."""
    inside = result.root.rstrip("/") + "/"
    images = result.images
    found = set()
    for records in (images, result.external):
        for info in records.values():
            target = info.backing_path
            if target and target not in images and not target.startswith(inside):
                found.add(target)
    found.update(p for p in result.external if not p.startswith(inside))
    return found


def images_with_inodes(result: ScanResult, inodes: set[int]) -> set[str]:
    """The paths of ``result``'s images (and externals) whose inode number is in ``inodes``
    (``/proc/locks`` names no path). One pass, no index kept: it runs only when a lock changed."""
    found = set()
    for records in (result.images, result.external):
        for path, info in records.items():
            if info.file_id[1] in inodes:
                found.add(path)
    return found


def stale_locks(result: ScanResult, locks: Iterable[HeldLock]) -> set[str]:
    """The images of ``result`` whose in-use state the lock table ``locks`` contradicts: locked
    now but read as free, or the other way round, or another mode (a rescan that trusts
    unchanged stamps keeps the state it read before, and opening an image changes no stamp)."""
    held: set[int] = set()
    writing: set[int] = set()
    for ino, first, last, _access in locks:
        held.add(ino)
        if first <= WRITE_LOCK_BYTE <= last:
            writing.add(ino)
    stale = set()
    for records in (result.images, result.external):
        for path, info in records.items():
            ino = info.file_id[1]
            if info.in_use != (ino in held) or info.in_use_write != (ino in writing):
                stale.add(path)
    return stale


def _init_failure(exc: OSError) -> str:
    """Why inotify could not be started, in a user's words."""
    if exc.errno == errno.EMFILE:
        limit = read_limit(MAX_INSTANCES_FILE)
        allowed = f" ({limit})" if limit is not None else ""
        return f"the system allows no more inotify instances{allowed}"
    return f"inotify is not available: {exc.strerror}"
