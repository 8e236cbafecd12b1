"""A cold start reads the files it will import all at once, instead of one after another.

Why: after a reboot, or once a busy host has evicted them, a start spends most of its time
importing. ``imagegui scan --json`` loads ~500 modules (networkx alone ~290) and the
interpreter reads each file only once the import before it is done: one disk wait after
another (a 2-image scan after dropping the page cache took 1.7 s, 0.45 s of it CPU). The
window maps ~60 MB of Qt libraries, paged in fault by fault. The disk answers many requests at
once far faster than the same requests in turn.

So each kind of start (a subcommand, the window) remembers the files it loaded
(:func:`remember`, rewritten only when the set of modules changes), and the next start of the
same kind (:func:`warm`) checks with a few ``RWF_NOWAIT`` reads whether they are still in the
page cache. When they are not, 16 threads ask the kernel to read them ahead
(``posix_fadvise(WILLNEED)``, which queues the reads and returns) while the main thread imports
as usual. Warm, it costs one small file read and a few system calls. The list only ever speeds
imports up: a missing, stale or damaged list costs the speed-up, nothing else.

The lists live in ``$XDG_CACHE_HOME/imagegui/startup/`` (~/.cache); ``IMAGEGUI_STARTUP_DIR``
names another directory, and set empty turns all of this off.

Only ``os`` and ``sys`` (loaded before any of imagegui) are imported here, and the threads are
``_thread``'s: this runs first, while nothing is cached yet.
"""

from __future__ import annotations

import _thread
import os
import sys

if False:  # for type checkers only: importing typing here is one more file read when cold
    from collections.abc import Iterator

#: Environment variable naming the lists' directory; empty: no prefetch, no lists written.
DIR_ENV = "IMAGEGUI_STARTUP_DIR"

#: Threads asking for reads: a queue this deep keeps a virtual or network disk busy; the
#: requests themselves are cheap (the kernel reads in the background).
THREADS = 16

#: Libraries (mapped files, extension modules) larger than this are left out: a start touches
#: only part of a big one (Qt's 7-11 MB libraries, its 32 MB ICU data), and reading such files
#: whole made a cold window start slower, not faster (drawn 13.6 s against 8.0 s with them left
#: out and 11.3 s without any read-ahead, median of 3 at load 14).
MAX_LIBRARY = 4 * 1024 * 1024

#: Files probed for being cached: if any of these is not, the whole list is read ahead.
PROBES = 6

#: First line of a list: its format, and the interpreter it was made by (another interpreter's
#: files are other files).
HEADER = f"imagegui-startup 1 {sys.implementation.cache_tag} {sys.prefix}"


class Entry(tuple):
    """``(origin, cached)``: a module's source (stat'ed by the import) and bytecode (read), the
    source read when there is no bytecode; ``cached`` is "" for an extension module or a mapped
    library, read whole. (A tuple, not a dataclass: importing dataclasses costs more than this
    module saves on a warm start.)"""

    __slots__ = ()

    def __new__(cls, origin: str, cached: str = "") -> Entry:
        return super().__new__(cls, (origin, cached))

    @property
    def origin(self) -> str:
        return self[0]  # type: ignore[no-any-return]

    @property
    def cached(self) -> str:
        return self[1]  # type: ignore[no-any-return]


class Started:
    """What :func:`warm` found: the modules listed last time (None: no list) and whether their
    files were read ahead."""

    def __init__(self, kind: str, modules: frozenset[str] | None, prefetched: bool = False):
        self.kind = kind
        self.modules = modules
        self.prefetched = prefetched
        self.remembered = False


#: The last :func:`warm`'s start (the window remembers it later, from its event loop).
_current: Started | None = None


def directory() -> str | None:
    """Where the lists are kept, or None when turned off."""
    override = os.environ.get(DIR_ENV)
    if override is not None:
        return override or None
    cache = os.environ.get("XDG_CACHE_HOME")
    if not cache or not os.path.isabs(cache):
        cache = os.path.expanduser("~/.cache")
    return os.path.join(cache, "imagegui", "startup")


def list_path(kind: str) -> str | None:
    where = directory()
    return None if where is None else os.path.join(where, f"{kind}.list")


def read_list(kind: str) -> tuple[list[Entry], frozenset[str]] | None:
    """The files remembered for ``kind`` in the order they were loaded, and the sources of its
    Python modules; None when there is no list, or one of another format or interpreter."""
    path = list_path(kind)
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    if not lines or lines[0] != HEADER:
        return None
    entries: list[Entry] = []
    modules: set[str] = set()
    for line in lines[1:]:
        what, _, rest = line.partition("\t")
        origin, _, cached = rest.partition("\t")
        if origin:
            entries.append(Entry(origin, cached))
            if what == "m" and cached:  # Python modules: what decides a rewrite
                modules.add(origin)
    return entries, frozenset(modules)


def warm(kind: str) -> Started:
    """Reads ahead the files ``kind`` loaded last time, on threads, if they are not cached.
    Returns at once; hand the result to :func:`remember` once the start is done."""
    global _current
    found = read_list(kind)
    if found is None:
        _current = Started(kind, None)
        return _current
    entries, modules = found
    started = _current = Started(kind, modules)
    if entries and not all(map(_is_cached, _probes(entries))):
        feed = iter(entries)  # shared: each entry is taken by one thread
        for _ in range(THREADS):
            _thread.start_new_thread(_fetch_all, (feed,))
        started.prefetched = True
    return started


def remember(started: Started | None = None) -> bool:
    """Writes the list of files this process loaded for ``started.kind`` (default: the last
    :func:`warm`'s) when its modules differ from the list read at the start (so usually nothing
    is written); after the first call for a start, later ones do nothing. True if written."""
    started = started or _current
    if started is None or started.remembered:
        return False
    started.remembered = True
    path = list_path(started.kind)
    if path is None:
        return False
    modules = module_entries()
    # Compared on Python modules only (extension modules come with them, and those too big to
    # list would otherwise differ every time).
    if started.modules == frozenset(e.origin for e in modules if e.cached):
        return False
    mapped = mapped_entries({e.origin for e in modules})
    lines = [HEADER]
    lines += [f"m\t{e.origin}\t{e.cached}" for e in modules if e.cached or _small(e.origin)]
    lines += [f"f\t{e.origin}\t" for e in mapped]
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        partial = f"{path}.{os.getpid()}.partial"
        with open(partial, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(partial, path)
    except OSError:
        return False  # a read-only cache: the next start is only slower
    return True


def module_entries() -> list[Entry]:
    """The files of every module loaded from a file, in the order they were imported. The
    bytecode path is kept whether or not that file exists (the prefetch then reads the
    source): a stat of each would cost more than the list saves."""
    out: list[Entry] = []
    for module in list(sys.modules.values()):
        spec = getattr(module, "__spec__", None)
        origin = getattr(spec, "origin", None)
        if spec is None or not spec.has_location or not isinstance(origin, str):
            continue
        if origin.startswith("/"):  # not "built-in", "frozen" or a zip's member
            cached = spec.cached if isinstance(spec.cached, str) else ""
            out.append(Entry(origin, cached))
    return out


def mapped_entries(skip: set[str]) -> list[Entry]:
    """Files this process has mapped (shared libraries: Qt's above all), not in ``skip``, up
    to :data:`MAX_LIBRARY` bytes each."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    out: list[Entry] = []
    seen = set(skip)
    for line in lines:
        fields = line.split(None, 5)
        path = fields[5] if len(fields) == 6 else ""
        if not path.startswith("/") or path.startswith(("/dev/", "/proc/", "/memfd:")):
            continue
        if path in seen:
            continue
        seen.add(path)
        if _small(path):
            out.append(Entry(path))
    return out


def _small(path: str) -> bool:
    """Whether ``path`` is a file of at most :data:`MAX_LIBRARY` bytes."""
    try:
        return os.stat(path).st_size <= MAX_LIBRARY
    except OSError:
        return False  # " (deleted)" and the like


def _probes(entries: list[Entry]) -> list[str]:
    """A few files spread over the list (the last always: loaded last, evicted first)."""
    step = max(1, len(entries) // PROBES)
    return [e.cached or e.origin for e in [*entries[step - 1 :: step], entries[-1]]]


def _is_cached(path: str) -> bool:
    """Whether ``path``'s first page is in the page cache (a file that cannot be opened counts
    as cached: there is nothing to read ahead). Now and then a cold page passes: the probe
    itself starts the kernel's readahead, and a fast disk can answer before the read looks
    again; hence several probes, any one of them cold enough."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return True
    try:
        os.preadv(fd, [bytearray(1)], 0, os.RWF_NOWAIT)
    except BlockingIOError:
        return False
    except (OSError, AttributeError):
        return True  # no RWF_NOWAIT here: take it as warm, the common case
    finally:
        os.close(fd)
    return True


def _advise(path: str) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
    except OSError:
        pass
    finally:
        os.close(fd)
    return True


def _fetch(entry: Entry) -> None:
    """What the import will do: read the bytecode and stat the source, or read the source."""
    if not (entry.cached and _advise(entry.cached)):
        _advise(entry.origin)
        return
    try:
        os.stat(entry.origin)
    except OSError:
        return


def _fetch_all(feed: Iterator[Entry]) -> None:
    try:
        for entry in feed:
            _fetch(entry)
    except Exception:  # noqa: BLE001 - a speed-up's thread never prints a traceback
        pass
