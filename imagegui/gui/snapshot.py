"""One scan as the window shows it, computed entirely on a worker thread.

The scan job walks the directory, builds the chain graph, lays it out, classifies every node and
even builds what the scene draws: each tree's edge paths and card boxes (one path per state) and
the broken cards' marker points (``QPainterPath`` and ``QPolygonF`` are reentrant, so a worker
may build them), and a signature of what each tree's cards show, by which a rescan's scene keeps
the trees that did not change. The GUI thread is left with a few items per tree, which
:mod:`~imagegui.gui.graph.scene` adds in small batches.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from PySide6.QtCore import QPointF
from PySide6.QtGui import QPainterPath, QPolygonF

from imagegui.core import gcpause
from imagegui.core.chains.diagnose import Level
from imagegui.core.chains.graph import ChainGraph
from imagegui.core.chains.incremental import update as update_graph
from imagegui.core.chains.layout import (
    ASPECT,
    COL_GAP,
    NODE_H,
    NODE_W,
    Component,
    Layout,
    TreeTables,
    compute_layout,
    tree_tables,
    update_forest,
)
from imagegui.core.chains.nodestate import NodeStatus, State, all_statuses, updated_statuses
from imagegui.core.chains.schema import INFO, KIND
from imagegui.core.jobs import CancelToken, Job, ProgressFn
from imagegui.core.ops import journal
from imagegui.core.read.backing import canonical
from imagegui.core.read.holders import Holder, holders_by_path
from imagegui.core.read.rescan import ScanDelta, scan_delta
from imagegui.core.read.scan import ScanResult, scan_directory
from imagegui.core.read.snapshots import Snapshot as InternalSnapshot
from imagegui.core.virt.inventory import DomainIndex, Hosts
from imagegui.core.virt.model import DomainUse, Role

log = logging.getLogger(__name__)

#: Reads a directory for a scan job: (directory, progress(files_seen)) -> its scan.
ScanFn = Callable[[str, Callable[[int], None]], ScanResult]
#: Gives the local libvirt hosts to a scan job, on its thread (it may wait a moment for a read).
HostsFn = Callable[[CancelToken], "Hosts | None"]

#: Length of an arrow head at the backing end of an edge, in scene units.
ARROW = 9.0
#: A scan job tells the window its file count at most this often (seconds): the walk offers
#: it every 256 files, and each note costs the GUI thread a slot that takes the GIL from the
#: walk (392 notes at 100,000 files).
NOTE_EVERY_S = 0.1


@dataclass(slots=True)
class ComponentPaths:
    """Every edge of one tree in one path (one draw call per chain), the arrow heads in another,
    the edges that close a loop in a third (drawn red and dashed), and the card boxes of each
    state in one path per state (the scene paints them in C++, one item per state and tree)."""

    edges: QPainterPath
    arrows: QPainterPath
    loops: QPainterPath | None = None
    boxes: list[tuple[State, QPainterPath]] = field(default_factory=list)


@dataclass(slots=True)
class Markers:
    """The centres of the cards that get a marker zoomed out: where a chain breaks, and the
    cards above a break (``gui.graph.cards.MarkerLayer`` draws them)."""

    breaks: QPolygonF
    above: QPolygonF

    def count(self) -> int:
        return self.breaks.size() + self.above.size()


@dataclass(frozen=True, slots=True)
class Totals:
    """The status bar's and the Space panel's figures, added up on the worker (each a pass over
    100,000 records: together ~0.1 s that was a stall in the slot showing a new snapshot)."""

    #: Problems of error level (the others are warnings).
    errors: int = 0
    #: Scanned images whose chain qemu cannot open (placeholders not counted).
    unusable: int = 0
    #: Bytes on disk of the scanned images, and of the backing files outside the directory.
    on_disk: int = 0
    outside: int = 0


def count_totals(graph: ChainGraph, status: dict[str, NodeStatus]) -> Totals:
    scan = graph.scan
    return Totals(
        errors=sum(1 for p in graph.problems if p.level == Level.ERROR),
        unusable=sum(
            1 for st in status.values() if st.broken_at is not None and not st.placeholder
        ),
        on_disk=sum(i.actual_size for i in scan.images.values()),
        outside=sum(i.actual_size for i in scan.external.values()),
    )


@dataclass
class Snapshot:
    root: str
    graph: ChainGraph
    layout: Layout
    status: dict[str, NodeStatus]
    paths: list[ComponentPaths]
    #: The chains list's rows, unfiltered (see ``core.chains.layout.TreeTables``).
    tables: TreeTables
    #: A file to select once shown (a file was opened or dropped instead of a directory).
    select: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    #: The "Problems only" graph: only the chains with a problem or an unusable image, packed
    #: on their own (None when that is every chain: the full layout serves).
    problem_layout: Layout | None = None
    problem_paths: list[ComponentPaths] | None = None
    #: What Undo would act on, read from the rebase journal with the scan (None: not read).
    undo: journal.UndoTarget | None = None
    #: Who holds each image in use (a VM by its name, and its PID), looked up in /proc with the
    #: scan so the list's tooltips and the cards never walk /proc in a paint or ``data()``. An
    #: image in use but missing here is held by a process this user cannot see.
    holders: dict[str, tuple[Holder, ...]] = field(default_factory=dict)
    #: Which libvirt domain disks use each image (only images some domain uses), worked out
    #: with the scan (``domain_uses``), so no paint or ``data()`` reads a header.
    domains: dict[str, tuple[DomainUse, ...]] = field(default_factory=dict)
    #: The local libvirt hosts the graph was built with (None: none read in time).
    hosts: Hosts | None = None
    #: The internal snapshots of each qcow2 image that has some, read from its snapshot table
    #: with the scan (``internal_snapshots``), so the details never read a file in a slot.
    internal: dict[str, tuple[InternalSnapshot, ...]] = field(default_factory=dict)
    #: The zoomed-out overview's data for each layout (keyed by ``id(layout)``), made on the
    #: worker (``gui.graph.overview``): at 100,000 images a pass over every node.
    overviews: dict = field(default_factory=dict)
    #: The marker points of ``layout`` and of ``problem_layout``.
    markers: Markers | None = None
    problem_markers: Markers | None = None
    #: Counts and sizes the status bar and the Space panel show (``count_totals``).
    totals: Totals = field(default_factory=Totals)
    #: ``signatures``, once worked out.
    _signatures: dict[str, int] | None = field(default=None, repr=False)

    @property
    def signatures(self) -> dict[str, int]:
        """Each tree's signature (by its root): equal in two snapshots when its cards, edges and
        what the cards say are the same, so a rescan's scene keeps its items
        (``tree_signature``). Worked out on first use, not with every scan: only a scene that
        replaces this snapshot by another of the same folder compares them, and a rescan's job
        works out both sides on its worker (``make_scan_job``'s ``previous``), so the first
        scan at 100,000 images does not pay for them before anything is drawn."""
        found = self._signatures
        if found is None:
            found = self._signatures = {
                c.root: tree_signature(self, c.nodes) for c in self.layout.components
            }
        return found

    @property
    def remote_uri(self) -> str | None:
        """The host whose images these are when they are another host's (read through libvirt:
        their paths are not files here, and the window only shows them)."""
        return self.graph.scan.remote_uri

    @property
    def image_count(self) -> int:
        return len(self.graph.scan.images)

    @property
    def problem_count(self) -> int:
        return len(self.graph.problems)


def make_scan_job(
    target: str,
    note: Callable[[int | str], None] | None = None,
    aspect: float = ASPECT,
    hosts: HostsFn | None = None,
    scan: ScanFn = scan_directory,
    previous: Snapshot | None = None,
    rescan: bool = False,
) -> Job[Snapshot | None]:
    """A job that scans ``target`` (a directory, or a file whose directory is scanned) and lays
    the graph out for a view of width / height ``aspect``. ``note`` hears, from the worker, the
    number of files looked at so far (an int) and each later stage's name (a str). ``hosts``
    gives the local libvirt hosts just before the graph is built (``gui.hosts.LocalFeed.latest``),
    so the graph knows which VMs use which images. ``scan(directory, progress)`` reads the
    directory (a full scan, or the session's incremental rescan of what changed). ``previous``:
    the snapshot shown, whose scene the new one will replace (``compare_ready``). ``rescan``:
    the scan is a rescan of the folder ``previous`` shows: when it finds nothing new
    (:func:`unchanged`) the job gives None and builds nothing (the window keeps its graph).
    A scan of the folder shown updates its graph (``chains.incremental.update``) instead of building
    it whole."""
    report = note or _no_note

    def run(progress: ProgressFn, cancel: CancelToken) -> Snapshot | None:
        with gcpause.paused_gc(keep=True):  # shown until the next scan: never walked
            return _scan(progress, cancel)

    def _scan(progress: ProgressFn, cancel: CancelToken) -> Snapshot | None:
        timings: dict[str, float] = {}
        t = time.perf_counter()
        path = canonical(os.path.expanduser(target))
        select = None
        if os.path.isfile(path):
            select, path = path, os.path.dirname(path)

        shown_at = [0.0]

        def on_files(count: int) -> None:
            cancel.raise_if_cancelled()
            now = time.perf_counter()
            if now - shown_at[0] >= NOTE_EVERY_S:
                shown_at[0] = now
                report(count)

        result = scan(path, on_files)
        timings["scan"] = time.perf_counter() - t
        report(result.files_seen)
        cancel.raise_if_cancelled()
        delta = None
        if previous is not None and select is None and same_folder(previous, result):
            delta = scan_delta(previous.graph.scan, result)
            if rescan and delta.unchanged and unchanged(previous, result):
                return None
        found = hosts(cancel) if hosts is not None else None
        last = previous if delta is not None else None
        snap = build_snapshot(
            result, found, aspect, report, cancel, select, timings, previous=last, delta=delta
        )
        compare_ready(snap, previous)
        return snap

    return Job(f"Scanning {target}", run)


def same_folder(previous: Snapshot, result: ScanResult) -> bool:
    """Whether ``result`` is a rescan of the local folder ``previous`` shows."""
    return previous.remote_uri is None and previous.graph.scan.root == result.root


def unchanged(previous: Snapshot, result: ScanResult) -> bool:
    """Whether a rescan leaves the window nothing new to show against ``previous``: the same
    scan result (``core.read.rescan.scan_delta``), the same kept check results, the same Undo
    and the same holders of the images in use. The local VMs are compared after (the session's
    ``_attach_hosts``). A few milliseconds at 100,000 images, against seconds for a rebuild."""
    old = previous.graph.scan
    if not same_folder(previous, result):
        return False
    if old is not result and not scan_delta(old, result).unchanged:
        return False
    if previous.graph.checks_changed() or journal.undo_target() != previous.undo:
        return False
    in_use = [p for p, info in result.images.items() if info.in_use]
    in_use += [p for p, info in result.external.items() if info.in_use]
    return (holders_by_path(in_use) if in_use else {}) == previous.holders


def make_remote_job(
    uri: str, note: Callable[[int | str], None] | None = None, aspect: float = ASPECT
) -> Job[Snapshot]:
    """A job that reads the images of the host at ``uri`` through libvirt (its storage pools'
    volumes, header bytes downloaded where needed: ``core.virt.remote``) and lays them out like a
    scanned directory's. Nothing of that host is looked at as a file on this machine."""
    report = note or _no_note

    def run(progress: ProgressFn, cancel: CancelToken) -> Snapshot:
        from imagegui.core.virt.inventory import read_host
        from imagegui.core.virt.remote import open_for_reading, scan_host

        t = time.perf_counter()
        report(f"Reading the volumes of {uri}")
        conn, _readonly = open_for_reading(uri)
        try:
            inventory = read_host(conn, uri)
            scan = scan_host(conn, uri, inventory=inventory)
        finally:
            conn.close()
        timings = {"scan": time.perf_counter() - t}
        report(scan.files_seen)
        index = DomainIndex.of_remote_host(inventory)  # that host's VMs, on its own paths
        with gcpause.paused_gc(keep=True):
            return build_snapshot(scan, None, aspect, report, cancel, None, timings, index)

    return Job(f"Reading the images of {uri}", run)


def make_attach_job(
    snapshot: Snapshot, hosts: Hosts, aspect: float = ASPECT
) -> Job[Snapshot | None]:
    """A job that builds ``snapshot``'s graph again, from the same scan, with the VM uses of
    ``hosts`` (a local read that ended after its scan had built the graph). None when that
    changes nothing the window shows - the usual case: the domains that changed use no image
    here - so the window draws nothing twice."""

    def run(progress: ProgressFn, cancel: CancelToken) -> Snapshot | None:
        with gcpause.paused_gc(keep=True):
            # The same scan: the graph updated (only the VM uses are worked out again).
            new = build_snapshot(
                snapshot.graph.scan,
                hosts,
                aspect,
                _no_note,
                cancel,
                previous=snapshot,
                delta=ScanDelta(),
            )
            if same_picture(snapshot, new):
                return None
            compare_ready(new, snapshot)
        return new

    return Job("Attaching the VMs that use the images", run)


def same_picture(old: Snapshot, new: Snapshot) -> bool:
    """Whether two snapshots of one scan show the same: the same nodes, problems and VM uses."""

    def problems(s: Snapshot) -> list[tuple[str, str, str]]:
        return [(p.path, str(p.kind), p.message) for p in s.graph.problems]

    return (
        old.domains == new.domains
        and list(old.graph.nodes) == list(new.graph.nodes)
        and problems(old) == problems(new)
    )


def build_snapshot(
    scan: ScanResult,
    hosts: Hosts | None,
    aspect: float = ASPECT,
    report: Callable[[int | str], None] | None = None,
    cancel: CancelToken | None = None,
    select: str | None = None,
    timings: dict[str, float] | None = None,
    index: DomainIndex | None = None,
    previous: Snapshot | None = None,
    delta: ScanDelta | None = None,
) -> Snapshot:
    """Everything after the walk: graph (with the VM uses of ``hosts``, or of ``index`` when
    given: another host's), states, layout. ``previous``: the snapshot of the scan before,
    when ``scan`` is a rescan of its folder that differs from its scan by ``delta``: the graph
    and the states are updated from it (``chains.incremental.update``) instead of built whole."""
    report = report or _no_note
    timings = {} if timings is None else timings
    cancel = cancel or CancelToken()
    report("Building the chain graph")
    cancel.raise_if_cancelled()
    t = time.perf_counter()
    if index is None and hosts is not None:
        index = DomainIndex(hosts.local)
    before = previous.graph if previous is not None and delta is not None else None
    try:
        graph = build_graph(scan, index, before, delta)
        domains = domain_uses(graph, index)
    except Exception:  # noqa: BLE001 - what VMs use never costs the user the scan itself
        if index is None:
            raise
        log.exception("the VM uses could not be worked out; the graph is shown without them")
        graph, domains = build_graph(scan, None, before, delta), {}
    if previous is not None and graph.updated_nodes is not None:
        status = updated_statuses(graph, previous.status)
    else:
        status = all_statuses(graph)
    timings["graph"] = time.perf_counter() - t
    report("Laying out")
    cancel.raise_if_cancelled()
    t = time.perf_counter()
    forest = None
    if previous is not None and before is not None and graph.updated_nodes is not None:
        forest = update_forest(previous.layout.forest, before, graph)  # the old one, patched
    layout = compute_layout(graph, forest, aspect=aspect)
    paths = build_paths(layout, status)
    nodes = list(graph.nodes)
    tables = tree_tables(layout.forest, nodes, {n: i for i, n in enumerate(nodes)})
    snap = Snapshot(scan.root, graph, layout, status, paths, tables, select, timings)
    snap.markers = build_markers(layout, status)
    add_problem_layout(snap, aspect)
    add_overviews(snap)
    timings["layout"] = time.perf_counter() - t
    snap.undo = journal.undo_target()  # a small file: read here, never in a slot
    attributes = graph.nodes.attributes  # not graph.nodes.items(): a Python call per node
    in_use = [n for n, a in attributes.items() if (i := a[INFO]) is not None and i.in_use]
    local = scan.remote_uri is None  # another host's paths are never looked up here
    snap.holders = holders_by_path(in_use) if in_use and local else {}
    snap.domains = domains
    snap.hosts = hosts
    snap.internal = internal_snapshots(graph) if local else {}
    snap.totals = count_totals(graph, status)
    return snap


def compare_ready(new: Snapshot, previous: Snapshot | None) -> None:
    """Works out, here on a worker, the tree signatures by which a scene showing ``previous``
    will keep what did not change when it shows ``new`` (a rescan of the same folder), so the
    GUI thread only compares them."""
    if previous is not None and previous.root == new.root:
        new.signatures  # noqa: B018 - worked out and kept
        previous.signatures  # noqa: B018 - the same (a no-op when an earlier job did it)


def tree_signature(snap: Snapshot, nodes: list[str]) -> int:
    """A hash of what one tree's drawing shows: its nodes in order with their backing files
    (hence its shape), each one's state, format and sizes, and who uses or holds it."""
    attrs, status, parent = snap.graph.nodes.attributes, snap.status, snap.layout.forest.parent
    domains, holders = snap.domains, snap.holders
    parts: list[object] = []
    add = parts.append
    for node in nodes:
        a = attrs[node]
        info = a[INFO]
        if info is None:
            add((node, parent.get(node), a[KIND], status[node]))
        else:
            add((node, parent.get(node), a[KIND], status[node], info.format, info.virtual_size,
                 info.actual_size))  # fmt: skip
        if domains and node in domains:
            add(uses_label(domains[node]))
        if holders and node in holders:
            add(holder_label(holders[node]))
    return hash(tuple(parts))


def internal_snapshots(graph: ChainGraph) -> dict[str, tuple[InternalSnapshot, ...]]:
    """Each image whose header counts internal snapshots, with them (a small read of the
    snapshot table per such image; images without snapshots cost nothing)."""
    from imagegui.core.read.formats.base import ParseError
    from imagegui.core.read.snapshots import read_snapshots

    found: dict[str, tuple[InternalSnapshot, ...]] = {}
    for node, attributes in graph.nodes.attributes.items():
        info = attributes[INFO]
        if info is None or info.format != "qcow2" or not info.flags.get("nb_snapshots"):
            continue
        try:
            found[node] = tuple(read_snapshots(info.path))
        except (OSError, ParseError) as exc:
            log.info("snapshot table of %s not read: %s", node, exc)
    return found


def build_graph(
    scan: ScanResult,
    index: DomainIndex | None,
    previous: ChainGraph | None = None,
    delta: ScanDelta | None = None,
) -> ChainGraph:
    """The chain graph of ``scan``: updated from ``previous`` (the graph of the scan before,
    which ``delta`` leads from) when given, else built whole."""
    if previous is not None and delta is not None:
        return update_graph(previous, scan, delta, domains=index)
    return ChainGraph(scan, domains=index)


def domain_uses(graph: ChainGraph, index: DomainIndex | None) -> dict[str, tuple[DomainUse, ...]]:
    """Which domain disks use each node (only nodes some domain uses), worked out here on the
    worker: the list, the cards and the details read it without touching a file."""
    if index is None or not index.disks:
        return {}
    return graph.domain_uses()


def _no_note(_news: int | str) -> None:
    pass


def troubled(status: NodeStatus) -> bool:
    """A node that puts its chain in the "Problems only" view."""
    return bool(
        status.errors or status.warnings or status.state in _TROUBLE or status.broken_at is not None
    )


_TROUBLE = {State.ERROR, State.WARNING, State.MISSING, State.UNREADABLE, State.UNUSABLE}


def add_problem_layout(snap: Snapshot, aspect: float = ASPECT) -> None:
    """Lays out the troubled chains alone (a few milliseconds when few chains are)."""
    layout, status = snap.layout, snap.status
    roots = [c.root for c in layout.components if any(troubled(status[n]) for n in c.nodes)]
    if len(roots) == len(layout.components):
        snap.problem_layout, snap.problem_paths = layout, snap.paths
        snap.problem_markers = snap.markers
        return
    sub = compute_layout(snap.graph, layout.forest, aspect, roots=roots)
    snap.problem_layout, snap.problem_paths = sub, build_paths(sub, status)
    snap.problem_markers = build_markers(sub, status)


def add_overviews(snap: Snapshot) -> None:
    """The overview's per-tree figures and block paths for both layouts, here on the worker."""
    from imagegui.gui.graph.overview import overview_data  # it imports this module's users

    for layout in (snap.layout, snap.problem_layout):
        if layout is not None and id(layout) not in snap.overviews:
            snap.overviews[id(layout)] = overview_data(layout, snap.status)


def build_paths(layout: Layout, status: dict[str, NodeStatus]) -> list[ComponentPaths]:
    """Each tree's paths, in the tree's own coordinates (its top-left corner at 0, 0: the scene
    puts its items at the tree's place). A straight chain's paths depend only on its cards'
    states, so chains alike share one set of paths (at 100,000 images most trees are chains of
    a few shapes, and drawing a path costs a Python call per segment)."""
    loops: dict[int, list[tuple[str, str]]] = {}
    of = layout.component_of
    for overlay, backing in layout.forest.loop_edges:
        index = of.get(overlay)
        if index is not None and backing in layout.positions:
            loops.setdefault(index, []).append((overlay, backing))
    chains: dict[tuple[State, ...], ComponentPaths] = {}
    out: list[ComponentPaths] = []
    add = out.append
    for index, comp in enumerate(layout.components):
        if comp.h == NODE_H and index not in loops:  # one row: a straight chain
            key = tuple([status[n].state for n in comp.nodes])
            paths = chains.get(key)
            if paths is None:
                paths = chains[key] = _chain_paths(key)
            add(paths)
        else:
            add(_component_paths(layout, comp, status, loops.get(index, ())))
    return out


#: States whose cards get a marker zoomed out (``gui.graph.cards.BROKEN``): the chain cannot
#: be opened.
BROKEN = {State.ERROR, State.MISSING, State.UNREADABLE, State.UNUSABLE}


def build_markers(layout: Layout, status: dict[str, NodeStatus]) -> Markers:
    """Where the markers go: the centre of every card whose chain breaks there (large) or
    further down (small)."""
    half_w, half_h = NODE_W / 2, NODE_H / 2
    points: dict[bool, list[QPointF]] = {True: [], False: []}
    for node, (x, y) in layout.positions.items():
        st = status[node]
        if st.state in BROKEN or st.broken_at is not None:
            at = st.broken_at
            points[at is None or at == node or st.state is not State.UNUSABLE].append(
                QPointF(x + half_w, y + half_h)
            )
    return Markers(QPolygonF(points[True]), QPolygonF(points[False]))


def _chain_paths(states: tuple[State, ...]) -> ComponentPaths:
    """A straight chain's paths: its cards in a row, each backing left of its overlay."""
    step = NODE_W + COL_GAP
    return _draw(
        [(i * step, 0.0) for i in range(len(states))],
        [(i, i - 1) for i in range(1, len(states))],
        [],
        states,
    )


def _component_paths(
    layout: Layout,
    comp: Component,
    status: dict[str, NodeStatus],
    loops: Iterable[tuple[str, str]] = (),
) -> ComponentPaths:
    pos, cx, cy = layout.positions, comp.x, comp.y
    at = {n: i for i, n in enumerate(comp.nodes)}
    parent = layout.forest.parent
    return _draw(
        [(pos[n][0] - cx, pos[n][1] - cy) for n in comp.nodes],
        [(at[n], at[parent[n]]) for n in comp.nodes if n in parent],
        [
            (at[o], at[b]) if b in at else (at[o], (pos[b][0] - cx, pos[b][1] - cy))
            for o, b in loops
        ],
        [status[n].state for n in comp.nodes],
    )


def _draw(
    cards: list[tuple[float, float]],
    edges: list[tuple[int, int]],
    loop_edges: list[tuple[int, int | tuple[float, float]]],
    states: Iterable[State],
) -> ComponentPaths:
    """The paths of one tree: ``cards`` are the cards' corners, ``edges`` (overlay, backing)
    indices into them, ``loop_edges`` the edges that close a loop (the backing an index, or a
    corner when it lies in another tree), ``states`` each card's state."""
    edge_path = QPainterPath()
    arrows = QPainterPath()
    half = NODE_H / 2
    for overlay, backing in edges:
        ox, oy = cards[overlay]
        bx, by = cards[backing]
        x1, y1 = bx + NODE_W, by + half  # the backing's right edge
        x2, y2 = ox, oy + half  # the overlay's left edge
        mid = (x1 + x2) / 2
        edge_path.moveTo(x2, y2)
        edge_path.cubicTo(mid, y2, mid, y1, x1 + ARROW, y1)
        arrows.moveTo(x1, y1)
        arrows.lineTo(x1 + ARROW, y1 - ARROW * 0.55)
        arrows.lineTo(x1 + ARROW, y1 + ARROW * 0.55)
        arrows.closeSubpath()
    loops = None
    for overlay, backing in loop_edges:
        loops = loops or QPainterPath()
        ox, oy = cards[overlay]
        bx, by = cards[backing] if isinstance(backing, int) else backing
        # Out of the overlay's left side, round under both cards, into the backing's right side.
        y1, y2 = oy + half, by + half
        bottom = max(oy, by) + NODE_H + 24
        right = bx + NODE_W
        loops.moveTo(ox, y1)
        loops.cubicTo(ox - 36, y1, ox - 36, bottom, ox + 12, bottom)
        loops.lineTo(right - 12, bottom)
        loops.cubicTo(right + 36, bottom, right + 36, y2, right + ARROW, y2)
        arrows.moveTo(right, y2)
        arrows.lineTo(right + ARROW, y2 - ARROW * 0.55)
        arrows.lineTo(right + ARROW, y2 + ARROW * 0.55)
        arrows.closeSubpath()
    boxes: dict[State, QPainterPath] = {}
    for (x, y), state in zip(cards, states, strict=True):
        box = boxes.get(state)
        if box is None:
            box = boxes[state] = QPainterPath()
        box.addRect(x, y, NODE_W, NODE_H)
    return ComponentPaths(edge_path, arrows, loops, list(boxes.items()))


def holder_label(holders: tuple[Holder, ...] | None) -> str:
    """``web01 (PID 4242)`` (a VM by its name), ``PID 77 (qemu-img)``, several joined; "" when
    no holder is known (not visible to this user)."""
    return ", ".join(
        f"{h.vm} (PID {h.pid})" if h.vm else f"PID {h.pid} ({h.program_name})"
        for h in holders or ()
    )


def uses_parts(uses: tuple[DomainUse, ...] | None) -> tuple[str, str]:
    """(``web01``, `` (shut off) +2``): the first VM's name and the rest of its label, so a card
    can shorten the name and keep the state. A VM with two disks on the chain counts once."""
    names = list(dict.fromkeys((u.uri, u.name, u.state) for u in uses or ()))
    if not names:
        return "", ""
    _uri, name, state = names[0]
    more = f" +{len(names) - 1}" if len(names) > 1 else ""
    return name, f" ({state}){more}"


def uses_label(uses: tuple[DomainUse, ...] | None) -> str:
    """``web01 (shut off)``, ``web01 (shut off) +2`` when more VMs use it; "" for none."""
    name, rest = uses_parts(uses)
    return name + rest


def use_line(use: DomainUse) -> str:
    """``web01 (shut off): vda, as a backing file — qemu:///system``: one use, whole."""
    how = "its disk's file" if use.role == Role.TOP else "as a backing file"
    return f"{use.describe()}: {use.disk or '?'}, {how} — {use.uri}"
