"""Rescan a directory at the cost of what changed, with the same result as a full scan.

A :class:`ScanState` keeps, from its last scan, each directory's identity and stamp
(``os.stat``: dev, inode, size, blocks, mtime_ns, ctime_ns) with its sorted listing, and each
file's stamp with what reading it gave (an :class:`ImageInfo`, a :class:`ScanError` for a bad
header, or "not an image": a raw candidate an overlay may still adopt). A rescan walks the tree
in the very order ``scan.scan_directory`` does, with the same bookkeeping (which name of a hard
link or symlinked file wins, aliases, the visited set that stops directory link loops, files
seen, the order of the errors), but takes each listing and each file's outcome from the state
when it provably has not changed:

* **Without hints** (``rescan()``): a directory whose stamp is unchanged keeps its listing (no
  ``scandir``); every listed file is ``lstat``'ed (a symlink ``stat``'ed through) and read again
  only when its stamp changed.
* **With hints** (``rescan(changed)``, the paths inotify reported): only those paths and their
  parent directories are looked at; everything else is reused without a system call, except
  what no directory watch reports, which is checked as without hints: symbolic links (their
  target may live anywhere), directories reached through a link, a hinted directory's whole
  subtree (a directory moved in brings content no event named), files with more than one hard
  link (written through another name), and "volatile" images (see below). A hinted file is
  always read again, which refreshes its lock state too.

Always redone, as the full scan does them: backing files outside the root (``external``) and
every backing pointer that names no scanned image (``stat``'ed and probed each time: nothing
watches them), raw files adopted as bases (their ``raw_ok`` read is kept beside the plain one),
leftovers (``.partial`` files and a killed move's ``.partial`` folders: whether a process holds
them changes without any event), and files whose reading failed for a reason of the moment
(vanished, permission denied, changed while read; ``scan.FileRead.st`` is None for those).
Images whose record depends on more than their own file are "volatile" and read again on every
rescan: one a QEMU holds locked (``in_use``: the lock goes away without a stamp change) and a
VMDK with extent files (its ``actual_size`` adds theirs). A backing name with ``..`` is resolved
again on every rescan (through directory symlinks, which may have changed anywhere; one
``realpath`` per directory climbed out of) and the image read again only if it now resolves
elsewhere.

**Racy stamps**: file systems stamp times from a clock that ticks every few milliseconds, so a
change made in the same tick as the read that recorded a stamp can leave the stamp as it was.
A record whose mtime or ctime is not older than the scan's start minus :attr:`racy_ns` is never
trusted by a stamp comparison (it is read again next time, once).

**Not seen by a rescan** (a full scan sees them): a QEMU starting on an image that has not been
written since (no stamp changes, and the watch listens for no opens: ``core/read/watch.py``
polls the lock table instead and hints the images whose lock state changed), and, with hints
only, a change to ``st_blocks`` alone (XFS trimming its speculative preallocation).

**For the watch** (``gui/session.py``): start watching *before* the full scan the state comes
from (``ScanState.from_full``), so no change falls between the scan and the first event; then
hand every batch of reported paths to :meth:`ScanState.rescan` on the worker: created, deleted,
written, attributes changed, both names of a rename, as ``os.path.join(watched directory, name)``
under the root (the scan's names: a directory reached through a symlink to a directory need not
be watched, it is checked every time). A queue overflow, a watch that could not be added (the
``max_user_watches`` limit) or any doubt: ``rescan(None)``. Reporting a path too many costs one
read; one too few is a stale result until the next ``rescan(None)``.

Thread use: one rescan at a time per state (the GUI runs it on its worker); the returned
:class:`ScanResult` shares its :class:`ImageInfo` records with earlier results (they are
read-only for everyone). The counts of the last scan (:attr:`ScanState.counts`: listed, read,
stat'ed) say what it cost.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import struct
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from imagegui.core.gcpause import paused_gc
from imagegui.core.read import backing
from imagegui.core.read.fileid import FileId, make_id, stat_id
from imagegui.core.read.model import ImageInfo, ScanError
from imagegui.core.read.partials import LEFTOVER_RE
from imagegui.core.read.probe import has_image_extension
from imagegui.core.read.reader_process import Encoded, decode
from imagegui.core.read.scan import (
    LINK_SEEN,
    NOT_UTF8,
    FileRead,
    ScanResult,
    Walker,
    adopt_backing_files,
    drop_extents,
    leftover_folder,
    link_problem,
    not_regular,
    os_error,
    read_file,
    unenterable,
    utf8_problem,
)
from imagegui.core.units import printable

log = logging.getLogger(__name__)

#: (st_dev, st_ino, st_size, st_blocks, st_mtime_ns, st_ctime_ns)
Stamp = tuple[int, int, int, int, int, int]

# What a directory entry is, as the full scan's DirEntry tests decide it.
_LINK, _DIR, _FILE, _OTHER, _FAILED = range(5)


def _stamp(st: os.stat_result) -> Stamp:
    return (st.st_dev, st.st_ino, st.st_size, st.st_blocks, st.st_mtime_ns, st.st_ctime_ns)


#: A file's :data:`Stamp` packed into 48 bytes. Every file's stamp is kept for the next rescan:
#: as a tuple of six int objects it took ~280 bytes, 28 MB at 100,000 images.
_PACKED = struct.Struct("=QQqqqq")


def _file_stamp(st: os.stat_result) -> bytes:
    return _PACKED.pack(
        st.st_dev, st.st_ino, st.st_size, st.st_blocks, st.st_mtime_ns, st.st_ctime_ns
    )


@dataclass(slots=True)
class _Dir:
    stamp: Stamp
    #: The entries' names in name order, as the full scan lists them, and their kinds
    #: (``_LINK``…, one byte each: a (name, kind) tuple per file was ~6 MB at 100,000).
    names: list[str]
    kinds: bytes
    #: The stamp is older than the listing by more than a clock tick: an unchanged stamp
    #: proves an unchanged listing.
    trusted: bool


@dataclass(slots=True)
class _File:
    #: ``_file_stamp``
    stamp: bytes
    is_symlink: bool
    #: What reading it gave (``FileRead``'s fields, kept here: one object less per file):
    #: an image, a bad header's error, or an unclaimed raw candidate's id.
    info: ImageInfo | None
    unclaimed: FileId | None
    error: ScanError | None
    trusted: bool
    #: Depends on more than this file's stamp: read again on every rescan.
    volatile: bool
    #: An image whose backing name climbs with ``..``: resolved through directory symlinks,
    #: so resolved again on every rescan (read again when it moved).
    reresolve: bool = False
    #: (device, inode): one tuple, shared by the segments' tables of this file.
    file_id: FileId = (0, 0)

    @property
    def read(self) -> FileRead:
        """What reading it gave, as the walk files it (made anew: a rescan's reuse of it)."""
        return FileRead(self.info, self.unclaimed, self.error)


@dataclass(slots=True)
class _Segment:
    """What one directory's entries added to a scan, applied whole when none changed."""

    #: The listing it was made from (the same object while the listing is kept).
    listing: _Dir
    records: dict[str, _File]
    images: dict[str, ImageInfo]
    images_by_id: dict[FileId, str]
    unclaimed: dict[FileId, str]
    errors: list[ScanError]
    subdirs: list[str]
    #: Every file's id.
    ids: frozenset[FileId]
    #: Its images whose backing name is resolved again each time (``_File.reresolve``).
    reresolve: list[str]


@dataclass(frozen=True)
class ScanDelta:
    """What differs between two scans of one directory: the paths whose entry in ``images``,
    ``external``, ``errors`` or ``aliases`` was added, removed or changed, and whether anything
    else a consumer reads differs (the order of the images, the files seen). The chain graph
    updates itself from it (``chains.incremental.update``), and the window skips a rescan that
    changed nothing (:attr:`unchanged`)."""

    images: frozenset[str] = frozenset()
    external: frozenset[str] = frozenset()
    errors: frozenset[str] = frozenset()
    aliases: frozenset[str] = frozenset()
    #: The images' order or the count of files seen differ (with the same records).
    other: bool = False

    @property
    def unchanged(self) -> bool:
        """Both scans give the same result (``seconds`` aside)."""
        return not (self.images or self.external or self.errors or self.aliases or self.other)

    @property
    def records(self) -> frozenset[str]:
        """The image and external paths added, removed or changed."""
        return self.images | self.external


def _changed_records(old: dict[str, ImageInfo], new: dict[str, ImageInfo]) -> set[str]:
    """Paths added, removed or whose record differs. A rescan hands on the record objects of
    files it did not read again, so an identity test settles nearly all of them; a record read
    again is compared by value (a lock re-read, a file written with the same header)."""
    get = old.get
    changed = {p for p, rec in new.items() if get(p) is not rec}
    changed = {p for p in changed if get(p) != new[p]}
    if len(old) != len(new) - sum(1 for p in changed if p not in old):
        changed.update(old.keys() - new.keys())
    return changed


def scan_delta(old: ScanResult, new: ScanResult) -> ScanDelta:
    """What changed from ``old`` to ``new`` (two scans of one root): a pass over the images with
    an identity test per record (a few milliseconds at 100,000 images), the errors and aliases
    (few) compared by value."""
    images = _changed_records(old.images, new.images)
    external = _changed_records(old.external, new.external)
    errors: set[str] = set()
    if old.errors != new.errors:
        before: dict[str, list[ScanError]] = {}
        after: dict[str, list[ScanError]] = {}
        for e in old.errors:
            before.setdefault(e.path, []).append(e)
        for e in new.errors:
            after.setdefault(e.path, []).append(e)
        errors = {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
    aliases: set[str] = set()
    if old.aliases != new.aliases:
        a, b = old.aliases, new.aliases
        aliases = {p for p in a.keys() | b.keys() if a.get(p) != b.get(p)}
    other = old.files_seen != new.files_seen or old.root != new.root
    if not other and not images and not external:
        other = list(old.images) != list(new.images) or list(old.external) != list(new.external)
    if not errors and old.errors != new.errors:
        other = True  # the same errors in another order
    return ScanDelta(
        frozenset(images), frozenset(external), frozenset(errors), frozenset(aliases), other
    )


@dataclass(frozen=True)
class RescanCounts:
    """What the last scan of a state cost: directories listed, files opened and read, and
    ``lstat``/``stat`` calls made to check stamps. Tests and benchmarks read these."""

    listed: int = 0
    read: int = 0
    checked: int = 0


class ScanState:
    """The last scan of one directory, kept so the next one costs what changed.

    ::

        state = ScanState.from_full(root)   # a full scan (state.result), remembered
        result = state.rescan()             # everything re-stat'ed, changed files re-read
        result = state.rescan({"/root/vm/disk.qcow2"})  # only these paths looked at

    Each rescan returns a :class:`ScanResult` equal to what ``scan_directory(root)`` would
    return at that moment (``seconds`` aside), and becomes the state's new :attr:`result`.
    """

    #: Records whose mtime or ctime is this close to the scan's start are not trusted by a
    #: stamp comparison (the file system clock's tick is at most 10 ms; NFS servers' clocks
    #: drift, hence the margin).
    racy_ns: int = 1_000_000_000

    def __init__(self, root: str):
        self.root = backing.canonical(root)
        self.result = ScanResult(self.root)
        self.counts = RescanCounts()
        #: What the last rescan changed against the result before it (:func:`scan_delta`);
        #: None after the first scan (everything is new).
        self.delta: ScanDelta | None = None
        self._scanned = False
        self._dirs: dict[str, _Dir] = {}
        self._files: dict[str, _File] = {}
        #: The ``raw_ok`` reads of files adopted as raw bases, by path.
        self._adopted: dict[str, _File] = {}
        self._segments: dict[str, _Segment] = {}
        #: Identities seen with more than one hard link: checked by stamp even with hints.
        self._multi: set[FileId] = set()

    @classmethod
    def from_full(
        cls, root: str, progress: Callable[[int], None] | None = None, racy_ns: int | None = None
    ) -> ScanState:
        """A full scan of ``root`` (the result is :attr:`result`), remembered for rescans.
        Raises as ``scan_directory`` does for a bad root."""
        state = cls(root)
        if racy_ns is not None:
            state.racy_ns = racy_ns
        state.rescan(None, progress)
        return state

    def rescan(
        self, changed: Iterable[str] | None = None, progress: Callable[[int], None] | None = None
    ) -> ScanResult:
        """Scan again; ``changed``: every path created, deleted, renamed (both names), written
        or whose attributes changed since the last scan, as the scan names them (under the
        root; a directory's own path when its listing or attributes changed), or None when
        they are not known (no watch yet, an inotify queue overflow): then every stamp is
        checked. ``progress(files_seen)`` is called now and then; an exception it raises ends
        the rescan (a cancel). Raises as ``scan_directory`` does for a bad root. A rescan that
        raises leaves the state as it was (:attr:`result` included).
        """
        started = time.perf_counter()
        root = self.root
        if not os.path.isdir(root):
            if not os.path.exists(root):
                raise FileNotFoundError(errno.ENOENT, "no such directory", root)
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", root)
        hints = None if changed is None else {os.path.normpath(p) for p in changed}
        walker = _Rescan(self, hints, progress)
        try:
            with paused_gc():
                walker.walk()
                walker.shared.close()  # before the backing files: read here, not planned
                adopt_backing_files(walker)
                drop_extents(walker.result)
        finally:
            walker.shared.close()  # also when progress() ended the walk (a cancel)
        result = walker.result
        result.seconds = time.perf_counter() - started
        self._dirs, self._files, self._adopted = walker.dirs, walker.files, walker.adopted
        self._segments = walker.segments
        self.delta = scan_delta(self.result, result) if self._scanned else None
        self._scanned = True
        self.result = result
        self.counts = RescanCounts(walker.listed, walker.read, walker.checked)
        log.info(
            "rescanned %s (%s): %d images, %d errors, %d files; %d listed, %d read, "
            "%d stat'ed in %.3f s",
            printable(root),
            "all stamps" if hints is None else f"{len(hints)} changed paths",
            len(result.images), len(result.errors), result.files_seen,
            walker.listed, walker.read, walker.checked, result.seconds,
        )  # fmt: skip
        return result


def _parents(paths: set[str]) -> set[str]:
    return {p.rsplit("/", 1)[0] or "/" for p in paths}


class _Rescan(Walker):
    """``scan._Walker``'s walk, taking listings and file outcomes from a state when they
    provably did not change. Kept step for step equal to ``_Walker.walk``/``_entry``/
    ``_symlink``/``_file`` (tests compare every result with a full scan)."""

    def __init__(
        self, state: ScanState, hints: set[str] | None, progress: Callable[[int], None] | None
    ):
        super().__init__(state.root, progress, "serial")
        self.waiting_check = None  # no networkx prefetch: a rescan is mostly reuse
        self.old_dirs, self.old_files, self.old_adopted = state._dirs, state._files, state._adopted
        self.dirs: dict[str, _Dir] = {}
        self.files: dict[str, _File] = {}
        self.adopted: dict[str, _File] = {}
        self.old_segments = state._segments
        self.segments: dict[str, _Segment] = {}
        self.multi = state._multi
        self.cutoff = time.time_ns() - state.racy_ns
        self.hints = hints
        #: Directories to stat (parents of changed paths) when hints are given.
        self.stat_dirs = _parents(hints) if hints is not None else set()
        #: Files reached through a symlink in this walk: the only way a file of a kept
        #: segment can already be in ``by_id`` (another real name is a hard link: ``multi``).
        self.linked_ids: set[FileId] = set()
        #: Files read again (not reused) in this scan, for their adopted raw read.
        self.fresh: set[str] = set()
        self.listed = self.read = self.checked = 0
        #: ``backing.canonical``'s memo of directories resolved in this scan.
        self.heads: dict[str, str | None] = {}
        #: Entries of this scan's listings whose type could not be told: the error.
        self.failures: dict[str, OSError] = {}
        if hints:
            for path in hints:  # a hard link written through a new name: check every name
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode):
                    self.multi.add(stat_id(st))

    # -- the walk ----------------------------------------------------------------------------

    def walk(self) -> None:
        root = self.result.root
        hints = self.hints
        st = os.stat(root)
        self.checked += 1
        visited = {stat_id(st)}
        # (directory, its stamp, checked: stamps decide, not hints)
        stack: list[tuple[str, Stamp, bool]] = [(root, _stamp(st), hints is None or root in hints)]
        linked: list[tuple[str, FileId, Stamp]] = []
        while stack or linked:
            if not stack:
                path, key, lstamp = linked.pop(0)
                if key in visited:
                    self.error(path, LINK_SEEN, False)
                    continue
                visited.add(key)
                stack.append((path, lstamp, True))
            directory, dstamp, checked = stack.pop()
            listed = self._listing(directory, dstamp, checked)
            if listed is None:
                continue
            listing = self.dirs.get(directory)
            seg = self.old_segments.get(directory)
            if (
                seg is not None
                and seg.listing is listing
                and self._whole(seg, directory, checked, visited, stack)
            ):
                continue
            prefix = directory + "/" if directory != "/" else "/"
            subdirs = []
            names, kinds = listed
            paths = [prefix + name for name in names]
            old_files = self.old_files
            self.shared.plan(
                [p for p, k in zip(paths, kinds, strict=True) if k == _FILE and p not in old_files]
            )
            for path, kind in zip(paths, kinds, strict=True):
                sub = self._entry2(path, kind, linked, checked)
                if sub:
                    sstamp = self._substamp(sub, checked)
                    if sstamp is None:
                        continue
                    key = (sstamp[0], sstamp[1])
                    if key not in visited:
                        visited.add(key)
                        subdirs.append(
                            (sub, sstamp, checked or (hints is not None and sub in hints))
                        )
            stack.extend(reversed(subdirs))
            if listing is not None:
                self._segment(listing, directory, paths)

    def _substamp(self, sub: str, checked: bool) -> Stamp | None:
        """The stamp of a listed subdirectory: kept (with hints, when no event names it or its
        entries) or ``stat``'ed; None when it cannot be entered (the error is recorded)."""
        hints = self.hints
        if (
            hints is not None
            and not checked
            and sub not in self.stat_dirs
            and sub not in hints
            and (old := self.old_dirs.get(sub)) is not None
        ):
            return old.stamp
        try:
            st = os.stat(sub)
        except OSError as exc:  # listed but not enterable: never skip in silence
            self.error(sub, unenterable(sub, exc), False)
            return None
        self.checked += 1
        return _stamp(st)

    # -- a whole directory at once -----------------------------------------------------------

    def _whole(
        self,
        seg: _Segment,
        directory: str,
        checked: bool,
        visited: set[FileId],
        stack: list[tuple[str, Stamp, bool]],
    ) -> bool:
        """Apply a directory's kept segment in a few dict operations, when none of its files
        is another name of a file seen before and those that changed (reported, or a new stamp)
        were only written in place (:meth:`_patched`); False (nothing filed) otherwise, for the
        entry-by-entry walk."""
        hints = self.hints
        if self.multi and not self.multi.isdisjoint(seg.ids):
            return False
        if self.linked_ids and not self.linked_ids.isdisjoint(seg.ids):
            return False  # a symlink walked before names one of its files
        subs = []
        for sub in seg.subdirs:
            if hints is not None and not checked and sub not in self.stat_dirs and sub not in hints:
                old = self.old_dirs.get(sub)
                if old is None:
                    return False
                subs.append((sub, old.stamp, False))
                continue
            try:
                st = os.stat(sub)
            except OSError:
                return False  # the walk records why
            self.checked += 1
            subs.append((sub, _stamp(st), checked or (hints is not None and sub in hints)))
        records = seg.records
        stale: list[str] = []
        if hints is not None and directory in self.stat_dirs:
            if len(hints) < len(records):
                stale = [p for p in hints if p in records]
            else:
                stale = [p for p in records if p in hints]
        if checked:
            for path, rec in records.items():
                if rec.trusted:
                    try:
                        st = os.lstat(path)
                    except OSError:
                        return False
                    self.checked += 1
                    if _file_stamp(st) == rec.stamp:
                        continue
                if not stale or path not in stale:
                    stale.append(path)
        for path in seg.reresolve:
            if path not in stale and self._moved(records[path]):
                stale.append(path)
        if stale:
            patched = self._patched(seg, stale)
            if patched is None:
                return False
            seg = patched
        result = self.result
        before = result.files_seen
        result.files_seen += len(seg.records)
        if self.progress is not None and before // 256 != result.files_seen // 256:
            self.progress(result.files_seen)
        result.images.update(seg.images)
        self.by_id.update(seg.images_by_id)
        self.unclaimed.update(seg.unclaimed)
        result.errors.extend(seg.errors)
        self.files.update(seg.records)
        self.segments[directory] = seg
        subdirs = []
        for sub, sstamp, sub_checked in subs:
            key = (sstamp[0], sstamp[1])
            if key not in visited:
                visited.add(key)
                subdirs.append((sub, sstamp, sub_checked))
        stack.extend(reversed(subdirs))
        return True

    def _patched(self, seg: _Segment, stale: list[str]) -> _Segment | None:
        """``seg`` with these files read again, when each is the same file as before (same
        inode) and gave the same kind of result (an image, a bad header, a raw candidate): its
        place in the images and errors stays. None when one did not: the walk sorts it out."""
        records = dict(seg.records)
        images, errors = seg.images, seg.errors
        for path in stale:
            old = records[path]
            got = self._fresh(path, False, None)
            if not isinstance(got, _File) or got.volatile or got.file_id != old.file_id:
                return None
            before, now = old.read, got.read
            if before.info is not None and now.info is not None:
                if images is seg.images:
                    images = dict(images)
                images[path] = now.info
            elif before.error is not None and now.error is not None:
                if errors is seg.errors:
                    errors = list(errors)
                at = next(i for i, e in enumerate(errors) if e is before.error)
                errors[at] = now.error
            elif before.unclaimed is None or now.unclaimed is None:
                return None
            records[path] = got
            self.fresh.add(path)
        if self.multi and not self.multi.isdisjoint(seg.ids):
            return None  # a new hard link: which name wins is the walk's to decide
        return _Segment(
            seg.listing,
            records,
            images,
            seg.images_by_id,
            seg.unclaimed,
            errors,
            seg.subdirs,
            seg.ids,
            seg.reresolve,
        )

    def _segment(self, listing: _Dir, directory: str, paths: list[str]) -> None:
        """Keep what this directory's entries added to the result, for :meth:`_whole` next
        time: only a directory of plain files and subdirectories, each file read or reused
        in this walk, none volatile, none another name of one before it in the directory.
        ``paths``: the entries' paths as the walk made them (the same string objects as the
        records' keys: 100,000 second copies were ~9 MB)."""
        images: dict[str, ImageInfo] = {}
        images_by_id: dict[FileId, str] = {}
        unclaimed: dict[FileId, str] = {}
        errors: list[ScanError] = []
        records: dict[str, _File] = {}
        subdirs: list[str] = []
        reresolve: list[str] = []
        files = self.files
        for name, kind, path in zip(listing.names, listing.kinds, paths, strict=True):
            if not path.isascii() and utf8_problem(path):
                errors.append(ScanError(path, NOT_UTF8, False))
            if kind == _DIR and not (name.endswith(".partial") and LEFTOVER_RE.match(name)):
                subdirs.append(path)
                continue
            if kind != _FILE:
                return
            rec = files.get(path)  # none for a leftover, nor for a failed read: both redone
            if rec is None or rec.volatile or rec.is_symlink:
                return
            fid = rec.file_id
            read = rec.read
            if read.info is not None:
                images[path] = read.info
                images_by_id[fid] = path
            elif read.error is not None:
                errors.append(read.error)
            elif read.unclaimed is not None:
                unclaimed[fid] = path
            records[path] = rec
            if rec.reresolve:
                reresolve.append(path)
        ids = frozenset(r.file_id for r in records.values())
        if len(ids) != len(records):
            return  # hard links side by side: the walk decides which name wins
        self.segments[directory] = _Segment(
            listing, records, images, images_by_id, unclaimed, errors, subdirs, ids, reresolve
        )

    def _listing(
        self, directory: str, dstamp: Stamp, checked: bool
    ) -> tuple[list[str], bytes] | None:
        """The directory's entries, names and kinds (``_Dir``): kept when provably unchanged,
        else listed; None when it cannot be listed (the error is recorded)."""
        old = self.old_dirs.get(directory)
        if old is not None:
            hints = self.hints
            if (
                hints is not None
                and not checked
                and directory not in self.stat_dirs
                and directory not in hints
            ):
                self.dirs[directory] = old
                return old.names, old.kinds
            if old.trusted and old.stamp == dstamp:
                self.dirs[directory] = old
                return old.names, old.kinds
        try:
            found = list(os.scandir(directory))
        except OSError as exc:
            self.error(directory, f"cannot list this directory: {exc.strerror}", False)
            return None
        self.listed += 1
        found.sort(key=lambda e: e.name)
        names: list[str] = []
        kinds = bytearray()
        keep = True
        for entry in found:
            try:
                if entry.is_symlink():
                    kind = _LINK
                elif entry.is_dir(follow_symlinks=False):
                    kind = _DIR
                elif entry.is_file(follow_symlinks=False):
                    kind = _FILE
                else:
                    kind = _OTHER
            except OSError as exc:
                kind, keep = _FAILED, False
                self.failures[entry.path] = exc
            names.append(entry.name)
            kinds.append(kind)
        listed = names, bytes(kinds)
        if keep:
            trusted = max(dstamp[4], dstamp[5]) < self.cutoff
            self.dirs[directory] = _Dir(dstamp, *listed, trusted)
        return listed

    def _entry2(self, path: str, kind: int, linked: list, checked: bool) -> str | None:
        """``_Walker._entry`` on a listed (name, kind)."""
        if not path.isascii() and utf8_problem(path):
            self.error(path, NOT_UTF8, False)
        try:
            if kind == _FILE:
                self._take(path, False, None, checked)
            elif kind == _DIR:
                # a killed move's copy of a folder: redone each time (is it held open?)
                if (left := leftover_folder(path, path.rsplit("/", 1)[1])) is not None:
                    self.result.errors.append(left)
                    return None
                return path
            elif kind == _LINK:
                self._link(path, linked)
            elif kind == _FAILED:
                raise self.failures.pop(path)  # from this scan's listing (never kept)
            elif has_image_extension(path):
                self.error(path, not_regular(os.lstat(path).st_mode), True)
        except OSError as exc:
            self._found(os_error(path, exc))
        return None

    def _link(self, path: str, linked: list) -> None:
        """``_Walker._symlink``: a link is always followed (its target may be anywhere)."""
        try:
            st = os.stat(path)
        except OSError as exc:
            self.error(path, link_problem(path, exc), has_image_extension(path))
            return
        self.checked += 1
        if stat.S_ISDIR(st.st_mode):
            linked.append((path, stat_id(st), _stamp(st)))
            return
        if stat.S_ISREG(st.st_mode):
            self._take(path, True, None, True, st)
        elif has_image_extension(path):
            self.error(path, not_regular(st.st_mode, linked=True), True)

    # -- files -------------------------------------------------------------------------------

    def _file(self, path: str, is_symlink: bool, raw_ok: bool | None = None) -> ImageInfo | None:
        """The adoption of an unclaimed file as a raw base (``_adopt_backing_files``): its
        ``raw_ok`` read is kept beside the plain one, valid while that one is reused."""
        if raw_ok is None:
            return self._take(path, is_symlink, None, True)
        self._count()
        old = self.old_adopted.get(path)
        plain = self.files.get(path)
        if (
            old is not None
            and path not in self.fresh
            and plain is not None
            and old.stamp == plain.stamp
            and old.is_symlink == is_symlink
            and not old.volatile
        ):
            self.adopted[path] = old
            return self._settle(path, is_symlink, old.read)
        got = self._fresh(path, is_symlink, raw_ok)
        if isinstance(got, _File):
            self.adopted[path] = got
            got = got.read
        return self._settle(path, is_symlink, got)

    def _count(self) -> None:
        """``_Walker._count`` without its networkx prefetch (a rescan mostly reuses)."""
        self.result.files_seen += 1
        if self.result.files_seen % 256 == 0 and self.progress is not None:
            self.progress(self.result.files_seen)

    def _take(
        self,
        path: str,
        is_symlink: bool,
        raw_ok: bool | None,
        checked: bool,
        st: os.stat_result | None = None,
    ) -> ImageInfo | None:
        """``_Walker._file`` for a file of the walk: reuse its record or read it."""
        self._count()
        old = self.old_files.get(path)
        if old is not None and old.is_symlink == is_symlink and not old.volatile:
            hints = self.hints
            if hints is not None and path in hints:
                pass  # reported changed: read again
            elif (
                hints is not None
                and not checked
                and st is None
                and (not self.multi or old.file_id not in self.multi)
            ):
                if not self._moved(old):
                    return self._reuse(path, is_symlink, old)
            elif old.trusted:
                if st is None:
                    try:
                        st = os.lstat(path)
                    except OSError:
                        st = None  # the read says what happened
                    self.checked += 1
                if st is not None and _file_stamp(st) == old.stamp and not self._moved(old):
                    return self._reuse(path, is_symlink, old)
        got = self._fresh(path, is_symlink, raw_ok)
        if isinstance(got, _File):
            self.files[path] = got
            self.fresh.add(path)
            if is_symlink:
                self.linked_ids.add(got.file_id)
            got = got.read
        return self._settle(path, is_symlink, got)

    def _moved(self, rec: _File) -> bool:
        """Whether a kept image's backing name (one that climbs with ``..``) now resolves to
        another file than when it was read: a directory symlink on the way changed."""
        if not rec.reresolve:
            return False
        info = rec.read.info
        assert info is not None and info.backing_file is not None
        return backing.resolve(info.path, info.backing_file, self.heads) != info.backing_path

    def _reuse(self, path: str, is_symlink: bool, rec: _File) -> ImageInfo | None:
        self.files[path] = rec
        if is_symlink:
            self.linked_ids.add(rec.file_id)
        return self._settle(path, is_symlink, rec.read)

    def _fresh(self, path: str, is_symlink: bool, raw_ok: bool | None) -> _File | FileRead:
        """Read the file (``scan.read_file``); its record, or only the read when it failed for
        a reason of the moment (vanished, changed while read, a leftover's note): not kept."""
        self.read += 1
        got = self.shared.take(path)
        if got is not None:
            return self._received(path, got)
        read = read_file(path, is_symlink, raw_ok)
        st = read.st
        if st is None:
            return read
        read.st = None  # the stamp is all a rescan needs of it
        stamp = (st.st_dev, st.st_ino, st.st_size, st.st_blocks, st.st_mtime_ns, st.st_ctime_ns)
        return self._record(read.info, read.unclaimed, read.error, is_symlink, stamp, st.st_nlink)

    def _received(self, path: str, got: Encoded) -> _File:
        """``_fresh`` of an image the reader process read (:mod:`reader_process`)."""
        *stamp, links = got[11:]
        return self._record(decode(path, got, self.shared.flags), None, None, False, stamp, links)

    def _record(
        self,
        info: ImageInfo | None,
        unclaimed: FileId | None,
        error: ScanError | None,
        is_symlink: bool,
        stamp: Sequence[int],
        links: int,
    ) -> _File:
        """What a read gave, kept for the next rescan; ``stamp``: the open file's device,
        inode, size, blocks, mtime_ns and ctime_ns (:data:`_PACKED`)."""
        dev, ino, _size, _blocks, mtime_ns, ctime_ns = stamp
        fid = info.file_id if info is not None else unclaimed or make_id(dev, ino)
        if links > 1:
            self.multi.add(fid)
        return _File(
            _PACKED.pack(*stamp),
            is_symlink,
            info,
            unclaimed,
            error,
            max(mtime_ns, ctime_ns) < self.cutoff,
            info is not None and _volatile(info),
            info is not None and _climbs(info),
            fid,  # the record's own id (the same tuple), else the read's
        )


def _climbs(info: ImageInfo) -> bool:
    """Whether the backing name has a ``..``: the kernel resolves it through the real
    directories (``backing.canonical``), so a directory symlink on the way can move it."""
    name = info.backing_file
    return name is not None and ".." in name


def _volatile(info: ImageInfo) -> bool:
    """Whether the record depends on more than the file's own stamp (read again each time)."""
    if info.in_use:
        return True
    return bool(info.extents) and any(e != info.path for e in info.extents)
