"""The libvirt hosts the window knows: read on workers, one section per connection.

Two kinds of connection, read differently because the graph needs only one of them:

- **local** ones (``qemu:///system``, the defaults when the user named none): their domains'
  disks are files on this machine, so they say which VM uses which scanned image. They are read
  with every scan, in a slot of their own; the scan job takes the result from :class:`LocalFeed`
  before it builds the graph (waiting a moment if the read is already running), so one scan
  normally builds its graph once, with the VM uses in it.
- **remote** ones (``qemu+ssh://user@host/system``): only listed (their paths are another
  machine's). A host over ssh can take seconds, so they are read after the local read, one after
  the other in one more slot (never two pool threads for them), each section shown as it comes.

A connection that fails gives one note (the window shows it in the status bar, once per new
failure) and a section saying why; it never stops anything else.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal

from imagegui.core.jobs import CancelToken, Job
from imagegui.core.virt.connect import LibvirtUnreachable, is_remote, local_uris
from imagegui.core.virt.inventory import HostInventory, Hosts, read_hosts
from imagegui.gui.settings import Settings
from imagegui.gui.workers import TaskSlot

log = logging.getLogger(__name__)

#: Seconds a scan waits, before building its graph, for a local read that is already running.
#: A local daemon answers in tens of milliseconds; past this the graph is shown without the VM
#: uses and they are attached when the read ends.
LOCAL_WAIT = 1.0

#: The prefix of a failed connection's note (``core.virt.connect.LibvirtUnreachable``).
_UNREACHABLE = "libvirt not reachable at {uri}: "


def hosts_key(hosts: Hosts | None) -> tuple:
    """What of ``hosts`` the graph depends on (the local domains and volumes): two reads with the
    same key give the same VM uses, so the second costs no new graph."""
    if hosts is None:
        return ()
    return tuple((i.uri, tuple(i.domains), tuple(i.volumes)) for i in hosts.local)


class LocalFeed:
    """The latest read of the local hosts, handed from the GUI thread to scan jobs (any thread).

    ``begin`` (a read is asked for), ``running`` (its job has started: called by the job itself),
    ``put`` (it ended); ``latest`` is what a scan job calls."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._hosts: Hosts | None = None
        self._pending = False
        self._running = False

    def begin(self) -> None:
        with self._cond:
            self._pending, self._running = True, False

    def running(self) -> None:
        with self._cond:
            self._running = self._pending

    def put(self, hosts: Hosts | None) -> None:
        """The read ended (``None``: it failed; the previous result stays)."""
        with self._cond:
            if hosts is not None:
                self._hosts = hosts
            self._pending = self._running = False
            self._cond.notify_all()

    @property
    def pending(self) -> bool:
        with self._cond:
            return self._pending

    def current(self) -> Hosts | None:
        with self._cond:
            return self._hosts

    def latest(self, cancel: CancelToken | None = None, wait: float = LOCAL_WAIT) -> Hosts | None:
        """The newest local hosts; when a read is running, waits for it up to ``wait`` seconds
        (a read still queued behind other work is not waited for: it may not start soon)."""
        with self._cond:
            left = wait
            while self._pending and self._running and left > 0:
                if cancel is not None and cancel.cancelled:
                    break
                step = min(0.1, left)
                self._cond.wait(step)
                left -= step
            return self._hosts


@dataclass
class HostSection:
    """One connection as the Hosts panel shows it."""

    uri: str
    inventory: HostInventory | None = None
    #: Why it could not be read ("libvirt not reachable at URI: reason").
    note: str | None = None
    #: A read of it is under way.
    reading: bool = False

    @property
    def remote(self) -> bool:
        return is_remote(self.uri)

    @property
    def reason(self) -> str | None:
        """The note without the "libvirt not reachable at URI: " the section title already says."""
        if self.note is None:
            return None
        prefix = _UNREACHABLE.format(uri=self.uri)
        return self.note[len(prefix) :] if self.note.startswith(prefix) else self.note

    @property
    def title(self) -> str:
        """``kvm01 — qemu:///system``: the host's name when it was read, and the connection."""
        name = self.inventory.hostname if self.inventory is not None else ""
        return f"{name} — {self.uri}" if name else self.uri


def split_uris(uris: Sequence[str]) -> tuple[list[str] | None, list[str]]:
    """(local, remote) connections to read. Local is None - the defaults, tried quietly - when
    the user named no local one: adding a remote host does not stop the window from seeing
    which of this machine's VMs use the scanned images."""
    local = local_uris(uris)
    remote = [u for u in uris if u not in local]
    return (local or None), remote


def note_for(hosts: Hosts, uri: str) -> str | None:
    """The one sentence for ``uri`` when it could not be read ("libvirt not reachable at ...")."""
    reason = hosts.unreachable.get(uri)
    return None if reason is None else str(LibvirtUnreachable(uri, reason))


class HostsReader(QObject):
    """Reads the remembered connections (``Settings.libvirt_uris``) and keeps a section each."""

    #: The local hosts were read (a ``Hosts``; the session compares it with its graph's).
    localRead = Signal(object)
    #: Sections were added, read or failed (the Hosts panel redraws).
    changed = Signal()
    #: A connection failed that had not failed before: one sentence for the status bar.
    note = Signal(str)

    def __init__(
        self,
        settings: Settings,
        parent: QObject | None = None,
        reader: Callable[[Sequence[str] | None], Hosts] = read_hosts,
    ):
        super().__init__(parent)
        self.settings = settings
        self.feed = LocalFeed()
        self._read = reader
        self._local = TaskSlot(self, on_done=self._on_local, on_failed=self._on_local_failed)
        self._remote = TaskSlot(
            self,
            on_done=self._on_remote_done,
            on_failed=self._on_remote_done,
            on_note=self._on_remote_host,
        )
        self._sections: dict[str, HostSection] = {}
        #: The order of the local sections (the defaults' answer, or the named ones).
        self._local_uris: list[str] = []
        self._remote_uris: list[str] = []
        #: Notes already given: the same failure at every rescan is said once.
        self._noted: set[str] = set()
        #: Read the remote hosts once the local read ends.
        self._then_remote = False
        #: The local read ran at least once (before that, the panel says it is reading).
        self.local_done = False

    # -- what the panel shows

    def sections(self) -> list[HostSection]:
        """Local sections first, in the order asked, then the remote ones."""
        order = [*self._local_uris, *self._remote_uris]
        return [self._sections[u] for u in order if u in self._sections]

    @property
    def reading(self) -> bool:
        return self._local.running or self._remote.running

    # -- reading

    def refresh(self) -> None:
        """Reads every connection: the local ones now, the remote ones right after."""
        self._then_remote = True
        self.read_local()

    def read_local(self) -> None:
        """Reads the local connections (each scan does); the feed is pending until it ends."""
        local, remote = split_uris(self.settings.libvirt_uris())
        self._forget_removed(local, remote)
        if local is not None:
            for uri in local:
                self._section(uri).reading = True
        self.feed.begin()
        feed, read = self.feed, self._read

        def run(_progress, _cancel) -> Hosts:
            feed.running()
            start = time.monotonic()
            hosts = read(local)
            log.info(
                "libvirt hosts read in %.2f s: %s",
                time.monotonic() - start,
                ", ".join(f"{i.uri} ({len(i.domains)} VMs)" for i in hosts.inventories) or "none",
            )
            return hosts

        self._local.start(Job("Reading the libvirt hosts", run))
        self.changed.emit()

    def read_remote(self) -> None:
        """Reads the remote connections one after the other, each section as it arrives."""
        _, remote = split_uris(self.settings.libvirt_uris())
        self._remote_uris = remote
        if not remote:
            self._remote.discard()
            self.changed.emit()
            return
        for uri in remote:
            self._section(uri).reading = True
        read = self._read

        def make(note):
            def run(_progress, cancel: CancelToken) -> None:
                for uri in remote:
                    if cancel.cancelled:
                        return
                    note((uri, read([uri])))

            return Job("Reading the remote libvirt hosts", run)

        self._remote.start_noting(make)
        self.changed.emit()

    def stop(self) -> None:
        self._local.discard()
        self._remote.discard()
        self.feed.put(None)

    def _section(self, uri: str) -> HostSection:
        section = self._sections.get(uri)
        if section is None:
            section = self._sections[uri] = HostSection(uri)
        return section

    def _forget_removed(self, local: list[str] | None, remote: list[str]) -> None:
        keep = set(remote) | set(local or ()) | (set(self._local_uris) if local is None else set())
        for uri in list(self._sections):
            if uri not in keep:
                del self._sections[uri]
        self._remote_uris = [u for u in self._remote_uris if u in keep]
        if local is not None:
            self._local_uris = list(local)

    def _on_local(self, hosts: Hosts) -> None:
        self.local_done = True
        named = self.settings.libvirt_uris()
        local, _ = split_uris(named)
        if local is None:  # the defaults: a section only for the one that answered
            for uri in self._local_uris:
                self._sections.pop(uri, None)
            self._local_uris = [i.uri for i in hosts.inventories]
        else:
            self._local_uris = list(local)
        for inv in hosts.inventories:
            self._store(HostSection(inv.uri, inventory=inv))
        for uri in self._local_uris:
            if (note := note_for(hosts, uri)) is not None:
                self._store(HostSection(uri, note=note))
        self.feed.put(hosts)
        self.localRead.emit(hosts)
        self.changed.emit()
        if self._then_remote:
            self._then_remote = False
            self.read_remote()

    def _on_local_failed(self, exc: BaseException) -> None:
        """Not a connection failing (that is a note): the read itself broke. Said once."""
        self.local_done = True
        self.feed.put(None)
        for uri in self._local_uris:
            self._store(HostSection(uri, note=f"libvirt not reachable at {uri}: {exc}"))
        self.changed.emit()
        if self._then_remote:
            self._then_remote = False
            self.read_remote()

    def _on_remote_host(self, news: object) -> None:
        uri, hosts = news  # type: ignore[misc]
        if uri not in self._remote_uris:
            return  # removed meanwhile
        if hosts.inventories:
            self._store(HostSection(uri, inventory=hosts.inventories[0]))
        else:
            note = note_for(hosts, uri) or f"libvirt not reachable at {uri}"
            self._store(HostSection(uri, note=note))
        self.changed.emit()

    def _on_remote_done(self, _result: object) -> None:
        for uri in self._remote_uris:  # a read that broke off leaves no section "reading"
            section = self._sections.get(uri)
            if section is not None and section.reading:
                section.reading = False
        self.changed.emit()

    def _store(self, section: HostSection) -> None:
        self._sections[section.uri] = section
        if section.note is None:
            self._noted = {n for n in self._noted if not n.startswith(f"{section.uri}\0")}
            return
        key = f"{section.uri}\0{section.note}"
        if key not in self._noted:
            self._noted.add(key)
            self.note.emit(section.note)
