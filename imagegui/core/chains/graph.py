"""The chain graph: a ``networkx.DiGraph`` with an edge from every overlay to its backing file.

Nodes are keyed by absolute path. Besides scanned images there are placeholder nodes for backing
files that do not exist (``missing``), that exist but are not readable images (``unreadable``),
for protocol backings (``protocol``, keyed by the stored name) and for readable backing files
outside the scanned root (``external``); their attributes are named in ``chains.schema``.
:class:`ChainGraph` holds the DiGraph (:attr:`ChainGraph.g`) and answers the app's questions with
networkx's algorithms: strongly connected components for backing loops, ancestors for what
depends on an image, a breadth-first search up from each broken image for chain state.

networkx is imported where a graph is built, never when this module is imported: importing it
costs about as much as scanning 5,000 images, so the scan imports it on a second thread while
it walks the directory (``read.scan``), and ``imagegui --help`` never pays for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from imagegui.core.chains import checkstore, diagnose, nova
from imagegui.core.chains.checkstore import CheckStore
from imagegui.core.chains.diagnose import Kind, Level, Problem
from imagegui.core.chains.nova import NovaBase
from imagegui.core.chains.schema import (
    EXTERNAL,
    IMAGE,
    INFO,
    KIND,
    MISSING,
    PLACEHOLDERS,
    PROTOCOL,
    UNREADABLE,
    edge_data,
)
from imagegui.core.gcpause import paused_gc
from imagegui.core.read import backing
from imagegui.core.read.model import ImageInfo
from imagegui.core.read.scan import ScanResult

if TYPE_CHECKING:
    import networkx

    from imagegui.core.virt.inventory import DiskUse, DomainIndex
    from imagegui.core.virt.model import DomainUse

__all__ = [
    "CHAIN_OK_JSON",
    "EXTERNAL",
    "IMAGE",
    "MISSING",
    "PLACEHOLDERS",
    "PROTOCOL",
    "UNREADABLE",
    "ChainBreak",
    "ChainGraph",
    "NodeTable",
]


@dataclass(frozen=True)
class ChainBreak:
    """Where the chain under an image stops being openable, and why.

    ``at`` is the nearest node at or below the image whose problem breaks the chain; for a missing
    or unreadable backing file it is that file's placeholder, because that is the file to find.
    """

    at: str
    kind: Kind

    def to_json(self) -> dict[str, object]:
        return {"ok": False, "broken_at": self.at, "kind": str(self.kind)}


#: ``chain`` of an image whose whole chain qemu can open.
CHAIN_OK_JSON: dict[str, object] = {"ok": True, "broken_at": None, "kind": None}


class NodeTable(Mapping[str, tuple[str, "ImageInfo | None"]]):
    """``node -> (kind, image record or None)``: the DiGraph's node attributes as the pair the
    window and the command line unpack. A view of the graph, not a copy."""

    __slots__ = ("_attrs",)

    def __init__(self, g: networkx.DiGraph[str]):
        # The graph's own node -> attributes dict, not its ``nodes`` view: a lookup through the
        # view is a Python call more, and the window makes millions at 100,000 images.
        self._attrs = g._node  # type: ignore[attr-defined]

    def __getitem__(self, node: str) -> tuple[str, ImageInfo | None]:
        attrs = self._attrs[node]
        return attrs[KIND], attrs[INFO]

    @property
    def attributes(self) -> Mapping[str, Mapping[str, Any]]:
        """``node -> {KIND: …, INFO: …}``, the graph's own dict: for loops over every node of
        a big graph, where building a pair per node shows (read-only)."""
        return self._attrs

    def __contains__(self, node: object) -> bool:
        return node in self._attrs

    def __iter__(self) -> Iterator[str]:
        return iter(self._attrs)

    def __len__(self) -> int:
        return len(self._attrs)


class ChainGraph:
    """Images and their backing relationships, with the problems found in them."""

    def __init__(
        self,
        scan: ScanResult,
        now: float | None = None,
        checks: CheckStore | None = None,
        domains: DomainIndex | None = None,
        portable: bool = False,
    ):
        """``portable``: also report what stops the directory moving or being shared at another
        path (``absolute-backing``), as ``check --portable`` asks."""
        import networkx

        self.scan = scan
        self.root = scan.root
        #: The domain disks this graph was built with (a rebuild passes them on), or None.
        self.domains = domains
        #: Whether the portability warnings were asked for (a rebuild passes it on).
        self.portable = portable
        #: The graph: node attributes ``kind`` and ``info``, edges overlay -> backing with the
        #: recorded backing ``format`` (``chains.schema``). Insertion order: images, external
        #: images, then placeholders as the edges found them.
        self.g: networkx.DiGraph[str] = networkx.DiGraph()
        #: node -> (kind, ImageInfo or None), over :attr:`g`.
        self.nodes = NodeTable(self.g)
        self._by_id: dict[tuple[int, int], str] = {}
        #: File ids more than one image or external file has (hard links); rare.
        self._dup_ids: set[tuple[int, int]] = set()
        #: Images and external files whose edge or problems depend on more than their own
        #: record and their backing node's (``_add_edges``): looked at again by every update
        #: (``chains.incremental.update``).
        self._volatile: set[str] = set()
        #: Nodes an update changed (statuses to work out again); None: built whole.
        self.updated_nodes: frozenset[str] | None = None
        with paused_gc():
            self._add_nodes()
            self._add_edges()
            self.loops = self._find_loops()
            checked = self._check_problems(checks)
            self._set_problems(diagnose.find_problems(self.g, scan, self.loops, checked, portable))
            self._breaks = self._find_chain_breaks()
            self._finish(domains, now)

    def _set_problems(self, problems: list[Problem]) -> None:
        """The problems before any domain disk's (kept apart for updates), and their index."""
        self._core_problems = self.problems = problems
        index: dict[str, list[Problem]] = {}
        for p in problems:
            index.setdefault(p.path, []).append(p)
        self._core_index = self._problem_index = index

    def _finish(
        self, domains: DomainIndex | None, now: float | None, nova_paths: set[str] | None = None
    ) -> None:
        """What follows the chain state in a build and in an update alike: the domain disks'
        uses and problems, and the Nova bases (their ages depend on ``now``)."""
        #: node -> the domain disks that use it (``domains_of``); only nodes some disk uses.
        self._uses: dict[str, list[DomainUse]] = {}
        #: Domain disks whose file does not exist and that no node stands for (outside the
        #: root, no scanned image's backing file): (path, message), each once, for notes.
        self.domain_notes: list[tuple[str, str]] = []
        #: Placeholders added for domain disks (after every other node).
        self._domain_nodes: list[str] = []
        if domains is not None:
            self._attach_domains(domains)
        now = time.time() if now is None else now
        images = self.scan.images
        if nova_paths is None:
            nova_paths = {p for p in images if nova.is_cached_base(p)}
        #: The scanned images in a Nova ``_base`` directory (an update changes only these).
        self._nova_paths = nova_paths
        bases = {p: images[p] for p in nova_paths}
        self.nova_bases: list[NovaBase] = nova.find_bases(self.g, bases, now)
        self._nova_index = {b.path: b for b in self.nova_bases}

    # -- construction -------------------------------------------------------------------------

    def _add_nodes(self) -> None:
        # networkx's own node dicts filled whole (its add_nodes_from costs 3x as much): a
        # DiGraph is these three dicts and nothing else (``incremental`` relies on it too).
        g = self.g
        for kind, images in ((IMAGE, self.scan.images), (EXTERNAL, self.scan.external)):
            g._node.update({p: {KIND: kind, INFO: info} for p, info in images.items()})  # type: ignore[attr-defined]
            g._succ.update({p: {} for p in images})  # type: ignore[attr-defined]
            g._pred.update({p: {} for p in images})  # type: ignore[attr-defined]
        self._by_id, self._dup_ids = ids_of(self.scan.images, self.scan.external)

    def _add_edges(self) -> None:
        g = self.g
        succ, pred = g._succ, g._pred  # type: ignore[attr-defined]
        volatile = self._volatile
        scan = self.scan
        inside = self.root.rstrip("/") + "/"
        aliases = scan.aliases
        for images in (scan.images, scan.external):
            for path, info in images.items():
                if info.extents:
                    volatile.add(path)  # whether its data files exist: looked at each time
                if info.backing_file is None:
                    continue
                target = info.backing_path
                # The common case inline (``_direct`` on ``_target_node``): a backing path
                # inside the root that is a scanned image by that very name.
                if (
                    target is None
                    or info.backing_protocol
                    or target not in scan.images
                    or target in aliases
                    or not target.startswith(inside)
                ):
                    target = self._target_node(info)
                    if not self._direct(info, target):
                        volatile.add(path)
                fmt = info.backing_format
                data = edge_data(fmt)
                succ[path][target] = data
                pred[target][path] = data

    def _direct(self, info: ImageInfo, target: str) -> bool:
        """Whether the edge and the problems of ``info`` depend only on its own record and on
        its backing node's: its backing path names a scanned (or external) image itself, and
        lies inside the root as written (else ``is_inside`` looks through symlinks)."""
        path = info.backing_path
        scan = self.scan
        return (
            path == target
            and (path in scan.images or path in scan.external)
            and not info.backing_protocol
            and path not in self.scan.aliases
            and backing.is_within(path, self.root)
        )

    def _resolve_target(self, info: ImageInfo) -> tuple[str, str | None]:
        """The node ``info``'s backing file is, and the kind of placeholder it needs (None when
        it is a scanned or external image)."""
        if info.backing_protocol or info.backing_path is None:
            return info.backing_file or "", PROTOCOL
        target = info.backing_path
        target = self.scan.aliases.get(target, target)
        if target in self.scan.images or target in self.scan.external:
            return target, None
        key = self.scan.identify(target)  # stat here; the host's known files when remote
        if key is not None:
            same = self._by_id.get(key)
            if same is not None:
                return same, None
        return target, MISSING if key is None else UNREADABLE

    def _target_node(self, info: ImageInfo) -> str:
        """The node ``info``'s backing file is, added as a placeholder when no image is."""
        target, kind = self._resolve_target(info)
        if kind is not None and target not in self.g:
            self.g.add_node(target, **{KIND: kind, INFO: None})
        return target

    def _find_loops(self) -> list[list[str]]:
        """Each backing loop once, in chain order from its member added first.

        Every node has at most one backing, so following backings from any node ends either
        at a node with no backing or in a loop: one walk down from each node, never walking a
        node twice (a dict of where each walk went), finds every loop in one pass."""
        return loops_from(self.g, self.g._succ)  # type: ignore[attr-defined]

    def _check_problems(self, checks: CheckStore | None) -> list[Problem]:
        """What earlier ``qemu-img check`` runs found, for images still in the state checked
        (kept as :attr:`_known`, for :meth:`checks_changed`)."""
        found, note = self._read_checks(checks)
        #: Why stored check results could not be read, for the CLI and the window to mention.
        self.checks_note = note
        self._known = found
        return found

    def checks_changed(self, checks: CheckStore | None = None) -> bool:
        """Whether the kept ``qemu-img check`` results (the store read again) now say something
        else of this graph's images than when it was built: a rescan that found no file
        changed still shows a check's findings. Changes nothing here."""
        found, note = self._read_checks(checks)
        return found != self._known or note != self.checks_note

    def _read_checks(self, checks: CheckStore | None) -> tuple[list[Problem], str | None]:
        """The problems kept check results give this graph's images, and why the store could
        not be read ("" when it could). The store holds only damaged images, so this costs one
        dict lookup per stored finding (the scan's own ``stat`` says whether the file changed
        since), nothing per healthy image."""
        if self.scan.remote_uri is not None:
            # Kept findings name files of this machine by (device, inode): never another host's.
            checks = CheckStore()
        elif checks is None:
            checks = checkstore.load()
        found: list[Problem] = []
        for rec in checks:
            fp = rec.fingerprint
            path = self._by_id.get((fp.dev, fp.ino))
            info = self.image(path) if path is not None else None
            if path is not None and info is not None and info.stamp == (fp.size, fp.mtime_ns):
                found.extend(rec.problems(path))
        return found, checks.note

    def _attach_domains(self, domains: DomainIndex) -> None:
        """Marks every node a domain disk uses: the disk's own file as ``top``, each file below
        it in its chain as ``backing``; then the disks qemu could not open become problems.
        Costs one chain walk per domain disk (nothing at all without domains).

        A disk whose file does not exist gets a ``missing`` placeholder when the file would be
        one of ours (inside the root; a scanned image's backing file already is one), else a
        note. A disk whose file is outside the root but whose chain reaches into it marks what
        it reaches (its chain read from the headers, as qemu will read it)."""
        from imagegui.core.virt.model import Role

        g, root = self.g, self.root
        used_tops: list[tuple[str, DiskUse]] = []
        seen: dict[str, set[DomainUse]] = {}

        def mark(node: str, use: DomainUse) -> None:
            have = seen.setdefault(node, set())
            if use not in have:
                have.add(use)
                self._uses.setdefault(node, []).append(use)

        notes: dict[tuple[str, str], None] = {}
        for du in domains.top_uses():
            node = self.resolve(du.path)
            if node is None:
                if self.scan.identify(du.path) is not None:
                    if self.scan.remote_uri is None:  # its headers are files here
                        self._mark_from_outside(domains, du, mark)
                    continue
                if not self.scan.within(du.path, root):
                    notes[(du.path, diagnose.domain_disk_missing_message(du))] = None
                    continue
                node = du.path
                if node not in g:
                    self._domain_nodes.append(node)
                g.add_node(node, **{KIND: MISSING, INFO: None})
            used_tops.append((node, du))
            mark(node, du.use(Role.TOP))
            below = du.use(Role.BACKING)
            for base in self.chain(node)[1:]:
                mark(base, below)
        self.domain_notes = list(notes)
        found = diagnose.domain_disk_problems(g, used_tops, self.chain_break)
        if found:
            # New lists: the problems before them are kept apart (and shared by updates).
            index = dict(self._problem_index)
            for p in found:
                index[p.path] = [*index.get(p.path, ()), p]
            self._problem_index = index
            self.problems = sorted([*self.problems, *found], key=lambda p: (p.path, p.kind))

    def _mark_from_outside(
        self,
        domains: DomainIndex,
        du: DiskUse,
        mark: Callable[[str, DomainUse], None],
    ) -> None:
        """A disk whose file is not a node: the nodes its chain reaches are its backing."""
        from imagegui.core.virt.model import Role

        below = du.use(Role.BACKING)
        for path in domains.chain_of(du)[1:]:
            node = self.resolve(path)
            if node is not None:
                for base in self.chain(node):
                    mark(base, below)
                return

    # -- queries ------------------------------------------------------------------------------

    def image(self, path: str) -> ImageInfo | None:
        attrs = self.g.nodes.get(path)
        return None if attrs is None else attrs[INFO]

    def kind(self, node: str) -> str:
        return self.g.nodes[node][KIND]

    def resolve(self, path: str) -> str | None:
        """The node for ``path``, through symlinks, hard links and ``..``; None if not scanned."""
        norm = self.scan.normalise(path)
        if norm in self.g:
            return norm
        key = self.scan.identify(norm)
        return None if key is None else self._by_id.get(key)

    def backing_of(self, node: str) -> str | None:
        """The node ``node`` backs onto (its one successor), or None."""
        if node not in self.g:
            return None
        return next(self.g.successors(node), None)

    def chain(self, node: str) -> list[str]:
        """``node`` and its backing files, top to base; stops before repeating a loop."""
        import networkx

        if node not in self.g:
            return [node]
        return list(networkx.dfs_preorder_nodes(self.g, node))

    def children(self, node: str) -> list[str]:
        """Images that use ``node`` directly as their backing file (its predecessors)."""
        return sorted(self.g.predecessors(node)) if node in self.g else []

    def descendants(self, node: str) -> set[str]:
        """Every image whose content depends on ``node``, overlays of overlays included: its
        ancestors in networkx's terms, since edges point from an overlay to its backing."""
        import networkx

        return networkx.ancestors(self.g, node) if node in self.g else set()

    def roots(self) -> list[str]:
        """Nodes with no backing file: the bottom of each chain (placeholders included)."""
        return sorted(n for n, out in self.g.out_degree() if out == 0)

    def depth(self, node: str) -> int:
        """Backing files below ``node`` (0 for a standalone image)."""
        return len(self.chain(node)) - 1

    def domains_of(self, node: str) -> list[DomainUse]:
        """The domain disks that use ``node``: as the file they name (role top) or below it in
        their chain (role backing); empty when no domain was read or none uses it."""
        return self._uses.get(node, [])

    def domain_uses(self) -> dict[str, tuple[DomainUse, ...]]:
        """Every node some domain disk uses, with those uses (``domains_of`` of each), without
        visiting the nodes no disk uses."""
        return {node: tuple(uses) for node, uses in self._uses.items()}

    def problems_for(self, path: str) -> list[Problem]:
        return self._problem_index.get(path, [])

    def nova_base(self, path: str) -> NovaBase | None:
        return self._nova_index.get(path)

    def in_loop(self, node: str) -> bool:
        return node in self._loop_of

    def loop_number(self, node: str) -> int | None:
        """1-based index into :attr:`loops` of the loop ``node`` is part of (as messages say)."""
        return self._loop_of.get(node)

    @cached_property
    def _loop_of(self) -> dict[str, int]:
        return {n: i for i, loop in enumerate(self.loops, 1) for n in loop}

    def chain_break(self, node: str) -> ChainBreak | None:
        """Why qemu cannot open ``node``'s chain (its own problem or one below it), or None."""
        return self._breaks.get(node)

    def unusable(self) -> list[str]:
        """Images whose chain qemu cannot open, their own problem or not."""
        return list(self._breaks)

    # -- chain state --------------------------------------------------------------------------

    def _own_break(self, node: str) -> ChainBreak | None:
        """The error-level problem of ``node`` itself that stops qemu opening it."""
        # The problems before any domain disk's: those never decide where a chain breaks.
        errors = [p for p in self._core_index.get(node, ()) if p.level == Level.ERROR]
        if not errors:
            return None
        worst = min(errors, key=lambda p: diagnose.break_rank(p.kind))
        if worst.kind == Kind.MISSING_BACKING:
            target = self.backing_of(node)
            if target is not None and self.kind(target) in (MISSING, UNREADABLE):
                return ChainBreak(target, worst.kind)
        return ChainBreak(node, worst.kind)

    def _find_chain_breaks(self) -> dict[str, ChainBreak]:
        """Every image whose chain is broken: an image is unusable when it or anything below it
        has an error-level problem. A breadth-first search up from each image with a break
        of its own marks its overlays, stopping at overlays with a break of their own (theirs is
        nearer), so every node is visited once however deep the chains (loops included: every
        member of a loop has a breaking problem of its own). Placeholders are never unusable:
        the overlay above one carries the problem."""
        import networkx

        attrs = self.g.nodes
        own: dict[str, ChainBreak] = {}
        for node in self._core_index:
            if node in attrs and attrs[node][INFO] is not None:
                found = self._own_break(node)
                if found is not None:
                    own[node] = found
        breaks = dict(own)
        overlays = self.g.pred

        def without_own_break(node: str) -> Iterator[str]:
            return (o for o in overlays[node] if o not in own)

        for node, found in own.items():
            if all(o in own for o in overlays[node]):
                continue  # nothing above to mark (a loop's members: each has its own)
            for _, overlay in networkx.generic_bfs_edges(self.g, node, neighbors=without_own_break):
                breaks[overlay] = found
        return breaks


def ids_of(
    images: dict[str, ImageInfo], external: dict[str, ImageInfo]
) -> tuple[dict[tuple[int, int], str], set[tuple[int, int]]]:
    """Each file id's node (its first image, else its first external file) and the ids more
    than one of them share (hard links). Built from the end so the first path wins without a
    test per path."""
    by_id = {info.file_id: path for path, info in reversed(external.items())}
    by_id.update({info.file_id: path for path, info in reversed(images.items())})
    dups: set[tuple[int, int]] = set()
    if len(by_id) < len(images) + len(external):
        seen: set[tuple[int, int]] = set()
        for records in (images, external):
            for info in records.values():
                if info.file_id in seen:
                    dups.add(info.file_id)
                seen.add(info.file_id)
    return by_id, dups


def closed_walks(
    starts: Iterable[str], succ: Mapping[str, Mapping[str, object]]
) -> Iterator[list[str]]:
    """The loops met walking down from each of ``starts`` in turn (every node has at most one
    successor), each from the node where its walk came back onto itself.

    A walk never goes through a node an earlier walk went, so each loop is met once, by the
    first walk that reaches it."""
    walk_of: dict[str, int] = {}
    for i, start in enumerate(starts):
        node = start
        path = []
        while node not in walk_of:
            walk_of[node] = i
            path.append(node)
            below = succ.get(node)
            if not below:
                break
            node = next(iter(below))
        else:
            if walk_of[node] == i:  # back on this walk: a loop
                yield path[path.index(node) :]


def loops_from(order: Iterable[str], succ: Mapping[str, Mapping[str, object]]) -> list[list[str]]:
    """Each loop of the graph whose successor dicts are ``succ`` (every node has at most one
    successor), in chain order from its member first in ``order``, in that order.

    One walk down from each node of ``order`` (:func:`closed_walks`)."""
    found = list(closed_walks(order, succ))
    if not found:
        return []
    # Each loop from its member first in ``order`` (a walk may have entered it anywhere).
    first = {n: loop for loop in found for n in loop}
    loops = []
    for start in order:
        loop = first.get(start)
        if loop is not None:
            at = loop.index(start)
            loops.append(loop[at:] + loop[:at])
            for n in loop:
                del first[n]
    return loops
