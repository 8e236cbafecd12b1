"""The chain graph of a rescan, made from the last graph and what the rescan changed.

``ChainGraph(scan)`` costs about a second of CPU at 100,000 images; after a rescan that changed
one file nearly all of it works out again what it had. :func:`update` makes the graph of the new
scan from the old graph and the :class:`~imagegui.core.read.rescan.ScanDelta` between their scans
(the image, external and error paths added, removed or changed). The result equals a full build
of the new scan in every part a reader sees: nodes in order with their attributes, edges with
their data, loops, problems in order, chain breaks, Nova bases and domain uses (a hypothesis test
compares them after random sequences of changes: ``tests/core/chains/test_incremental.py``). The
old graph is left as it was, since the window still shows it while the update runs on the
worker: the new graph shares its unchanged inner dicts and lists and never writes into them.

What depends on what, and so what an update works out again:

* **A node's edge** depends on its record, the aliases, which paths are images, and for a
  backing name that names no image directly, on the file system (``stat``: a hard link to an
  image, an unreadable file, a missing one) and on the file ids of every image. Images whose edge
  or problems depend on more than their own record and their backing node's are *volatile*
  (``ChainGraph._volatile``: a placeholder, alias or hard-link backing, a backing outside the
  root as written, data files): their edges and problems are worked out again on every update,
  with the ``stat`` calls a full build makes for them. The rest are redone when their record
  changed or their backing node went.
* **File ids** (``_by_id``): patched for the changed records; when a change involves an id
  that more than one file has (hard links), worked out whole (one pass, milliseconds).
* **A node's problems** depend on its record, its backing node's kind and record, its scan
  errors, its kept check results, its loop: redone for changed records, their overlays, the
  volatile images, changed errors and check results, and every loop member when the loops
  changed (their messages number them). The sorted list keeps the unchanged paths' problems.
* **Loops** (global: numbered in node order): only a changed edge makes or breaks one, so the
  walk starts only from the changed edges; the old loops none of whose members changed stay.
* **Chain breaks** (a break below reaches every overlay above): worked out again up from each
  node whose own break or backing changed, along its overlays.
* **Whole, every time, because they are small or read the clock**: kept check results (one
  lookup per stored finding), the Nova bases (their age follows the clock; the set of bases
  is patched), the domain disks' uses and problems (one chain walk per disk).

A full build is made instead when the delta is large (more than :data:`FALLBACK_SHARE` of the
nodes and more than :data:`FALLBACK_MIN` paths: the pieces above then cost as much as a build,
which is the simpler thing to trust), for another host's images (their ids are made up per
read), and for a graph of another root.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import chain as chained
from typing import TYPE_CHECKING

from imagegui.core.chains import diagnose, nova
from imagegui.core.chains.diagnose import Kind, Problem
from imagegui.core.chains.graph import ChainBreak, ChainGraph, NodeTable, closed_walks, ids_of
from imagegui.core.chains.schema import EXTERNAL, IMAGE, INFO, KIND, edge_data
from imagegui.core.gcpause import paused_gc
from imagegui.core.read.model import ImageInfo, ScanError
from imagegui.core.read.scan import ScanResult

if TYPE_CHECKING:
    from imagegui.core.chains.checkstore import CheckStore
    from imagegui.core.read.fileid import FileId
    from imagegui.core.read.rescan import ScanDelta
    from imagegui.core.virt.inventory import DomainIndex

#: A delta of more than this share of the nodes (and more than FALLBACK_MIN paths) is built whole.
FALLBACK_SHARE = 0.05
FALLBACK_MIN = 1000


def update(
    old: ChainGraph,
    scan: ScanResult,
    delta: ScanDelta,
    now: float | None = None,
    checks: CheckStore | None = None,
    domains: DomainIndex | None = None,
) -> ChainGraph:
    """The graph of ``scan`` (equal to ``ChainGraph(scan, now, checks, domains,
    old.portable)``), made from ``old`` where ``delta`` (from ``old.scan`` to ``scan``) allows;
    its ``updated_nodes`` are the nodes whose status may differ from ``old``'s (None when it was
    built whole). ``old`` is not changed."""
    size = len(delta.images) + len(delta.external) + len(delta.errors) + len(delta.aliases)
    if (
        scan.remote_uri is not None
        or old.scan.remote_uri is not None
        or scan.root != old.root
        or (size > FALLBACK_MIN and size > FALLBACK_SHARE * len(old.g))
    ):
        return ChainGraph(scan, now, checks, domains, old.portable)
    with paused_gc():
        return _Update(old, scan, delta).run(now, checks, domains)


class _Update:
    """One update (see the module's docstring); :meth:`run` makes the new graph."""

    def __init__(self, old: ChainGraph, scan: ScanResult, delta: ScanDelta):
        self.old, self.scan, self.delta = old, scan, delta
        images, external = scan.images, scan.external
        self.records = delta.records
        #: Changed paths that are no image or external file any more.
        self.gone = {p for p in self.records if p not in images and p not in external}
        self._pos: dict[str, int] | None = None
        self._placeholders0: set[str] | None = None
        self._placeholder_order: list[str] = []
        self.checks: CheckStore | None = None

    def record(self, path: str) -> ImageInfo | None:
        info = self.scan.images.get(path)
        return info if info is not None else self.scan.external.get(path)

    def run(
        self, now: float | None, checks: CheckStore | None, domains: DomainIndex | None
    ) -> ChainGraph:
        import networkx

        old, scan = self.old, self.scan
        self.checks = checks
        new = ChainGraph.__new__(ChainGraph)
        new.scan, new.root, new.domains, new.portable = scan, scan.root, domains, old.portable
        new._volatile = set()
        new.updated_nodes = None
        new._by_id, new._dup_ids = self._ids()
        self.new = new
        targets = self._targets()
        placeholders = self._placeholders(targets)
        g: networkx.DiGraph[str] = networkx.DiGraph()
        g._node, g._adj, g._pred = self._node_dicts(targets, placeholders)  # type: ignore[attr-defined]
        new.g = g
        new.nodes = NodeTable(g)
        rewired = {p for p in targets if g._succ[p] is not old.g._succ.get(p)}  # type: ignore[attr-defined]
        new.loops = self._loops(rewired)
        dirty = self._problems(targets, placeholders, rewired)
        up = self._breaks(dirty, rewired)
        nova_paths = (old._nova_paths - self.gone) | {
            p for p in self.records if p in scan.images and nova.is_cached_base(p)
        }
        new._finish(domains, now, nova_paths)
        touched = set(dirty) | up | self.gone | set(placeholders) | self._old_placeholders()
        touched |= old._nova_paths | nova_paths
        touched.update(old._domain_nodes, new._domain_nodes)
        for graph in (old, new):
            if graph.problems is not graph._core_problems:  # a domain disk's problems
                touched.update(p.path for p in graph.problems if p.kind == Kind.DOMAIN_DISK_MISSING)
        new.updated_nodes = frozenset(touched)
        return new

    # -- nodes and edges ---------------------------------------------------------------------

    def _ids(self) -> tuple[dict[FileId, str], set[FileId]]:
        """``_by_id`` and ``_dup_ids`` of the new scan: the old ones patched for the changed
        records, or worked out whole when a change involves an id more than one file has."""
        old, scan = self.old, self.scan
        ids: set[FileId] = set()
        now: dict[FileId, str] = {}
        for p in self.records:
            was = old.scan.images.get(p) or old.scan.external.get(p)
            if was is not None:
                ids.add(was.file_id)
            info = self.record(p)
            if info is not None:
                if info.file_id in now:
                    return ids_of(scan.images, scan.external)
                now[info.file_id] = p
                ids.add(info.file_id)
        if not ids:
            return old._by_id, old._dup_ids  # never written after a build: shared
        if not ids.isdisjoint(old._dup_ids):
            return ids_of(scan.images, scan.external)
        by_id = dict(old._by_id)
        for fid in ids:
            holder = by_id.get(fid)
            if holder is not None and holder not in self.records:
                if fid in now:  # a second file with this id: which one wins is order's
                    return ids_of(scan.images, scan.external)
                continue
            if fid in now:
                by_id[fid] = now[fid]
            else:
                by_id.pop(fid, None)
        return by_id, set(old._dup_ids)

    def _targets(self) -> dict[str, tuple[str, str | None] | None]:
        """The overlays whose edge is worked out again, each with (its backing node, the kind
        of placeholder that node is or None), or None for an image without a backing file."""
        old, new = self.old, self.new
        again = {p for p in self.records if p not in self.gone}
        again.update(p for p in old._volatile if p not in self.gone)
        pred0 = old.g._pred  # type: ignore[attr-defined]
        for t in self.gone:
            again.update(o for o in pred0.get(t, ()) if o not in self.gone)
        out: dict[str, tuple[str, str | None] | None] = {}
        for p in again:
            info = self.record(p)
            assert info is not None
            if info.extents:
                new._volatile.add(p)
            if info.backing_file is None:
                out[p] = None
                continue
            target, kind = new._resolve_target(info)
            out[p] = (target, kind)
            if kind is not None or not new._direct(info, target):
                new._volatile.add(p)
        return out

    def _placeholders(self, targets: Mapping[str, tuple[str, str | None] | None]) -> dict[str, str]:
        """Placeholder nodes and their kinds, in the order a full build adds them (the first
        overlay naming each, in node order). Every overlay of a placeholder is volatile, so
        all of them are among ``targets``."""
        refs = {p: (t[0], t[1]) for p, t in targets.items() if t is not None and t[1] is not None}
        if len(refs) > 1:
            scan = self.scan
            ordered = [p for p in chained(scan.images, scan.external) if p in refs]
        else:
            ordered = list(refs)
        found: dict[str, str] = {}
        for p in ordered:
            target, kind = refs[p]
            if kind is not None:
                found.setdefault(target, kind)
        return found

    def _node_dicts(
        self,
        targets: Mapping[str, tuple[str, str | None] | None],
        placeholders: Mapping[str, str],
    ) -> tuple[dict, dict, dict]:
        """networkx's node, successor and predecessor dicts of the new graph, in a full
        build's order, sharing the old graph's inner dicts where they are unchanged."""
        old, scan = self.old, self.scan
        node0 = old.g._node  # type: ignore[attr-defined]
        succ0 = old.g._succ  # type: ignore[attr-defined]
        pred0 = old.g._pred  # type: ignore[attr-defined]
        images, external = scan.images, scan.external
        if self._same_order(placeholders):
            # The usual case (files written in place): copies of the old dicts (a copy of a
            # dict is one memcpy, a comprehension a lookup per node), patched below.
            nd, sd, pd = dict(node0), dict(succ0), dict(pred0)
            for d in old._domain_nodes:
                del nd[d], sd[d], pd[d]
        else:
            nd = {p: node0.get(p) for p in images}
            nd.update({p: node0.get(p) for p in external})
            sd = {p: succ0.get(p) for p in images}
            sd.update({p: succ0.get(p) for p in external})
            pd = {p: pred0.get(p) for p in images}
            pd.update({p: pred0.get(p) for p in external})
        for p in self.records:
            if p not in self.gone:
                nd[p] = {KIND: IMAGE if p in images else EXTERNAL, INFO: self.record(p)}
        for t, kind in placeholders.items():
            attrs = node0.get(t)
            same = attrs is not None and attrs[KIND] == kind and attrs[INFO] is None
            nd[t] = attrs if same else {KIND: kind, INFO: None}
            sd[t] = {}
            pd[t] = pred0.get(t)
        # Edges worked out again: the old successor dict when it is the same edge.
        for p, target in targets.items():
            if target is None:
                sd[p] = {}
                continue
            info = self.record(p)
            assert info is not None
            fmt = info.backing_format
            data = edge_data(fmt)
            before = succ0.get(p)
            if before and before.get(target[0]) == data:
                sd[p] = before
            else:
                sd[p] = {target[0]: data}
        # Predecessors: of the nodes that lost or gained an overlay, in node order.
        lose: dict[str, set[str]] = {}
        gain: dict[str, set[str]] = {}
        for p in chained(targets, self.gone):
            before, after = succ0.get(p), sd.get(p)
            if before is after:
                continue
            if before:
                lose.setdefault(next(iter(before)), set()).add(p)
            if after:
                gain.setdefault(next(iter(after)), set()).add(p)
        for t in lose.keys() | gain.keys():
            if t not in nd:
                continue
            losers, gainers = lose.get(t, set()), gain.get(t, set())
            members = [o for o in pd.get(t) or () if o not in losers and o not in gainers]
            if gainers:
                members += gainers
                if len(members) > 1:
                    pos = self.positions(nd)
                    members.sort(key=pos.__getitem__)
            pd[t] = {o: sd[o][t] for o in members}
        for p in chained(self.records, placeholders):
            if p in pd and pd[p] is None:
                pd[p] = {}
            if p in sd and sd[p] is None:
                sd[p] = {}
        return nd, sd, pd

    def _same_order(self, placeholders: Mapping[str, str]) -> bool:
        """Whether the new graph's nodes are the old one's in the same order (domain disks'
        placeholders aside): no image added or gone, the same placeholders."""
        old, scan = self.old, self.scan
        node0 = old.g._node  # type: ignore[attr-defined]
        if self.gone or any(p not in node0 for p in self.records):
            return False
        if len(scan.images) != len(old.scan.images) or len(scan.external) != len(old.scan.external):
            return False
        self._old_placeholders()
        if list(placeholders) != self._placeholder_order:
            return False
        return list(scan.images) == list(old.scan.images) and list(scan.external) == list(
            old.scan.external
        )

    def positions(self, nodes: Iterable[str]) -> dict[str, int]:
        """Each node's place in the new graph's order (made once, when first needed)."""
        if self._pos is None:
            self._pos = {n: i for i, n in enumerate(nodes)}
        return self._pos

    def _old_placeholders(self) -> set[str]:
        """The old graph's placeholders that edges made (not the domain disks')."""
        if self._placeholders0 is None:
            old = self.old
            node0 = old.g._node  # type: ignore[attr-defined]
            count = len(old.scan.images) + len(old.scan.external)
            rest = list(node0)[count:] if len(node0) > count else []
            domain = set(old._domain_nodes)
            self._placeholder_order = [n for n in rest if n not in domain]
            self._placeholders0 = set(self._placeholder_order)
        return self._placeholders0

    # -- loops -------------------------------------------------------------------------------

    def _loops(self, rewired: set[str]) -> list[list[str]]:
        """The old loops none of whose members changed its edge or went, and the loops the
        changed edges close; each from its member first in node order, in that order."""
        old, succ = self.old, self.new.g._succ  # type: ignore[attr-defined]
        changed = rewired | self.gone
        loops = [loop for loop in old.loops if changed.isdisjoint(loop)]
        known = {n for loop in loops for n in loop}
        for loop in closed_walks(rewired, succ):
            if loop[0] not in known:  # not an old loop a changed edge leads into
                loops.append(loop)
                known.update(loop)
        if not loops:
            return []
        pos = self.positions(self.new.g._node)  # type: ignore[attr-defined]
        out = []
        for loop in loops:
            first = min(range(len(loop)), key=lambda i: pos[loop[i]])
            out.append(loop[first:] + loop[:first])
        out.sort(key=lambda loop: pos[loop[0]])
        return out

    # -- problems and chain state ------------------------------------------------------------

    def _problems(
        self,
        targets: Mapping[str, object],
        placeholders: Mapping[str, str],
        rewired: set[str],
    ) -> set[str]:
        """The new graph's problems: the old ones of the paths nothing touched, the others'
        worked out again. Returns those paths."""
        old, new, scan = self.old, self.new, self.scan
        g = new.g
        pred = g._pred  # type: ignore[attr-defined]
        known = new._check_problems(self.checks)
        dirty = set(self.records) | self.delta.errors | set(targets) | rewired
        for t in chained(self.records, placeholders, self._old_placeholders()):
            dirty.update(pred.get(t) or ())
        was, now = _by_path(old._known), _by_path(known)
        dirty.update(p for p in was.keys() | now.keys() if was.get(p) != now.get(p))
        loop_at: dict[str, list[Problem]] = {}
        if new.loops != old.loops:
            dirty.update(n for loop in chained(old.loops, new.loops) for n in loop)
        if new.loops:
            loop_at = _by_path(diagnose.loop_problems(new.loops))
        errors_at: dict[str, list[ScanError]] = {}
        for e in scan.errors:
            if e.path in dirty:
                errors_at.setdefault(e.path, []).append(e)
        rules = diagnose.NodeRules(g, scan)
        node, succ = g._node, g._succ  # type: ignore[attr-defined]
        fresh: list[Problem] = []
        index = dict(old._core_index)
        for path in dirty:
            found = list(now.get(path, ()))
            if path in errors_at:
                found += diagnose.error_problems(errors_at[path])
            found += loop_at.get(path, ())
            attrs = node.get(path)
            info = attrs[INFO] if attrs is not None else None
            if info is not None:
                if new.portable and path in scan.images:
                    absolute = diagnose.portability_problem(scan, path, info)
                    if absolute is not None:
                        found.append(absolute)
                found += rules.of(path, info, succ[path])
            if found:
                found.sort(key=lambda p: p.kind)
                index[path] = found
                fresh += found
            else:
                index.pop(path, None)
        kept = [p for p in old._core_problems if p.path not in dirty]
        problems = kept + fresh if fresh else kept
        if fresh:
            problems.sort(key=lambda p: p.path)  # stable: each path's problems stay in order
        new._core_problems = new.problems = problems
        new._core_index = new._problem_index = index
        return dirty

    def _breaks(self, dirty: set[str], rewired: set[str]) -> set[str]:
        """The new chain breaks: the old ones, worked out again up from every node whose own
        break or backing changed. Returns the nodes worked out again."""
        old, new = self.old, self.new
        node0 = old.g._node  # type: ignore[attr-defined]
        node, succ, pred = new.g._node, new.g._succ, new.g._pred  # type: ignore[attr-defined]

        def own(graph: ChainGraph, attrs: Mapping[str, dict], n: str) -> ChainBreak | None:
            a = attrs.get(n)
            return graph._own_break(n) if a is not None and a[INFO] is not None else None

        starts = {n for n in rewired if n in node}
        starts.update(n for n in dirty if n in node and own(new, node, n) != own(old, node0, n))
        up: set[str] = set()
        todo = list(starts)
        while todo:
            n = todo.pop()
            if n not in up:
                up.add(n)
                todo.extend(pred[n])
        breaks = dict(old._breaks)
        for n in chained(up, self.gone):
            breaks.pop(n, None)
        memo: dict[str, ChainBreak | None] = {}
        for start in up:
            n, path = start, []
            seen: set[str] = set()
            while True:
                if n in memo:
                    found = memo[n]
                    break
                if n not in up:
                    found = breaks.get(n)
                    break
                found = own(new, node, n)
                path.append(n)
                if found is not None or n in seen:
                    break
                seen.add(n)
                below = succ[n]
                if not below:
                    break
                n = next(iter(below))
            for m in path:
                memo[m] = found
        for n in up:
            found = memo.get(n)
            if found is not None and node[n][INFO] is not None:
                breaks[n] = found
        new._breaks = breaks
        return up


def _by_path(problems: Iterable[Problem]) -> dict[str, list[Problem]]:
    out: dict[str, list[Problem]] = {}
    for p in problems:
        out.setdefault(p.path, []).append(p)
    return out
