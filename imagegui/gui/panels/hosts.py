"""libvirt hosts: one section per connection, its VMs (domains) with their state and disks.

A panel of its own beside "Virtual Machines", not rows added to it: that panel lists QEMU
processes this window started or found, each with Stop and Force off, polled once a second; this
one is a read-only picture of what libvirt defines (running and shut off), refreshed with each
scan, which no button here changes. Mixing them would put a shut-off domain, which has no process
to stop, among rows whose every other line has one.

Each section is titled with the host's name and its connection; a connection that failed says
why in its section (and once in the status bar), never in a dialog. A disk whose file is a
scanned image says so and selects that image when clicked (or Enter); a remote host's disks are
that host's paths, never matched with files here.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtGui import QAction, QFont, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from imagegui.core.chains.schema import EXTERNAL, IMAGE, MISSING
from imagegui.core.units import counted, display_path
from imagegui.core.virt.inventory import DISK_DEVICES, disk_path
from imagegui.core.virt.model import Domain, DomainDisk, Role
from imagegui.gui import resources
from imagegui.gui.hosts import HostSection, HostsReader
from imagegui.gui.panels.chains import ItemTree
from imagegui.gui.snapshot import Snapshot

COLUMNS = ("Host, VM or disk", "State", "Image")
#: A host with more domains than this shows them collapsed.
EXPAND_LIMIT = 40
#: The scanned image a disk row selects (a node of the graph), on the row's first column.
NODE_ROLE = Qt.ItemDataRole.UserRole + 1
#: What a row is ("host", "domain", "disk", "note") and its key, to keep rows open on redraw.
KEY_ROLE = Qt.ItemDataRole.UserRole + 2

EMPTY_TEXT = (
    "No libvirt host answered. File ▸ Connect to libvirt… adds a connection "
    "(this machine's, or another host's over SSH)."
)


class HostsPanel(QWidget):
    """The sections of a :class:`HostsReader`, redrawn whenever it says they changed."""

    #: A disk row asked for its image (a node of the graph).
    nodeRequested = Signal(str)
    #: "Show this host's images" for the remote host at this connection.
    remoteRequested = Signal(str)

    def __init__(
        self,
        reader: HostsReader,
        connect: QAction,
        refresh: QAction,
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        self.reader = reader
        self.snapshot: Snapshot | None = None
        self._tops: dict[tuple[str, str, str], str] = {}
        self._missing: dict[str, str] = {}
        self.model = QStandardItemModel(self)
        self.model.setHorizontalHeaderLabels(list(COLUMNS))
        self.tree = ItemTree()
        self.tree.setModel(self.model)
        self.tree.setAccessibleName("libvirt hosts")
        self.tree.setAccessibleDescription(
            "One section per libvirt connection: its virtual machines, running or shut off, "
            "and their disks"
        )
        self.tree.setToolTip(
            "Click a disk (or press Enter on it) to select its image; Enter or a double click "
            "on another host's name shows its images"
        )
        self.tree.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.tree.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.tree.setAllColumnsShowFocus(True)
        self.tree.setUniformRowHeights(True)
        self.tree.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        header = self.tree.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(0, 300)
        header.resizeSection(1, 230)
        header.setStretchLastSection(True)
        self.empty = QLabel(EMPTY_TEXT)
        self.empty.setObjectName("hint")
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.hide()
        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        self.connect_button = self._button(connect, "Connect to libvirt")
        self.refresh_button = self._button(refresh, "Refresh VMs")
        self.show_images = QToolButton()
        self.show_images.setText("Show This Host's Images")
        self.show_images.setIcon(resources.icon("document-open"))
        self.show_images.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.show_images.setAccessibleName("Show the selected host's images")
        self.show_images.setEnabled(False)
        self.show_images.clicked.connect(self._on_show_images)
        bar.addWidget(self.connect_button)
        bar.addWidget(self.refresh_button)
        bar.addWidget(self.show_images)
        self.status = QLabel()
        self.status.setObjectName("hint")
        bar.addWidget(self.status, 1)
        box = QVBoxLayout(self)
        box.setContentsMargins(4, 4, 4, 4)
        box.setSpacing(4)
        box.addLayout(bar)
        box.addWidget(self.empty)
        box.addWidget(self.tree, 1)
        #: Rows the user opened (True) or closed (False), by key.
        self._user_open: dict[str, bool] = {}
        self._expanding = False
        self.tree.expanded.connect(lambda i: self._on_expanded(i, True))
        self.tree.collapsed.connect(lambda i: self._on_expanded(i, False))
        self.tree.clicked.connect(self._on_clicked)
        self.tree.activated.connect(self._on_activated)
        self.tree.selectionModel().currentRowChanged.connect(lambda *_: self._update_show())
        reader.changed.connect(self.redraw)
        self.redraw()

    @staticmethod
    def _button(action: QAction, name: str) -> QToolButton:
        button = QToolButton()
        button.setDefaultAction(action)
        button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        button.setAccessibleName(name)
        return button

    def set_snapshot(self, snapshot: Snapshot | None) -> None:
        """The scan the disks are matched with (which of them are scanned images)."""
        self.snapshot = snapshot
        self.redraw()

    # -- drawing

    def redraw(self) -> None:
        sections = self.reader.sections()
        current = self.tree.currentIndex().siblingAtColumn(0).data(KEY_ROLE)
        self.model.removeRows(0, self.model.rowCount())
        self._tops = _top_nodes(self.snapshot)
        #: VM disks whose file does not exist outside the scan (no node stands for them).
        notes = getattr(self.snapshot.graph, "domain_notes", ()) if self.snapshot else ()
        self._missing = dict(notes)
        for section in sections:
            self.model.appendRow(self._section_row(section))
        quiet = not sections and self.reader.local_done and not self.reader.reading
        self.empty.setVisible(quiet)
        self.tree.setVisible(not quiet)
        self.status.setText("Reading…" if self.reader.reading else "")
        self._expand()
        if current is not None:
            found = self.model.match(
                self.model.index(0, 0),
                KEY_ROLE,
                current,
                1,
                Qt.MatchFlag.MatchExactly | Qt.MatchFlag.MatchRecursive,
            )
            if found:
                self.tree.setCurrentIndex(found[0])
        self._update_show()

    def _expand(self) -> None:
        """Every host open and, when it has few, its VMs (so their disks show); a row the user
        closed or opened stays so across redraws (each scan redraws)."""
        self._expanding = True
        try:
            for row in range(self.model.rowCount()):
                host = self.model.index(row, 0)
                self._apply(host, True)
                few = self.model.rowCount(host) <= EXPAND_LIMIT
                for sub in range(self.model.rowCount(host)):
                    self._apply(self.model.index(sub, 0, host), few)
        finally:
            self._expanding = False

    def _apply(self, index: QModelIndex, default: bool) -> None:
        key = index.data(KEY_ROLE)
        opened = self._user_open.get(key, default)
        if opened:
            self.tree.expand(index)
        else:
            self.tree.collapse(index)

    def _on_expanded(self, index: QModelIndex, opened: bool) -> None:
        if not self._expanding:
            self._user_open[index.data(KEY_ROLE)] = opened

    def _section_row(self, section: HostSection) -> list[QStandardItem]:
        inv = section.inventory
        title = _item(section.title, f"host:{section.uri}")
        font = QFont(title.font())
        font.setBold(True)
        title.setFont(font)
        title.setToolTip(f"{section.title}\nlibvirt connection {section.uri}")
        if inv is not None:
            title.setIcon(resources.icon("vm"))
            doms = counted(len(inv.domains), "VM")
            summary = f"{doms} · {counted(len(inv.volumes), 'volume')}"
            if section.reading:
                summary += " · reading…"
            state = _item(summary)
            where = "another host: its paths are not files here" if section.remote else ""
            row = [title, state, _item(where)]
            for dom in sorted(inv.domains, key=lambda d: d.name.lower()):
                title.appendRow(self._domain_row(section, dom))
            if not inv.domains:
                title.appendRow(
                    [_item("No VMs defined", f"none:{section.uri}"), _item(""), _item("")]
                )
            return row
        if section.note is not None:
            title.setIcon(resources.icon("state-error"))
            reason = _item(f"Not reachable: {section.reason}", f"note:{section.uri}")
            reason.setToolTip(section.note)
            title.appendRow([reason, _item(""), _item("")])
            return [title, _item("not reachable"), _item("")]
        title.setIcon(resources.icon("vm"))
        return [title, _item("reading…"), _item("")]

    def _domain_row(self, section: HostSection, dom: Domain) -> list[QStandardItem]:
        inv = section.inventory
        assert inv is not None
        name = _item(dom.name, f"dom:{section.uri}:{dom.uuid or dom.name}")
        name.setIcon(resources.icon("vm"))
        kind = "defined" if dom.persistent else "transient (gone when it stops)"
        name.setToolTip(f"{dom.describe()} on {section.title}\n{kind}")
        disks = [d for d in dom.disks if d.device in DISK_DEVICES]
        for disk in disks:
            name.appendRow(self._disk_row(section, dom, disk, disk_path(disk, inv.volumes)))
        return [name, _item(dom.state), _item(counted(len(disks), "disk"))]

    def _disk_row(
        self, section: HostSection, dom: Domain, disk: DomainDisk, path: str | None
    ) -> list[QStandardItem]:
        label = disk.target or "?"
        if disk.device != "disk":
            label += f" ({disk.device})"
        first = _item(label, f"disk:{section.uri}:{dom.name}:{disk.target}")
        first.setIcon(resources.icon("disk"))
        node = self._scanned_node(section, dom, disk, path)
        where = self._where(section, path, node)
        shown = display_path(path) if path else _no_path(disk)
        image = _item(shown)
        tip = f"{dom.name}'s {label}: {shown}\n{self._missing.get(path or '', where)}"
        if node is not None:
            first.setData(node, NODE_ROLE)
            tip += "\nClick to select it in the graph"
        for item in (first, image):
            item.setToolTip(tip)
        return [first, _item(where), image]

    def _scanned_node(
        self, section: HostSection, dom: Domain, disk: DomainDisk, path: str | None
    ) -> str | None:
        """The node of the graph shown that this disk names, worked out with the scan (no file
        is touched): a local disk's from the VM uses, a remote one's when that host is shown."""
        snap = self.snapshot
        if snap is None or section.remote != (snap.remote_uri is not None):
            return None
        if section.remote:
            shown = snap.remote_uri == section.uri and path in snap.graph.nodes
            return path if shown else None
        return self._tops.get((section.uri, dom.name, disk.target))

    def _where(self, section: HostSection, path: str | None, node: str | None) -> str:
        snap = self.snapshot
        if section.remote:
            return "on that host, shown" if node is not None else "on that host"
        if path is None:
            return "not a file"
        if snap is None:
            return "no directory open"
        if snap.remote_uri is not None:
            return "this machine's (not shown)"
        if node is None and path in self._missing:  # found missing with the scan
            return "missing"
        if node is None:  # by the path's text alone: no file is looked at here
            inside = path.startswith(snap.root.rstrip("/") + "/")
            return (
                "not found in the scanned directory" if inside else "outside the scanned directory"
            )
        kind, _info = snap.graph.nodes.get(node, (None, None))
        if kind == MISSING:
            return "missing"
        if kind in (IMAGE, EXTERNAL):
            return "in the scanned directory" if kind == IMAGE else "a base of scanned images"
        return str(kind or "")

    # -- clicks

    def _on_clicked(self, index: QModelIndex) -> None:
        node = index.siblingAtColumn(0).data(NODE_ROLE)
        if node:
            self.nodeRequested.emit(node)

    def _on_activated(self, index: QModelIndex) -> None:
        """Enter or a double click: a disk selects its image, a remote host's title shows its
        images."""
        node = index.siblingAtColumn(0).data(NODE_ROLE)
        if node:
            self.nodeRequested.emit(node)
        elif index.isValid() and not index.parent().isValid():
            uri = self._remote_at(index)
            if uri is not None:
                self.remoteRequested.emit(uri)

    # -- another host's images

    def _remote_at(self, index: QModelIndex) -> str | None:
        """The remote host (read, with its inventory) of the row at ``index``, if any."""
        while index.isValid() and index.parent().isValid():
            index = index.parent()
        key = index.siblingAtColumn(0).data(KEY_ROLE) if index.isValid() else None
        if not key or not key.startswith("host:"):
            return None
        uri = key[len("host:") :]
        section = next((s for s in self.reader.sections() if s.uri == uri), None)
        if section is None or not section.remote or section.inventory is None:
            return None
        return uri

    def _update_show(self) -> None:
        uri = self._remote_at(self.tree.currentIndex())
        self.show_images.setEnabled(uri is not None)
        self.show_images.setToolTip(
            f"Show the images in the storage pools of {uri} in the graph, read through libvirt "
            "(shown only: operations stay with this machine's images)"
            if uri is not None
            else "Select another host (a connection over SSH) that answered, to show its images"
        )

    def _on_show_images(self) -> None:
        uri = self._remote_at(self.tree.currentIndex())
        if uri is not None:
            self.remoteRequested.emit(uri)


def _top_nodes(snap: Snapshot | None) -> dict[tuple[str, str, str], str]:
    """(connection, domain, disk) -> the scanned node that disk names."""
    if snap is None:
        return {}
    return {
        (use.uri, use.name, use.disk): node
        for node, uses in snap.domains.items()
        for use in uses
        if use.role == Role.TOP
    }


def _item(text: str, key: str | None = None) -> QStandardItem:
    item = QStandardItem(text)
    item.setEditable(False)
    if key is not None:
        item.setData(key, KEY_ROLE)
    return item


def _no_path(disk: DomainDisk) -> str:
    if disk.type == "network":
        return "network disk"
    if disk.pool is not None:
        return f"volume {disk.volume} of pool {disk.pool}"
    return "empty drive"
