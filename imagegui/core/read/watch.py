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
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from inotify_simple import INotify
from inotify_simple import flags as F

from imagegui.core.read.fileid import FileId, stat_id

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


@dataclass(frozen=True)
class WatchStatus:
    """How much of the tree is watched.

    ``folders`` directories are watched; ``unwatched`` were found but not watched because the
    kernel refused more watches (``limit`` is then ``fs.inotify.max_user_watches``, None if it
    cannot be read); ``failure`` says why nothing can be watched at all; ``stopped`` why
    watching ended (the root went away)."""

    folders: int = 0
    unwatched: int = 0
    limit: int | None = None
    limited: bool = False
    failure: str | None = None
    stopped: str | None = None

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
        if self._wake_w >= 0:
            with contextlib.suppress(OSError):  # the pipe is full: the thread wakes anyway
                os.write(self._wake_w, b"x")
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self._close()

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
            ready = {fd for fd, _ in poller.poll()}
            if self._wake_r in ready or self._stop.is_set():
                return
            changes = self.handle(self.inotify.read(timeout=0))
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
            len(self.paths), self.unwatched, limit, self.limited, self.failure, self.stopped
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
            try:
                with os.scandir(directory) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError:
                continue  # the scan says it cannot list it; a rescan sees it when it can
            subdirs = []
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        subdirs.append(entry.path)
                    elif entry.is_symlink() and entry.is_dir():
                        linked.append(entry.path)
                except OSError:
                    continue
            stack.extend(reversed(subdirs))

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

    # -- events

    def handle(self, events: Iterable) -> Changes:
        """The changes a batch of events (``inotify_simple.Event``) says, keeping the watches
        in step: new directories watched, removed ones dropped."""
        paths: set[str] = set()
        overflow = gone = False
        for wd, mask, _cookie, name in events:
            if mask & F.Q_OVERFLOW:
                overflow = True
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
        return Changes(frozenset(paths), overflow, gone)


def _init_failure(exc: OSError) -> str:
    """Why inotify could not be started, in a user's words."""
    if exc.errno == errno.EMFILE:
        limit = read_limit(MAX_INSTANCES_FILE)
        allowed = f" ({limit})" if limit is not None else ""
        return f"the system allows no more inotify instances{allowed}"
    return f"inotify is not available: {exc.strerror}"
