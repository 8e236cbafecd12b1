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
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from imagegui.core.chains import checkstore, diagnose, nova
from imagegui.core.chains.checkstore import CheckStore
from imagegui.core.chains.diagnose import Kind, Level, Problem
from imagegui.core.chains.nova import NovaBase
from imagegui.core.chains.schema import (
    EXTERNAL,
    FORMAT,
    IMAGE,
    INFO,
    KIND,
    MISSING,
    PLACEHOLDERS,
    PROTOCOL,
    UNREADABLE,
)
from imagegui.core.gcpause import paused_gc
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
        with paused_gc():
            self._add_nodes()
            self._add_edges()
            self.loops = self._find_loops()
            checked = self._check_problems(checks)
            self.problems: list[Problem] = diagnose.find_problems(
                self.g, scan, self.loops, checked, portable
            )
            self._problem_index: dict[str, list[Problem]] = {}
            for p in self.problems:
                self._problem_index.setdefault(p.path, []).append(p)
            self._breaks = self._find_chain_breaks()
            #: node -> the domain disks that use it (``domains_of``); only nodes some disk uses.
            self._uses: dict[str, list[DomainUse]] = {}
            #: Domain disks whose file does not exist and that no node stands for (outside the
            #: root, no scanned image's backing file): (path, message), each once, for notes.
            self.domain_notes: list[tuple[str, str]] = []
            if domains is not None:
                self._attach_domains(domains)
            now = time.time() if now is None else now
            self.nova_bases: list[NovaBase] = nova.find_bases(self.g, scan.images, now)
        self._nova_index = {b.path: b for b in self.nova_bases}

    # -- construction -------------------------------------------------------------------------

    def _add_nodes(self) -> None:
        g, by_id = self.g, self._by_id
        attrs = g.nodes
        for kind, images in ((IMAGE, self.scan.images), (EXTERNAL, self.scan.external)):
            # Bare names with a shared attribute, the record set after: networkx's fast path
            # (a (node, dict) pair costs it an exception per node).
            g.add_nodes_from(images, **{KIND: kind})
            for path, info in images.items():
                attrs[path][INFO] = info
                by_id.setdefault(info.file_id, path)

    def _add_edges(self) -> None:
        edges: list[tuple[str, str] | tuple[str, str, dict[str, str]]] = []
        for images in (self.scan.images, self.scan.external):
            for path, info in images.items():
                if info.backing_file is None:
                    continue
                target = self._target_node(info)
                fmt = info.backing_format
                edges.append((path, target) if fmt is None else (path, target, {FORMAT: fmt}))
        self.g.add_edges_from(edges)

    def _target_node(self, info: ImageInfo) -> str:
        """The node ``info``'s backing file is, added as a placeholder when no image is."""
        g = self.g
        if info.backing_protocol or info.backing_path is None:
            name = info.backing_file or ""
            if name not in g:
                g.add_node(name, **{KIND: PROTOCOL, INFO: None})
            return name
        target = info.backing_path
        target = self.scan.aliases.get(target, target)
        if target in self.scan.images or target in self.scan.external:
            return target
        key = self.scan.identify(target)  # stat here; the host's known files when remote
        if key is not None:
            same = self._by_id.get(key)
            if same is not None:
                return same
        if target not in g:
            g.add_node(target, **{KIND: MISSING if key is None else UNREADABLE, INFO: None})
        return target

    def _find_loops(self) -> list[list[str]]:
        """Each backing loop once, in chain order from its member added first.

        Every node has at most one backing, so each independent chain (a weakly connected
        component) ends either in one node with no backing or in one loop. Only when some chain
        has no such bottom are the strongly connected components worked out (they cost twice
        as much): a loop is one of more than one node, or an image backing onto itself."""
        import networkx

        g = self.g
        bottoms = {n for n, out in g.out_degree() if out == 0}
        chains = networkx.weakly_connected_components(g)
        if all(not chain.isdisjoint(bottoms) for chain in chains):
            return []
        members = {n for c in networkx.strongly_connected_components(g) if len(c) > 1 for n in c}
        members.update(n for n, _ in networkx.selfloop_edges(g))
        loops = []
        for start in g:
            if start in members:
                loop = self.chain(start)
                members.difference_update(loop)
                loops.append(loop)
        return loops

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
        not be read (None when it could). The store holds only damaged images, so this costs
        one dict lookup per stored finding (the scan's own ``stat`` says whether the file
        changed since), nothing per healthy image."""
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
                g.add_node(node, **{KIND: MISSING, INFO: None})
            used_tops.append((node, du))
            mark(node, du.use(Role.TOP))
            below = du.use(Role.BACKING)
            for base in self.chain(node)[1:]:
                mark(base, below)
        self.domain_notes = list(notes)
        found = diagnose.domain_disk_problems(g, used_tops, self.chain_break)
        if found:
            for p in found:
                self._problem_index.setdefault(p.path, []).append(p)
            self.problems.extend(found)
            self.problems.sort(key=lambda p: (p.path, p.kind))

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
        errors = [p for p in self._problem_index.get(node, ()) if p.level == Level.ERROR]
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
        for node in self._problem_index:
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
