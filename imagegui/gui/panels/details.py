"""Everything about the current image: problems with their explanation and fix, the whole chain
top to base, who uses it, and every header field.

Rendered as HTML in a ``QTextBrowser`` (selectable, copyable, scrolls); links either select another
image (``node:N``) or ask the window to run an action (``action:NAME``) - the fix on offer.
"""

from __future__ import annotations

import datetime as dt
from html import escape

from PySide6.QtCore import QUrl, Signal
from PySide6.QtWidgets import QTextBrowser, QWidget

from imagegui.core.chains.diagnose import Problem
from imagegui.core.chains.graph import MISSING, PROTOCOL, UNREADABLE
from imagegui.core.chains.nodestate import short_name
from imagegui.core.read.model import ImageInfo
from imagegui.core.units import display_path, human_size
from imagegui.core.virt.model import Role
from imagegui.gui import resources, theme
from imagegui.gui.panels.chains_model import LEVEL_ICON, STATE_ICON
from imagegui.gui.snapshot import Snapshot

_MAX_LISTED = 25
#: A chain longer than head + tail rows is shown with its middle elided: a 3,000-row table took
#: Qt 5 s to lay out, in the GUI thread.
_CHAIN_HEAD, _CHAIN_TAIL = 40, 10


class DetailsPanel(QTextBrowser):
    nodeRequested = Signal(str)
    actionRequested = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setAccessibleName("Details of the selected image")
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.anchorClicked.connect(self._on_anchor_clicked)
        self._links: list[str] = []
        self.snapshot: Snapshot | None = None
        self.node: str | None = None
        self.show_node(None, None)
        theme.watcher().changed.connect(self._on_theme_changed)

    def _on_theme_changed(self) -> None:
        self.show_node(self.snapshot, self.node)

    def show_node(self, snapshot: Snapshot | None, node: str | None) -> None:
        self.snapshot, self.node = snapshot, node
        self._links = []
        # Colours come from classes (muted, error, ...) filled from the palette: gui/theme.py.
        self.document().setDefaultStyleSheet(theme.current().html_css())
        notes = snapshot.graph.problems_for(node) if snapshot is not None and node else []
        if notes and node not in snapshot.graph.nodes:  # a leftover file: not an image
            self.setHtml(self._note_html(node, notes))
            return
        if snapshot is None or node is None or node not in snapshot.graph.nodes:
            self.setHtml(
                "<p class='muted'>Select an image in the graph or the list to see its "
                "chain, its problems and every header field.</p>"
            )
            return
        self.setHtml(self._html(snapshot, node))

    def _note_html(self, path: str, notes: list[Problem]) -> str:
        """A file the scan noted that is no image (a flatten's leftover temporary file)."""
        head = (
            f"<h3>{escape(display_path(short_name(path)))}</h3>"
            f"<p class='muted'>{escape(display_path(path))}<br>Not an image</p>"
        )
        return head + "".join(self._problem(p) for p in notes)

    def _link(self, node: str) -> str:
        self._links.append(node)
        label = escape(display_path(short_name(node)))
        return f"<a href='node:{len(self._links) - 1}'>{label}</a>"

    def _on_anchor_clicked(self, url: QUrl) -> None:
        scheme, _, rest = url.toString().partition(":")
        if scheme == "node" and rest.isdigit() and int(rest) < len(self._links):
            self.nodeRequested.emit(self._links[int(rest)])
        elif scheme == "action":
            self.actionRequested.emit(rest)

    # -- HTML

    def _html(self, snap: Snapshot, node: str) -> str:
        graph = snap.graph
        kind, info = graph.nodes[node]
        status = snap.status[node]
        icon = resources.icon_path(STATE_ICON[status.state]).as_uri()
        parts = [
            f"<h3><img src='{icon}' width='18' height='18'> "
            f"{escape(display_path(short_name(node)))}</h3>",
            f"<p class='muted'>{escape(display_path(node))}<br>State: {escape(status.label())}</p>",
        ]
        if info is not None and status.broken_at is not None:
            parts.append(self._broken(snap, node))
        if info is None:
            parts.append(self._placeholder(snap, node, kind))
        problems = graph.problems_for(node)
        if problems:
            parts.append("<h4>Problems</h4>")
            parts += [self._problem(p) for p in problems]
        nova = graph.nova_base(node)
        if nova is not None:
            age = nova.age_seconds / 86400
            verdict = (
                "Nova (remove_unused_base_images on, default ages) would delete it now."
                if nova.nova_would_remove
                else "Nova keeps it."
            )
            parts.append(
                f"<h4>OpenStack Nova cache base</h4><p>Used by {nova.used_by} instance disk(s); "
                f"last modified {age:.1f} days ago. {verdict}</p>"
            )
        if info is not None:
            parts.append(self._chain(snap, node))
            parts.append(self._internal(snap, node))
        parts.append(self._users(snap, node))
        parts.append(self._vms(snap, node))
        if info is not None:
            parts.append(self._fields(info))
        return "".join(parts)

    def _in_use(self, info: ImageInfo) -> str:
        if not info.in_use:
            return "no"
        how = "yes, written" if info.in_use_write else "yes, read"
        # Looked up with the scan, on its worker (Snapshot.holders): never /proc from here.
        found = self.snapshot.holders.get(info.path, ()) if self.snapshot is not None else ()
        who = ", ".join(h.describe() for h in found)
        return f"{how} by {who}" if who else f"{how} by a process of another user"

    def _broken(self, snap: Snapshot, node: str) -> str:
        """Why qemu cannot open this image, pointing at the image (or missing file) to fix."""
        status = snap.status[node]
        at = status.broken_at
        assert at is not None
        title = escape(str(status.chain_reason(node)))
        if status.errors:  # its own problem (a missing backing file names that file)
            where = (
                "The problem is this image's own; see below. Until it is fixed this image "
                "cannot be launched, committed, flattened or cloned."
            )
        else:
            target = self._link(at) if at in snap.graph.nodes else escape(display_path(at))
            where = (
                f"The chain breaks at {target}: select it to see how to fix it. Until then "
                "this image cannot be launched, committed, flattened or cloned."
            )
        return f"<h4>Cannot be opened</h4><p><b>{title}</b>. {where}</p>"

    def _placeholder(self, snap: Snapshot, node: str, kind: str) -> str:
        users = snap.graph.children(node)
        what = {
            MISSING: "This backing file does not exist: it was moved, renamed or deleted.",
            UNREADABLE: "This file exists but is not a readable disk image.",
            PROTOCOL: "A network or protocol source (nbd:, rbd:, json:, URL) that imagegui does "
            "not open.",
        }.get(kind, kind)
        fix = ""
        if kind in (MISSING, UNREADABLE) and users:
            fix = " Select an overlay below and use <a href='action:repair'>Repair…</a>."
        return f"<p>{what}{fix}</p>"

    def _problem(self, p: Problem) -> str:
        src = resources.icon_path(LEVEL_ICON[p.level]).as_uri()
        info = p.info  # the fix on offer, as diagnose words it: a link when an action does it
        fix = escape(info.fix)
        link = f"<br><a href='action:{info.action}'>{fix}</a>" if info.action else f"<br>{fix}"
        return (
            f"<p><img src='{src}' width='14' height='14'> "
            f"<b title='{escape(str(p.kind))}'>{escape(p.title)}</b>: "
            f"{escape(display_path(p.message))}<br>"
            f"<span class='muted'>{escape(p.explanation)}</span>{link}</p>"
        )

    def _chain(self, snap: Snapshot, node: str) -> str:
        graph = snap.graph
        chain = graph.chain(node)
        rows = []
        total = 0
        for depth, member in enumerate(chain):
            info = graph.image(member)
            if _CHAIN_HEAD <= depth < len(chain) - _CHAIN_TAIL:  # Qt lays out huge tables slowly
                total += info.actual_size if info else 0
                if depth == _CHAIN_HEAD:
                    hidden = len(chain) - _CHAIN_HEAD - _CHAIN_TAIL
                    rows.append(f"<tr><td></td><td colspan=4><i>… {hidden:,} more</i></td></tr>")
                continue
            name = self._link(member) if member != node else f"<b>{escape(short_name(member))}</b>"
            if info is None:
                rows.append(
                    f"<tr><td>{depth}</td><td>{name}</td><td colspan=3><i>"
                    f"{graph.kind(member)}</i></td></tr>"
                )
                continue
            total += info.actual_size
            rows.append(
                f"<tr><td>{depth}</td><td>{name}</td><td>{info.format}</td>"
                f"<td align=right>{human_size(info.virtual_size)}</td>"
                f"<td align=right>{human_size(info.actual_size)}</td></tr>"
            )
        loop = " <b class='error'>(loops back)</b>" if graph.in_loop(node) else ""
        return (
            f"<h4>Chain, top → base ({len(chain)} file{'s' * (len(chain) > 1)}){loop}</h4>"
            "<table cellspacing=0 cellpadding=3 width='100%'>"
            "<tr class='muted'><th align=left>#</th><th align=left>Image</th>"
            "<th align=left>Format</th><th align=right>Virtual</th><th align=right>Disk</th></tr>"
            + "".join(rows)
            + f"<tr><td></td><td colspan=3>Disk used by the whole chain</td>"
            f"<td align=right><b>{human_size(total)}</b></td></tr></table>"
        )

    def _internal(self, snap: Snapshot, node: str) -> str:
        """The image's internal snapshots (qcow2), read with the scan; nothing without any."""
        found = snap.internal.get(node, ())
        _, info = snap.graph.nodes[node]
        local = snap.remote_uri is None
        if not found:
            if info is not None and info.format == "qcow2" and local:
                return (
                    "<h4>Internal snapshots</h4><p>None. <a href='action:snapshot-create'>"
                    "Take Snapshot…</a></p>"
                )
            return ""
        rows = "".join(
            f"<tr><td>{escape(display_path(s.id))}</td><td><b>{escape(display_path(s.name))}"
            f"</b></td><td align=right>{human_size(s.vm_state_size) if s.vm_state_size else '—'}"
            f"</td><td>{s.date_text}</td><td>{s.vm_clock_text}</td>"
            f"<td align=right>{human_size(s.disk_size)}</td>"
            + (
                f"<td><a href='action:snapshot-apply:{i}'>Revert…</a> "
                f"<a href='action:snapshot-delete:{i}'>Delete…</a></td>"
                if local
                else ""
            )
            + "</tr>"
            for i, s in enumerate(found)
        )
        return (
            f"<h4>Internal snapshots ({len(found)})</h4>"
            "<table cellspacing=0 cellpadding=3>"
            "<tr class='muted'><th align=left>ID</th><th align=left>Name</th>"
            "<th align=right>VM state</th><th align=left>Date</th><th align=left>VM clock</th>"
            "<th align=right>Disk size</th></tr>"
            + rows
            + "</table><p class='muted'>Reverting to one replaces the current state of the "
            "disk. Flatten and Commit do not carry them along."
            + (" <a href='action:snapshot-create'>Take Snapshot…</a>" if local else "")
            + "</p>"
        )

    def _users(self, snap: Snapshot, node: str) -> str:
        graph = snap.graph
        kids = graph.children(node)
        if not kids:
            return "<h4>Overlays</h4><p>None: nothing backs onto this image.</p>"
        every = graph.descendants(node)
        listed = ", ".join(self._link(k) for k in kids[:_MAX_LISTED])
        more = f" and {len(kids) - _MAX_LISTED} more" if len(kids) > _MAX_LISTED else ""
        return (
            f"<h4>Overlays</h4><p>{len(kids)} direct, {len(every)} in all depend on it: "
            f"{listed}{more}.<br><span class='muted'>Writing to this image would "
            "change what all of them show.</span></p>"
        )

    def _vms(self, snap: Snapshot, node: str) -> str:
        """Which libvirt VMs use the image, running or shut off, with the disk, how (its file or
        below it in the chain) and the connection; nothing when no host was read."""
        uses = snap.domains.get(node, ())
        hosts = snap.hosts.local if snap.hosts is not None else []
        if not uses:
            if not hosts:
                return ""
            where = ", ".join(escape(h.uri) for h in hosts)
            return f"<h4>Used by</h4><p>No VM defined at {where} uses it.</p>"
        rows = []
        for use in uses:
            how = "its disk's file" if use.role == Role.TOP else "a backing file of its disk"
            state = f"<b>{escape(use.state)}</b>" if use.active else escape(use.state)
            rows.append(
                f"<tr><td><b>{escape(use.name)}</b></td><td>{state}</td>"
                f"<td>{escape(use.disk or '?')}</td><td>{how}</td>"
                f"<td class='muted'>{escape(use.uri)}</td></tr>"
            )
        vms = len({(u.uri, u.name) for u in uses})
        note = (
            "Rebasing it, committing into it or moving it changes what "
            + ("this VM sees" if vms == 1 else f"these {vms} VMs see")
            + ", running or shut off."
        )
        return (
            "<h4>Used by</h4><table cellspacing=0 cellpadding=2>"
            "<tr class='muted'><th align=left>VM</th><th align=left>State</th>"
            "<th align=left>Disk</th><th align=left>As</th><th align=left>Connection</th></tr>"
            + "".join(rows)
            + f"</table><p class='muted'>{note}</p>"
        )

    def _fields(self, info: ImageInfo) -> str:
        rows = [
            ("Format", info.format),
            ("Virtual size", f"{human_size(info.virtual_size)} ({info.virtual_size:,} bytes)"),
            ("Disk size", f"{human_size(info.actual_size)} ({info.actual_size:,} bytes)"),
            ("Backing file (stored)", info.backing_file or "none"),
            (
                "Backing format",
                info.backing_format or ("not recorded" if info.backing_file else "—"),
            ),
            ("Backing path (resolved)", info.backing_path or "—"),
            ("Protocol backing", "yes" if info.backing_protocol else "no"),
            ("In use", self._in_use(info)),
            ("Modified", dt.datetime.fromtimestamp(info.mtime).strftime("%Y-%m-%d %H:%M:%S")),
            ("Symbolic link", "yes" if info.is_symlink else "no"),
        ]
        if info.extents:
            rows.append(("Data files", "\n".join(info.extents)))
        if info.also_opens_as:
            rows.append(("Also opens as", ", ".join(info.also_opens_as)))
        rows += [(str(k), str(v)) for k, v in sorted(info.flags.items())]
        body = "".join(
            f"<tr><td class='muted' valign=top>{escape(k)}</td>"
            f"<td>{escape(display_path(v)).replace(chr(10), '<br>')}</td></tr>"
            for k, v in rows
        )
        return f"<h4>Header</h4><table cellspacing=0 cellpadding=2>{body}</table>"
