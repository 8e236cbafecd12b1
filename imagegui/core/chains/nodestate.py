"""One state per node for colour, icon, the list's State column and the filter box.

Several facts can hold at once (an image in use may also lack a backing format), so a node has a
primary :class:`State` - the one its card is coloured by, worst first - and the flags behind it for
badges. Computed for every node with the layout, off the GUI thread.
"""

from __future__ import annotations

from dataclasses import dataclass

from imagegui.core.chains.diagnose import KINDS, Kind, Level
from imagegui.core.chains.graph import ChainGraph
from imagegui.core.chains.schema import EXTERNAL, IMAGE, MISSING, PROTOCOL, UNREADABLE
from imagegui.core.chains.schema import INFO as INFO_KEY
from imagegui.core.chains.schema import KIND as KIND_KEY
from imagegui.core.strenum import StrEnum


class State(StrEnum):
    OK = "ok"
    WARNING = "warning"
    ERROR = "error"
    #: No problem of its own, but something below it in its chain stops qemu opening it.
    UNUSABLE = "unusable"
    IN_USE = "in use"
    UNUSED_BASE = "unused base"
    MISSING = "missing"
    PROTOCOL = "protocol"
    UNREADABLE = "unreadable"
    EXTERNAL = "external"


#: Placeholder kinds of the graph and the state each shows as.
_PLACEHOLDER = {MISSING: State.MISSING, PROTOCOL: State.PROTOCOL, UNREADABLE: State.UNREADABLE}


@dataclass(frozen=True)
class NodeStatus:
    state: State
    errors: int = 0
    warnings: int = 0
    in_use: bool = False
    #: A running VM writes it (not just reads it as a backing file).
    writer: bool = False
    #: An OpenStack ``_base`` image no instance uses; ``nova_removes``: Nova would delete it now.
    unused_base: bool = False
    nova_removes: bool = False
    #: Not a scanned image: a missing / protocol / unreadable backing file.
    placeholder: bool = False
    #: Where its chain stops being openable (itself, an image below, or a missing file's path)
    #: and the kind of problem there; None while the whole chain opens.
    broken_at: str | None = None
    broken_kind: Kind | None = None

    @property
    def unusable(self) -> bool:
        """qemu cannot open this image's chain (its own problem or one further down)."""
        return self.broken_at is not None

    def chain_reason(self, node: str) -> str | None:
        """One line on why ``node`` cannot be opened, for a card, a tooltip or the status bar."""
        if self.broken_at is None or self.broken_kind is None:
            return None
        title = KINDS[self.broken_kind].title.lower()
        if self.broken_at == node:
            return title
        name = short_name(self.broken_at)
        if self.state is State.UNUSABLE:
            return f"chain broken below: {name} — {title}"
        return f"{title}: {name}"

    def label(self) -> str:
        """What the State column says: the primary state and the counts behind it."""
        parts = [str(self.state)]
        if self.in_use and self.state is not State.IN_USE:
            parts.append("in use")
        if self.state is State.UNUSABLE and self.broken_kind is not None:
            parts[0] = f"unusable ({KINDS[self.broken_kind].title.lower()} below)"
        if self.errors and self.state is not State.ERROR:
            parts.append(f"{self.errors} error{'s' * (self.errors > 1)}")
        if self.warnings and self.state is not State.WARNING:
            parts.append(f"{self.warnings} warning{'s' * (self.warnings > 1)}")
        elif self.warnings > 1 and self.state is State.WARNING:
            parts[0] = f"{self.warnings} warnings"
        if self.unused_base and self.state is not State.UNUSED_BASE:
            parts.append("unused base")
        return ", ".join(parts)


def node_status(graph: ChainGraph, node: str) -> NodeStatus:
    kind, info = graph.nodes[node]
    if kind in _PLACEHOLDER:
        return NodeStatus(_PLACEHOLDER[kind], placeholder=True)
    problems = graph.problems_for(node)
    errors = sum(1 for p in problems if p.level == Level.ERROR)
    warnings = len(problems) - errors
    in_use = bool(info and info.in_use)
    writer = bool(info and info.in_use_write)
    nova = graph.nova_base(node)
    unused = bool(nova and nova.unused)
    broken = graph.chain_break(node)
    if errors:
        state = State.ERROR
    elif broken is not None:
        state = State.UNUSABLE
    elif in_use:
        state = State.IN_USE
    elif warnings:
        state = State.WARNING
    elif unused:
        state = State.UNUSED_BASE
    elif kind == EXTERNAL:
        state = State.EXTERNAL
    else:
        state = State.OK
    return NodeStatus(
        state,
        errors,
        warnings,
        in_use,
        writer,
        unused,
        bool(nova and nova.nova_would_remove),
        broken_at=broken.at if broken else None,
        broken_kind=broken.kind if broken else None,
    )


#: The status of a plainly healthy scanned image, shared by all of them.
_OK = NodeStatus(State.OK)


def all_statuses(graph: ChainGraph) -> dict[str, NodeStatus]:
    """Every node's status. Equal statuses are one object (most images are plainly OK): at
    100,000 images that is 100,000 fewer objects to keep and for the collector to walk. A
    scanned image with no problem, break, lock or Nova base is OK without asking
    :func:`node_status` (a third of the time of asking it)."""
    shared: dict[NodeStatus, NodeStatus] = {_OK: _OK}
    out = {}
    problems, breaks, bases = graph._problem_index, graph._breaks, graph._nova_index
    for n, attrs in graph.g._node.items():  # type: ignore[attr-defined]
        info = attrs[INFO_KEY]
        if (
            info is not None
            and not info.in_use
            and not info.in_use_write
            and attrs[KIND_KEY] == IMAGE
            and n not in problems
            and n not in breaks
            and n not in bases
        ):
            out[n] = _OK
            continue
        status = node_status(graph, n)
        out[n] = shared.setdefault(status, status)
    return out


def updated_statuses(graph: ChainGraph, before: dict[str, NodeStatus]) -> dict[str, NodeStatus]:
    """Every node's status for a graph made by ``chains.incremental.update``: the statuses of the
    graph it was updated from (``before``) where nothing a status reads changed, the nodes it
    changed (``updated_nodes``) asked again; all of them for a graph built whole."""
    changed = graph.updated_nodes
    if changed is None:
        return all_statuses(graph)
    shared: dict[NodeStatus, NodeStatus] = {_OK: _OK}
    fresh = {}
    nodes = graph.g._node  # type: ignore[attr-defined]
    for n in changed:
        if n in nodes:
            status = node_status(graph, n)
            fresh[n] = shared.setdefault(status, status)
    if len(before) == len(nodes) and list(before) == list(nodes):
        # The same nodes in the same order (files written in place): a copy, patched.
        if not fresh:
            return before
        out = dict(before)
        out.update(fresh)
        return out
    get = fresh.get
    return {n: get(n) or before[n] for n in nodes}


def is_image(graph: ChainGraph, node: str) -> bool:
    """A node backed by a real file that operations can act on (scanned or external)."""
    return graph.nodes[node][0] in (IMAGE, EXTERNAL)


#: File names that say nothing on their own (Nova instance disks): shown with their directory.
_GENERIC = ("disk", "disk.local", "disk.swap", "disk.config", "disk.eph0", "disk.rescue")


def short_name(node: str) -> str:
    """The name a card and a list row show: the file name, with its directory when the name is
    one every Nova instance shares (``<uuid>/disk``). Protocol backings show as stored."""
    if "/" not in node or "://" in node or node.startswith("json:"):
        return node
    parent, name = node.rsplit("/", 1)
    if name in _GENERIC:
        return f"{parent.rsplit('/', 1)[-1]}/{name}"
    return name
