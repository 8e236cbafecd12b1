"""Where a directory's disk space goes, and what can be had back safely (issue 12).

Per image: *on disk* (allocated bytes, what ``du`` counts), *guest data* (bytes of the virtual
disk stored in this file, from its allocation map) and *shadowed* (bytes of that data every
overlay above has overwritten: dead weight a commit or flatten would make visible). Per chain
(each top image: one nothing backs onto), the bytes its guest reads from each layer. And
*reclaimable*: files nothing needs, each under one category with the action that reclaims it.

The allocation maps are the slow part (one read of each image's tables, or a ``qemu-img map``
when they cannot be read natively), so :func:`read_maps` takes progress and a cancel token, as
every long job does (``core.jobs``), and a layer whose map cannot be read is a note: its figures
are None and the rest goes on. Everything after the maps (:func:`space_report`) is arithmetic on
ranges (``core.read.extents``) and the chain graph, without touching the disk except ``lstat``
of the few files offered for reclaiming.

Qt-free: the window runs :func:`space_job` on a worker.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from imagegui.core.chains.graph import ChainGraph
from imagegui.core.chains.schema import EXTERNAL, IMAGE
from imagegui.core.jobs import CancelledError, CancelToken, Job, ProgressFn, no_progress
from imagegui.core.read.allocmap import NATIVE_FORMATS
from imagegui.core.read.extents import (
    LayerMap,
    MapUnavailable,
    Ranges,
    intersect,
    subtract,
    total,
    union,
)
from imagegui.core.read.model import ImageInfo
from imagegui.core.strenum import StrEnum
from imagegui.core.units import human_size

log = logging.getLogger(__name__)

#: Reads one layer's allocation map (its backing file not read); raises ``MapUnavailable`` (or
#: any error: it becomes a note) when it cannot. The maps work provides the real one.
MapReader = Callable[[ImageInfo, CancelToken], LayerMap]

#: ``--older-than``'s default: an image nothing uses is offered only once untouched this long.
DEFAULT_OLDER_THAN_DAYS = 30.0
DAY = 86400.0

#: The one action every reclaimable file is offered with: ``imagegui delete`` (to the Trash).
DELETE = "delete"


class Category(StrEnum):
    """Why a file is reclaimable. A file is in one category only, the first that applies in
    this order (:data:`PRECEDENCE`)."""

    #: A temporary file of an interrupted operation (``.NAME.<8 hex>.partial``).
    LEFTOVER = "leftover"
    #: An OpenStack Nova cache base Nova's own clean-up would remove now (``NovaBase``).
    NOVA_UNUSED_BASE = "nova-unused-base"
    #: An overlay that stores nothing of its own (reads all fall through to its backing file).
    EMPTY_OVERLAY = "empty-overlay"
    #: An image nothing backs onto, used by no VM, untouched for longer than the age limit.
    ORPHAN = "orphan"


PRECEDENCE = (
    Category.LEFTOVER,
    Category.NOVA_UNUSED_BASE,
    Category.EMPTY_OVERLAY,
    Category.ORPHAN,
)


@dataclass(frozen=True, slots=True)
class ImageSpace:
    """The space figures of one image file."""

    path: str
    #: Allocated bytes (st_blocks * 512, extent and data files included): what ``du`` counts.
    on_disk: int
    virtual_size: int
    #: Bytes of the virtual disk whose data this file stores; None when its map was not read.
    guest_data: int | None
    #: Bytes of that data that every overlay above it has overwritten (0 when nothing backs
    #: onto it); None when a map it depends on was not read or it is part of a backing loop.
    shadowed: int | None
    #: A backing file outside the scanned directory (not counted in the directory's totals).
    external: bool = False
    #: How its map was read ("native", "qemu-img map"), None when it was not.
    map_source: str | None = None
    #: Why a figure is None, in words a user can act on.
    note: str | None = None


@dataclass(frozen=True, slots=True)
class LayerShare:
    """What one layer gives one chain's guest: the bytes its reads come from this layer."""

    path: str
    #: Bytes of the top's virtual disk read from this layer (its data that no layer above it
    #: covers); None when this map or one above it was not read, or for a missing file.
    share: int | None
    #: ``share`` over the chain's ``guest_data`` (0.0 .. 1.0); None when either is unknown.
    fraction: float | None
    #: A missing, unreadable or protocol backing file (no figures; the chain is broken there).
    placeholder: bool = False


@dataclass(frozen=True, slots=True)
class ChainSpace:
    """One chain, from a top image (nothing backs onto it) down to its base."""

    top: str
    #: The guest's disk size (the top's virtual size).
    virtual_size: int
    #: Allocated bytes of all its layers (a shared base counts in every chain it is under).
    on_disk: int
    #: Bytes of the guest's disk stored in some layer (the rest reads as zeroes): the sum of
    #: the shares; None when a share is unknown.
    guest_data: int | None
    #: Top first, base last.
    layers: tuple[LayerShare, ...]
    #: qemu can open the whole chain (no missing, looping or broken layer).
    ok: bool = True

    def share_of(self, path: str) -> LayerShare | None:
        return next((layer for layer in self.layers if layer.path == path), None)


@dataclass(frozen=True, slots=True)
class Reclaimable:
    """A file that can go, what it frees and why it is safe to say so."""

    category: Category
    path: str
    #: Bytes freed by deleting it (allocated bytes, as ``on_disk``).
    bytes: int
    #: One sentence: why this file is offered ("nothing backs onto it, no VM uses it, last
    #: written 41 days ago").
    reason: str
    action: str = DELETE

    def to_json(self) -> dict[str, object]:
        return {
            "category": str(self.category),
            "path": self.path,
            "bytes": self.bytes,
            "action": self.action,
            "reason": self.reason,
        }


@dataclass
class SpaceReport:
    """Everything ``imagegui space`` and the window's Space view show."""

    root: str
    #: Images under the root, then the backing files outside it (``external``), by path.
    images: dict[str, ImageSpace]
    chains: list[ChainSpace]
    reclaimable: list[Reclaimable]
    older_than_days: float
    #: Whether libvirt was asked and answered: without it, "no VM uses it" is unknown and the
    #: orphans may include VM disks (a note says so).
    libvirt_checked: bool
    #: (path, message): maps that could not be read, and what the figures leave out.
    notes: list[tuple[str, str]] = field(default_factory=list)
    #: Wall time of the report (with ``space_job``: the maps read too).
    seconds: float = 0.0

    def inside(self) -> Iterator[ImageSpace]:
        """The images under the root (the totals count only these)."""
        return (i for i in self.images.values() if not i.external)

    @property
    def on_disk(self) -> int:
        return sum(i.on_disk for i in self.inside())

    @property
    def guest_data(self) -> int:
        """Guest data of the images whose map was read."""
        return sum(i.guest_data or 0 for i in self.inside())

    @property
    def shadowed(self) -> int:
        return sum(i.shadowed or 0 for i in self.inside())

    @property
    def reclaimable_bytes(self) -> int:
        return sum(r.bytes for r in self.reclaimable)

    def by_category(self) -> dict[Category, int]:
        """Bytes reclaimable per category, every category present (0 when none), in order."""
        out = dict.fromkeys(PRECEDENCE, 0)
        for r in self.reclaimable:
            out[r.category] += r.bytes
        return out

    def chains_through(self, path: str) -> list[ChainSpace]:
        """The chains ``path`` is a layer of."""
        return [c for c in self.chains if c.share_of(path) is not None]


# -- maps ----------------------------------------------------------------------------------------


@dataclass
class Maps:
    """The allocation maps read for a graph: by path, and why the others were not."""

    maps: dict[str, LayerMap] = field(default_factory=dict)
    #: path -> why its map could not be read.
    failed: dict[str, str] = field(default_factory=dict)


def map_targets(graph: ChainGraph) -> list[ImageInfo]:
    """Every image whose map the report needs: those under the root and the backing files
    outside it (placeholders have no file to read)."""
    return [*graph.scan.images.values(), *graph.scan.external.values()]


def read_maps(
    graph: ChainGraph,
    read_map: MapReader,
    progress: ProgressFn = no_progress,
    cancel: CancelToken | None = None,
    jobs: int = 1,
) -> Maps:
    """Reads each image's allocation map, reporting the fraction done after each. A map that
    cannot be read is noted and skipped; a cancel raises ``CancelledError`` (nothing is
    written, so nothing is left half done).

    ``jobs`` > 1 reads that many at once on threads (``read_map`` must then be safe to call
    from several threads): worth it when many maps come from ``qemu-img map`` (a process each,
    ~50 ms); native maps are read in microseconds and gain nothing."""
    outer = cancel or CancelToken()
    # The reads get a token of their own: a failure stops the other reads without cancelling
    # the caller's token; the caller's cancel reaches them through it.
    cancel = CancelToken()
    forget = outer.on_cancel(cancel.cancel)
    targets = map_targets(graph)
    out = Maps()
    n = len(targets)
    progress(0.0)
    if graph.scan.remote_uri is not None:
        # Another host's paths: a file of the same name here is not that image.
        why = "another host's image: its allocation map cannot be read from here"
        out.failed = {info.path: why for info in targets}
        progress(1.0)
        return out

    def one(info: ImageInfo) -> tuple[str, LayerMap | None, str | None]:
        cancel.raise_if_cancelled("nothing was changed")
        try:
            return info.path, read_map(info, cancel), None
        except CancelledError:
            raise
        except MapUnavailable as exc:
            return info.path, None, str(exc)
        except OSError as exc:
            return info.path, None, f"its allocation map could not be read: {exc.strerror or exc}"
        except Exception as exc:  # one bad file must not cost the report of thousands
            log.exception("allocation map of %s", info.path)
            return info.path, None, f"its allocation map could not be read: {exc}"

    def keep(done: int, result: tuple[str, LayerMap | None, str | None]) -> None:
        """Records one result, in the calling thread (progress is reported from there)."""
        path, m, why = result
        if m is not None:
            out.maps[path] = m
        else:
            out.failed[path] = why or "its allocation map could not be read"
        progress(done / n)

    try:
        _read_all(targets, one, keep, cancel, jobs)
    finally:
        forget()
    if jobs > 1:  # in scan order, whatever order the reads finished in
        out.maps = {i.path: out.maps[i.path] for i in targets if i.path in out.maps}
        out.failed = {i.path: out.failed[i.path] for i in targets if i.path in out.failed}
    if n == 0:
        progress(1.0)
    return out


def _read_all(
    targets: list[ImageInfo],
    one: Callable[[ImageInfo], tuple[str, LayerMap | None, str | None]],
    keep: Callable[[int, tuple[str, LayerMap | None, str | None]], None],
    cancel: CancelToken,
    jobs: int,
) -> None:
    """``keep(i, one(target))`` for every target, every result kept in the calling thread;
    the maps that need a ``qemu-img map`` ``jobs`` at once. Native maps are read first, here:
    handing microsecond reads to a pool costs more in hand-overs than it saves (10,000 qcow2
    maps took 5x the scan on two threads, 2.5x inline)."""
    slow = [info for info in targets if info.format not in NATIVE_FORMATS] if jobs > 1 else []
    if len(slow) < 2:
        for i, info in enumerate(targets, 1):
            keep(i, one(info))
        return
    done = 0
    for info in targets:
        if info.format in NATIVE_FORMATS:
            done += 1
            keep(done, one(info))
    from concurrent.futures import ThreadPoolExecutor, as_completed

    with ThreadPoolExecutor(min(jobs, len(slow)), thread_name_prefix="maps") as pool:
        futures = [pool.submit(one, info) for info in slow]
        try:
            for i, future in enumerate(as_completed(futures), done + 1):
                keep(i, future.result())
        except BaseException:
            cancel.cancel()  # the running reads stop (qemu-img is terminated) ...
            pool.shutdown(wait=True, cancel_futures=True)  # ... the others never start
            raise


# -- the report ----------------------------------------------------------------------------------


def space_report(
    graph: ChainGraph,
    maps: Maps | Mapping[str, LayerMap],
    *,
    older_than_days: float = DEFAULT_OLDER_THAN_DAYS,
    now: float | None = None,
    libvirt_checked: bool | None = None,
) -> SpaceReport:
    """The report for ``graph`` from the maps read for it (``read_maps``).

    ``libvirt_checked``: whether libvirt answered for this machine; by default, whether the
    graph was built with the domains of at least one connection that answered."""
    started = time.perf_counter()
    if not isinstance(maps, Maps):
        maps = Maps(dict(maps))
    now = time.time() if now is None else now
    if libvirt_checked is None:
        libvirt_checked = graph.domains is not None and bool(graph.domains.inventories)
    images, notes = _images(graph, maps)
    notes.extend(
        (e.path, f"{e.message} (not counted)") for e in graph.scan.errors if e.looked_like_image
    )
    chains = _chains(graph, maps.maps)
    if graph.scan.remote_uri is None:
        reclaimable = _reclaimable(graph, maps.maps, older_than_days, now, libvirt_checked)
    else:  # deleting (and even lstat) works on this machine's files only
        reclaimable = []
    if not libvirt_checked and any(r.category is Category.ORPHAN for r in reclaimable):
        notes.append(
            (
                graph.root,
                "libvirt was not reachable: images that only a VM defined there (and not "
                "running) uses are listed as orphans; check before deleting them",
            )
        )
    return SpaceReport(
        root=graph.root,
        images=images,
        chains=chains,
        reclaimable=reclaimable,
        older_than_days=older_than_days,
        libvirt_checked=libvirt_checked,
        notes=notes,
        seconds=time.perf_counter() - started,
    )


def space_job(
    graph: ChainGraph,
    read_map: MapReader,
    *,
    older_than_days: float = DEFAULT_OLDER_THAN_DAYS,
    now: float | None = None,
    libvirt_checked: bool | None = None,
    jobs: int = 1,
) -> Job[SpaceReport]:
    """The whole report as one job (maps, then arithmetic) for a worker or the terminal;
    ``jobs``: maps read at once (``read_maps``)."""

    def run(progress: ProgressFn, cancel: CancelToken) -> SpaceReport:
        started = time.perf_counter()
        maps = read_maps(graph, read_map, progress, cancel, jobs)
        rep = space_report(
            graph,
            maps,
            older_than_days=older_than_days,
            now=now,
            libvirt_checked=libvirt_checked,
        )
        rep.seconds = time.perf_counter() - started
        return rep

    return Job("Reading allocation maps", run)


def _images(graph: ChainGraph, maps: Maps) -> tuple[dict[str, ImageSpace], list[tuple[str, str]]]:
    # In scan order, whatever order the reads finished in.
    notes = [(i.path, maps.failed[i.path]) for i in map_targets(graph) if i.path in maps.failed]
    shadowed, why = _shadowed(graph, maps.maps)
    out: dict[str, ImageSpace] = {}
    for info in map_targets(graph):
        path = info.path
        m = maps.maps.get(path)
        note = maps.failed.get(path) or why.get(path)
        out[path] = ImageSpace(
            path=path,
            on_disk=info.actual_size,
            virtual_size=info.virtual_size,
            guest_data=None if m is None else m.guest_data,
            shadowed=shadowed.get(path),
            external=graph.kind(path) == EXTERNAL,
            map_source=None if m is None else m.source,
            note=note,
        )
    return out, notes


def _shadowed(
    graph: ChainGraph, maps: Mapping[str, LayerMap]
) -> tuple[dict[str, int | None], dict[str, str]]:
    """Shadowed bytes of every image, and why for those left unknown.

    ``hidden(L)``: the bytes every chain from a top down to L covers above L. For a chain
    top -> ... -> C -> L that is covers(C) plus what is covered above C in it, so (union
    distributing over intersection) ``hidden(L) = ∩ over L's overlays C of (covers(C) ∪
    hidden(C))``, and nothing for an image nothing backs onto. Worked out overlays first, so
    each edge is visited once, however many chains share a base. ``shadowed(L) = data(L) ∩
    hidden(L)``."""
    import networkx

    g = graph.g
    in_loop = {n for loop in graph.loops for n in loop}
    overlays = g.pred
    hidden: dict[str, Ranges | None] = {}
    why: dict[str, str] = {}
    # (A subgraph view costs a filter per lookup: only when there is a loop to leave out.)
    dag = g.subgraph(n for n in g if n not in in_loop) if in_loop else g
    order = networkx.topological_sort(dag)
    for node in order:
        acc: Ranges | None = None
        unknown: str | None = None
        first = True
        for child in overlays[node]:
            m = maps.get(child)
            below = hidden.get(child)
            if m is None or (below is None and child in hidden):
                unknown = child
                break
            covered = union(m.covers, below or ())
            acc = covered if first else intersect(acc or (), covered)
            first = False
        if unknown is not None:
            hidden[node] = None
            source = why.get(unknown)
            why[node] = source or f"shadowed unknown: the map of {unknown} was not read"
        else:
            hidden[node] = acc or ()
    out: dict[str, int | None] = {}
    for info in map_targets(graph):
        path = info.path
        m = maps.get(path)
        if path in in_loop:
            out[path] = None
            why.setdefault(path, "part of a backing loop: no overlay can be opened above it")
        elif m is None or hidden.get(path) is None:
            out[path] = None
        else:
            out[path] = total(intersect(m.data, hidden[path] or ()))
    return out, why


def _chains(graph: ChainGraph, maps: Mapping[str, LayerMap]) -> list[ChainSpace]:
    g = graph.g
    out: list[ChainSpace] = []
    for top in graph.scan.images:
        if g.in_degree(top) != 0:
            continue
        info = graph.image(top)
        if info is None:
            continue
        size = info.virtual_size
        disk: Ranges = ((0, size),) if size > 0 else ()
        above: Ranges | None = ()
        rows: list[tuple[str, int | None, bool]] = []
        on_disk = 0
        for layer in _chain(g.succ, top):
            kind = graph.kind(layer)
            layer_info = graph.image(layer)
            if kind not in (IMAGE, EXTERNAL) or layer_info is None:
                rows.append((layer, None, True))
                continue
            on_disk += layer_info.actual_size
            m = maps.get(layer)
            if m is None or above is None:
                rows.append((layer, None, False))
                above = None
                continue
            held = m.data if not m.data or m.data[-1][1] <= size else intersect(m.data, disk)
            rows.append((layer, total(subtract(held, above) if above else held), False))
            above = union(above, m.covers)
        shares = [s for _, s, placeholder in rows if not placeholder]
        data = None if any(s is None for s in shares) else sum(s or 0 for s in shares)
        layers = tuple(
            LayerShare(
                path=path,
                share=share,
                fraction=(share / data if data else 0.0)
                if share is not None and data is not None
                else None,
                placeholder=placeholder,
            )
            for path, share, placeholder in rows
        )
        out.append(
            ChainSpace(
                top=top,
                virtual_size=size,
                on_disk=on_disk,
                guest_data=data,
                layers=layers,
                ok=graph.chain_break(top) is None,
            )
        )
    return out


def _chain(succ: Mapping[str, Mapping[str, object]], top: str) -> Iterator[str]:
    """``top`` and its backing files (``ChainGraph.chain`` without networkx's traversal: each
    node has one backing at most); stops before repeating a loop."""
    seen: set[str] = set()
    node: str | None = top
    while node is not None and node not in seen:
        seen.add(node)
        yield node
        node = next(iter(succ[node]), None)


# -- reclaimable ---------------------------------------------------------------------------------


def _reclaimable(
    graph: ChainGraph,
    maps: Mapping[str, LayerMap],
    older_than_days: float,
    now: float,
    libvirt_checked: bool,
) -> list[Reclaimable]:
    out: list[Reclaimable] = []
    taken: set[str] = set()
    out.extend(_leftovers(graph, taken))
    aliased = set(graph.scan.aliases.values())
    g = graph.g
    limit = older_than_days * DAY
    for path, info in graph.scan.images.items():
        if path in taken or g.in_degree(path) or info.in_use or graph.domains_of(path):
            continue  # never a base with overlays, an image in use or a VM's
        if info.is_symlink or path in aliased:
            continue  # deleting one name of a file frees nothing
        category, reason = _category(graph, path, info, maps.get(path), limit, now)
        if category is not None and category is not Category.NOVA_UNUSED_BASE:
            reason += _NO_VM if libvirt_checked else _NO_VM_UNKNOWN
        if category is None:
            continue
        freed = _freed(path, info)
        if freed is None:
            continue
        taken.add(path)
        out.append(Reclaimable(category, path, freed, reason))
    out.sort(key=lambda r: (PRECEDENCE.index(r.category), r.path))
    return out


def _category(
    graph: ChainGraph,
    path: str,
    info: ImageInfo,
    m: LayerMap | None,
    limit: float,
    now: float,
) -> tuple[Category | None, str]:
    nova = graph.nova_base(path)
    if nova is not None:
        # Nova's own rule decides for its cache, not the age limit given here.
        if nova.nova_would_remove:
            return Category.NOVA_UNUSED_BASE, (
                f"no instance disk backs onto this cached base and it is "
                f"{_age(nova.age_seconds)} old: Nova's own clean-up would remove it "
                "(other compute hosts sharing _base over NFS are not visible here)"
            )
        return None, ""
    if info.backing_file is not None and m is not None and not m.data and not m.zero:
        return Category.EMPTY_OVERLAY, (
            "an overlay that stores nothing of its own (every read goes to "
            f"{os.path.basename(info.backing_file)}); nothing backs onto it, it is not in use"
        )
    age = now - info.mtime
    if age > limit:
        return Category.ORPHAN, (
            f"last written {_age(age)} ago; nothing backs onto it, it is not in use"
        )
    return None, ""


_NO_VM = ", no libvirt VM uses it"
_NO_VM_UNKNOWN = " (libvirt did not answer: a VM defined there may still use it)"


def _leftovers(graph: ChainGraph, taken: set[str]) -> Iterator[Reclaimable]:
    """The scan's leftover temporary files that are still regular files no VM names, and the
    folder copies a killed move left (no VM naming a file in them)."""
    from imagegui.core.read.partials import is_leftover_dir, tree_bytes, tree_files

    domains = graph.domains
    for e in graph.scan.errors:
        if not e.leftover or e.path in taken:
            continue
        try:
            st = os.lstat(e.path)
        except OSError:
            continue
        folder = stat.S_ISDIR(st.st_mode) and is_leftover_dir(e.path)
        if not stat.S_ISREG(st.st_mode) and not folder:
            continue
        files = tree_files(e.path) if folder else [e.path]
        if domains is not None and any(domains.uses_of(f) for f in files):
            continue
        taken.add(e.path)
        size = tree_bytes(e.path) if folder else st.st_blocks * 512
        yield Reclaimable(Category.LEFTOVER, e.path, size, e.message)


def _freed(path: str, info: ImageInfo) -> int | None:
    """What deleting ``path`` frees: its allocated bytes, nothing when another name keeps the
    file (a hard link outside the scan); None when it is gone or not a regular file."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1:
        return None
    return info.actual_size


def _age(seconds: float) -> str:
    days = seconds / DAY
    if days >= 2:
        return f"{days:.0f} days"
    hours = seconds / 3600
    return f"{hours:.0f} hours" if hours >= 2 else f"{seconds / 60:.0f} minutes"


def describe_share(chain: ChainSpace, layer: LayerShare) -> str:
    """ "62 % of web01.qcow2's disk comes from debian-12.qcow2" (of the data its guest reads)."""
    top = os.path.basename(chain.top)
    name = os.path.basename(layer.path)
    if layer.fraction is None or layer.share is None:
        return f"unknown how much of {top}'s disk comes from {name}"
    return (
        f"{layer.fraction * 100:.0f} % of {top}'s disk comes from {name} "
        f"({human_size(layer.share)})"
    )
