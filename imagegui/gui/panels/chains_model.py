"""Qt item models over a :class:`Snapshot`: thin adapters, the core records are never copied.

``ChainsModel`` is the chains list: the layout's forest (base -> overlays) with sorting and the
filter done here rather than in a ``QSortFilterProxyModel``: a proxy sorts by calling ``data()``
through C++ for every comparison (seconds at 10,000 rows from Python), while sorting each node's
children with a Python key function takes milliseconds. A node's internal id is its position in
``graph.nodes`` order, stable for the life of a snapshot.

The filter's work - every image's searchable text, the matches, the rows they show - is
``find_rows``, a pure function the chains panel runs on a worker (at 100,000 images it is seconds
of Python); the model only swaps the finished tables in (``apply_filter``). A filter that narrows
the last one (a key typed at the end of a word) searches only the last matches, and the searchable
texts are made once per snapshot.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from PySide6.QtCore import QAbstractItemModel, QModelIndex, Qt
from PySide6.QtGui import QFont

from imagegui.core.chains.diagnose import Level
from imagegui.core.chains.graph import ChainGraph
from imagegui.core.chains.layout import TOP, TreeTables, tree_tables
from imagegui.core.chains.nodestate import NodeStatus, State, short_name
from imagegui.core.gcpause import paused_gc
from imagegui.core.jobs import CancelledError, CancelToken
from imagegui.core.units import display_path, human_size
from imagegui.gui import resources
from imagegui.gui.snapshot import Snapshot, use_line, uses_label

PATH_ROLE = Qt.ItemDataRole.UserRole + 1
COLUMNS = ("Name", "Folder", "Format", "Virtual size", "Disk size", "State", "Used by")
NAME, FOLDER, FORMAT, VSIZE, DSIZE, STATE, USED_BY = range(7)

#: Worst first: sorting by state puts trouble on top.
STATE_ORDER = {
    State.ERROR: 0,
    State.UNUSABLE: 1,
    State.MISSING: 2,
    State.UNREADABLE: 3,
    State.IN_USE: 4,
    State.WARNING: 5,
    State.PROTOCOL: 6,
    State.UNUSED_BASE: 7,
    State.EXTERNAL: 8,
    State.OK: 9,
}
STATE_ICON = {
    State.OK: "state-ok",
    State.WARNING: "state-warning",
    State.ERROR: "state-error",
    State.UNUSABLE: "state-unusable",
    State.IN_USE: "state-in-use",
    State.UNUSED_BASE: "state-unused",
    State.MISSING: "state-missing",
    State.UNREADABLE: "state-missing",
    State.PROTOCOL: "state-protocol",
    State.EXTERNAL: "state-external",
}
#: The icon of a finding of each level: problems in Problems and Details, a plan's findings.
LEVEL_ICON = {Level.ERROR: "state-error", Level.WARNING: "state-warning", Level.INFO: "state-ok"}
_ROOT = TOP
#: The invalid index as a default argument (one instance, not one per call).
NO_PARENT = QModelIndex()
#: Every row's flags: selectable, enabled (``QAbstractItemModel``'s own) and draggable.
ROW_FLAGS = Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsDragEnabled
NO_FLAGS = Qt.ItemFlag.NoItemFlags


class ChainsModel(QAbstractItemModel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.snapshot: Snapshot | None = None
        self._nodes: list[str] = []
        self._ids: dict[str, int] = {}
        #: Visible children per node id (``_ROOT`` for the top level) and each row's parent/row.
        self._kids: dict[int, list[int]] = {}
        self._parent: dict[int, int] = {}
        self._row: dict[int, int] = {}
        self._filter = ""
        #: Nodes the filter matched (their chains are shown too), None without a filter.
        self.matches: set[str] | None = None
        #: The matches and their ancestors: the rows shown (None without a filter).
        self._visible: set[str] | None = None
        #: The last filter worked out (its searchable texts serve the next one).
        self.result: FilterResult | None = None
        self._sort: tuple[int, Qt.SortOrder] | None = None
        self._italic = QFont()
        self._italic.setItalic(True)
        #: Each node's folder relative to the root, made on first use per snapshot.
        self._folders: dict[str, str] = {}

    # -- feeding

    def set_snapshot(self, snapshot: Snapshot | None) -> None:
        self.beginResetModel()
        self.snapshot = snapshot
        self._folders = {}
        if snapshot is None:
            self._nodes, self._ids = [], {}
            self._rebuild()
        else:
            tables = snapshot.tables  # made on the scan's worker
            self._nodes, self._ids = tables.nodes, tables.ids
            if self._filter:
                # Until the filter is worked out for this snapshot (the panel starts that on a
                # worker): the rows and matches that are still there.
                if self.matches is not None:
                    self.matches = self.matches.intersection(self._ids)
                if self._visible is not None:
                    self._visible = self._visible.intersection(self._ids)
                self._rebuild()
            else:
                self._kids, self._parent, self._row = tables.kids, tables.parent, tables.row
                if self._sort is not None:
                    self._sort_all(*self._sort)
        self.endResetModel()

    def set_filter(self, text: str) -> None:
        """Filters now, on this thread (the panel does it on a worker: ``find_rows``)."""
        text = text.strip().lower()
        if text == self._filter:
            return
        if self.snapshot is None:
            self._filter = text
            return
        self.apply_filter(find_rows(self.snapshot, text, self._sort, self.result))

    def same_rows(self, result: FilterResult) -> bool:
        """Whether ``result`` shows the very rows shown now, in the same order (a filter every
        image matches, or clearing one that hid nothing): only the matches differ, which no
        cell shows, so the rows need not be rebuilt."""
        if result.snapshot is not self.snapshot or result.sort != self._sort:
            return False
        everything = len(self._ids)
        now, new = self._visible, result.visible
        if now is None or len(now) == everything:
            return new is None or len(new) == everything
        return new is not None and new == now

    def take_matches(self, result: FilterResult) -> None:
        """Takes the matches of a ``result`` that shows the same rows (``same_rows``)."""
        self.result = result
        self._filter = result.text
        self.matches, self._visible = result.matches, result.visible

    def apply_filter(self, result: FilterResult) -> bool:
        """Shows a filter worked out by ``find_rows``; False (nothing done) when it was worked
        out for another snapshot."""
        if result.snapshot is not self.snapshot:
            return False
        self.beginResetModel()
        self.result = result
        self._filter = result.text
        self.matches, self._visible = result.matches, result.visible
        t = result.tables
        self._kids, self._parent, self._row = t.kids, t.parent, t.row
        if self._sort != result.sort:  # the sort changed while it was worked out
            self._rebuild()
        self.endResetModel()
        return True

    @property
    def sort_order(self) -> tuple[int, Qt.SortOrder] | None:
        return self._sort

    @property
    def filter_text(self) -> str:
        return self._filter

    def visible_count(self) -> int:
        return len(self._parent)

    def _rebuild(self) -> None:
        snap = self.snapshot
        if snap is None:
            self._kids, self._parent, self._row = {_ROOT: []}, {}, {}
            return
        if not self._filter:
            self.matches = self._visible = None
        t = tree_tables(snap.layout.forest, self._nodes, self._ids, self._visible)
        self._kids, self._parent, self._row = t.kids, t.parent, t.row
        if self._sort is not None:
            self._sort_all(*self._sort)

    # -- QAbstractItemModel

    def index(self, row: int, column: int, parent: QModelIndex = NO_PARENT) -> QModelIndex:
        pid = parent.internalId() if parent.isValid() else _ROOT
        kids = self._kids.get(pid)
        if kids is None or not 0 <= row < len(kids) or not 0 <= column < len(COLUMNS):
            return QModelIndex()
        return self.createIndex(row, column, kids[row])

    def parent(self, index: QModelIndex = NO_PARENT) -> QModelIndex:  # type: ignore[override]
        if not index.isValid():
            return QModelIndex()
        pid = self._parent.get(index.internalId(), _ROOT)
        if pid == _ROOT:
            return QModelIndex()
        return self.createIndex(self._row[pid], 0, pid)

    def rowCount(self, parent: QModelIndex = NO_PARENT) -> int:
        # rowCount, hasChildren, index and flags are called by the tree view for every
        # top-level row after each filter: kept to a dict lookup each.
        if parent.isValid():
            if parent.column() != 0:
                return 0
            kids = self._kids.get(parent.internalId())
            return len(kids) if kids else 0
        return len(self._kids.get(_ROOT, ()))

    def hasChildren(self, parent: QModelIndex = NO_PARENT) -> bool:
        if parent.isValid():
            return parent.column() == 0 and bool(self._kids.get(parent.internalId()))
        return bool(self._kids.get(_ROOT))

    def columnCount(self, parent: QModelIndex = NO_PARENT) -> int:
        return len(COLUMNS)

    def flags(self, index: QModelIndex) -> Qt.ItemFlag:
        # Rows are dragged onto a folder of the Folders panel (``ChainsTree.startDrag``). One
        # constant: the tree view asks twice per top-level row after each filter (20,000 calls
        # at 100,000 images), and Python's enum arithmetic cost a second of them.
        return ROW_FLAGS if index.isValid() else NO_FLAGS

    def headerData(self, section: int, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        horizontal = orientation == Qt.Orientation.Horizontal
        if horizontal and role == Qt.ItemDataRole.TextAlignmentRole and section in (VSIZE, DSIZE):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or self.snapshot is None:
            return None
        node = self._nodes[index.internalId()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(node, col)
        if role == PATH_ROLE:
            return node
        if role == Qt.ItemDataRole.DecorationRole and col == NAME:
            return resources.icon(STATE_ICON[self.snapshot.status[node].state])
        if role == Qt.ItemDataRole.ToolTipRole:
            return _tooltip(self.snapshot, node)
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (VSIZE, DSIZE):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.FontRole and self.snapshot.status[node].placeholder:
            return self._italic
        return None

    def _display(self, node: str, col: int) -> str:
        assert self.snapshot is not None
        kind, info = self.snapshot.graph.nodes[node]
        if col == NAME:
            return display_path(short_name(node))
        if col == FOLDER:
            return display_path(self.folder(node))
        if col == STATE:
            return self.snapshot.status[node].label()
        if col == USED_BY:
            return uses_label(self.snapshot.domains.get(node))
        if info is None:
            return kind if col == FORMAT else ""
        if col == FORMAT:
            return info.format
        if col == VSIZE:
            return human_size(info.virtual_size)
        return human_size(info.actual_size)

    # -- lookup

    def index_of(self, node: str) -> QModelIndex:
        nid = self._ids.get(node)
        if nid is None or nid not in self._parent:
            return QModelIndex()
        return self.createIndex(self._row[nid], 0, nid)

    def node_at(self, index: QModelIndex) -> str | None:
        return self._nodes[index.internalId()] if index.isValid() else None

    def folder(self, node: str) -> str:
        """``node``'s directory relative to the scanned root ("." for the root itself); two
        images of the same name in different folders differ here at a glance."""
        found = self._folders.get(node)
        if found is None:
            root = self.snapshot.root if self.snapshot else ""
            found = self._folders[node] = folder_of(node, root)
        return found

    # -- sorting

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sorts siblings (a chain stays a chain); column -1 restores the layout's order."""
        self._sort = (column, order) if column >= 0 else None
        if self.snapshot is None:
            return
        self.layoutAboutToBeChanged.emit()
        persistent = self.persistentIndexList()
        keep = [(p.internalId(), p.column()) for p in persistent]
        self._rebuild()
        moved = [
            self.createIndex(self._row[nid], col, nid) if nid in self._row else QModelIndex()
            for nid, col in keep
        ]
        self.changePersistentIndexList(persistent, moved)
        self.layoutChanged.emit()

    def _sort_all(self, column: int, order: Qt.SortOrder) -> None:
        tables = TreeTables(self._nodes, self._ids, self._kids, self._parent, self._row)
        sort_tables(tables, self._sort_key(column), order == Qt.SortOrder.DescendingOrder)

    def _sort_key(self, column: int):
        snap = self.snapshot
        assert snap is not None
        return sort_key(snap, self._nodes, column, self.folder)


def sort_key(snapshot: Snapshot, nodes: list[str], column: int, folder: Callable[[str], str]):
    """The key sorting siblings (node ids) by ``column``; ``folder`` gives a node's folder (the
    model's cached one, or a worker's own)."""
    graph, status = snapshot.graph.nodes, snapshot.status

    def size(nid: int, attr: str) -> int:
        info = graph[nodes[nid]][1]
        return getattr(info, attr) if info else -1

    if column == FORMAT:
        return lambda nid: graph[nodes[nid]][1].format if graph[nodes[nid]][1] else "~"
    if column == VSIZE:
        return lambda nid: size(nid, "virtual_size")
    if column == DSIZE:
        return lambda nid: size(nid, "actual_size")
    if column == STATE:
        return lambda nid: (STATE_ORDER[status[nodes[nid]].state], short_name(nodes[nid]))
    if column == FOLDER:
        return lambda nid: (folder(nodes[nid]).lower(), short_name(nodes[nid]).lower())
    if column == USED_BY:
        domains = snapshot.domains
        # Used ones first (an empty label sorts last), then by the VM's name.
        return lambda nid: (
            not domains.get(nodes[nid]),
            uses_label(domains.get(nodes[nid])).lower(),
            short_name(nodes[nid]).lower(),
        )
    return lambda nid: short_name(nodes[nid]).lower()


def sort_tables(tables: TreeTables, key, reverse: bool) -> None:
    """Sorts every node's visible children in place (a chain stays a chain)."""
    row = tables.row
    for kids in tables.kids.values():
        kids.sort(key=key, reverse=reverse)
        for r, nid in enumerate(kids):
            row[nid] = r


def folder_of(node: str, root: str) -> str:
    """The directory of ``node`` relative to ``root``: "." for the root, "../x" outside it, ""
    for a protocol source (nbd://…), which has no folder."""
    if "://" in node or not node.startswith("/"):
        return ""
    parent = os.path.dirname(node)
    if parent == root:
        return "."
    prefix = root.rstrip("/") + "/"
    if parent.startswith(prefix):
        return parent[len(prefix) :]
    return os.path.relpath(parent, root) if root else parent


@dataclass(frozen=True)
class FilterResult:
    """What a filter shows for one snapshot (``find_rows``)."""

    snapshot: Snapshot
    #: The filter, stripped and lower-case ("" for none).
    text: str
    #: The nodes it matched, and those with their ancestors (the rows shown); None for none.
    matches: set[str] | None
    visible: set[str] | None
    #: The rows, sorted by ``sort``.
    tables: TreeTables
    sort: tuple[int, Qt.SortOrder] | None
    #: Each node's searchable text (by node id), made once per snapshot; None until needed.
    hays: list[str] | None


#: Nodes searched between two looks at the cancel token.
CHECK_EVERY = 4096


def narrows(old: str, new: str) -> bool:
    """Whether every image ``new`` matches is matched by ``old`` too (each old word is part of
    a new word), so ``new`` need only search ``old``'s matches."""
    words = new.split()
    return bool(old) and all(any(o in w for w in words) for o in old.split())


def haystacks(snapshot: Snapshot, nodes: list[str], cancel: CancelToken | None = None) -> list[str]:
    """Every node's searchable text, by node id (``_haystack``, and the VMs that use it)."""
    graph, status, domains = snapshot.graph, snapshot.status, snapshot.domains
    out = []
    for n, node in enumerate(nodes):
        if cancel is not None and not n % CHECK_EVERY and cancel.cancelled:
            raise CancelledError("")
        _, info = graph.nodes[node]
        hay = _haystack(graph, node, info.format if info else "", status[node])
        if node in domains:  # the VMs that use it, by name and state
            hay += " " + " ".join(use_line(u) for u in domains[node]).lower()
        out.append(hay)
    return out


def find_rows(
    snapshot: Snapshot,
    text: str,
    sort: tuple[int, Qt.SortOrder] | None = None,
    previous: FilterResult | None = None,
    cancel: CancelToken | None = None,
) -> FilterResult:
    """The images matching ``text`` (name, path, format, state, problem kind, VM: every word)
    and the list's rows for them, with their chains; no Qt object is touched (a worker's job).
    ``previous`` (the last result) lends its searchable texts, and its matches when ``text``
    narrows it.

    The cyclic collector is paused meanwhile (it makes no cycles): at 100,000 images the rows'
    100,000 lists set off full collections that walked every young object alive, holding the
    GIL 100-250 ms while the window waited (seen with ``py-spy --gil``)."""
    with paused_gc():
        return _find_rows(snapshot, text, sort, previous, cancel)


def _find_rows(
    snapshot: Snapshot,
    text: str,
    sort: tuple[int, Qt.SortOrder] | None,
    previous: FilterResult | None,
    cancel: CancelToken | None,
) -> FilterResult:
    text = text.strip().lower()
    tables = snapshot.tables
    nodes, ids = tables.nodes, tables.ids
    same = previous is not None and previous.snapshot is snapshot
    hays = previous.hays if same and previous is not None else None
    matches: set[str] | None = None
    visible: set[str] | None = None
    words = text.split()
    if words:
        if hays is None:
            hays = haystacks(snapshot, nodes, cancel)
        candidates: Iterable[int] = range(len(nodes))
        last = previous.matches if same and previous is not None else None
        if last is not None and previous is not None and narrows(previous.text, text):
            candidates = sorted(ids[n] for n in last)
        matches = set()
        for k, i in enumerate(candidates):
            if cancel is not None and not k % CHECK_EVERY and cancel.cancelled:
                raise CancelledError("")
            hay = hays[i]
            if all(w in hay for w in words):
                matches.add(nodes[i])
        # A match is shown in its chain: its ancestors too (a walk up stops at one already in).
        parent = snapshot.layout.forest.parent
        visible = set(matches)
        for node in matches:
            up = parent.get(node)
            while up is not None and up not in visible:
                visible.add(up)
                up = parent.get(up)
    rows = tree_tables(snapshot.layout.forest, nodes, ids, visible)
    if sort is not None:
        folders: dict[str, str] = {}

        def folder(node: str) -> str:
            found = folders.get(node)
            if found is None:
                found = folders[node] = folder_of(node, snapshot.root)
            return found

        key = sort_key(snapshot, nodes, sort[0], folder)
        sort_tables(rows, key, sort[1] == Qt.SortOrder.DescendingOrder)
    return FilterResult(snapshot, text, matches, visible, rows, sort, hays)


def _haystack(graph: ChainGraph, node: str, fmt: str, status: NodeStatus) -> str:
    """Everything the filter matches: the full path (so the folder too), format, state, and its
    problems both by the title the window shows them under and by their code."""
    kinds = " ".join(f"{p.title} {p.kind}" for p in graph.problems_for(node))
    return f"{node} {fmt} {status.state} {status.label()} {kinds}".lower()


def _tooltip(snapshot: Snapshot, node: str) -> str:
    """Full path and problems: shared by the list and the graph."""
    from html import escape

    graph = snapshot.graph
    kind, info = graph.nodes[node]
    lines = [f"<b>{escape(display_path(node))}</b>"]
    if info is not None:
        lines.append(
            f"{info.format} · {human_size(info.virtual_size)} virtual · "
            f"{human_size(info.actual_size)} on disk"
        )
        if info.backing_file:
            fmt = info.backing_format or "format not recorded"
            lines.append(f"backing: {escape(display_path(info.backing_file))} ({fmt})")
    else:
        lines.append(f"<i>{kind}: not a readable image here</i>")
    st = snapshot.status[node]
    reason = st.chain_reason(node)
    if reason is not None:
        lines.append(f"<b>qemu cannot open it</b>: {escape(display_path(reason))}")
    if st.in_use:
        held = snapshot.holders.get(node)
        who = ", ".join(h.describe() for h in held) if held else "a process of another user"
        how = "written" if st.writer else "read"
        lines.append(escape(display_path(f"in use: {how} by {who}")))
    for use in snapshot.domains.get(node, ()):
        lines.append(escape(display_path(f"used by {use_line(use)}")))
    nova = graph.nova_base(node)
    if nova is not None:
        lines.append(
            f"Nova cache base used by {nova.used_by} instance(s)"
            + ("; Nova would remove it now" if nova.nova_would_remove else "")
        )
    for p in graph.problems_for(node):
        lines.append(f"• <b>{p.level}</b>: {escape(display_path(p.message))}")
    return "<p style='white-space:pre-wrap'>" + "<br>".join(lines) + "</p>"


def tooltip(snapshot: Snapshot, node: str) -> str:
    return _tooltip(snapshot, node)
