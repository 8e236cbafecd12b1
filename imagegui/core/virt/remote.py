"""Another host's images through libvirt: its storage volumes as a scan result, so the chain
graph and every problem rule apply unchanged, and an overlay created there through the storage API.

The paths a remote host reports are that host's. Nothing here (nor in the graph built from the
result: ``ScanResult.remote_uri``) stats, opens or resolves them on this machine; even a host
reached over loopback is read only through libvirt. What the volume XML leaves open - whether an
overlay's header *records* its backing format (libvirt reports the format it guessed as if it
were recorded), its dirty and corrupt flags, a data file - comes from the header bytes
(``virStorageVolDownload``), parsed by the same native parsers as a local file, read only for
qcow2 volumes with a backing file: one download per such volume.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import posixpath
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from imagegui.core.read import backing
from imagegui.core.read.fileid import FileId
from imagegui.core.read.formats.base import (
    MAX_READ,
    BoundedReader,
    Header,
    ParseError,
    check_virtual_size,
)
from imagegui.core.read.model import ImageInfo, ScanError
from imagegui.core.read.probe import HEAD_SIZE, detect, is_raw_candidate
from imagegui.core.read.scan import ScanResult
from imagegui.core.virt.connect import LibvirtUnreachable, binding, open_connection
from imagegui.core.virt.domxml import BadXML, parse_volume
from imagegui.core.virt.inventory import read_host
from imagegui.core.virt.model import HostInventory, Volume

log = logging.getLogger(__name__)

#: Header bytes fetched in one download: a qcow2 header with its extensions and backing name
#: nearly always fits (as in a local probe's first read); a parser that needs more (a long
#: name, a snapshot table) fetches it, within ``MAX_READ``. 4 KiB, not 64: downloading 500
#: headers took 0.2-0.26 s against 0.4-1.5 s (benchmarks/libvirt_volumes.py).
HEADER_BYTES = HEAD_SIZE

#: libvirt's format names that qemu calls something else (a file libvirt found no magic in is
#: ``raw`` to qemu; an ISO is a raw image).
_QEMU_FORMATS = {None: "raw", "none": "raw", "auto": "raw", "iso": "raw"}

#: Volume types that are files qemu can open (a ``dir`` volume is a subdirectory of a dir pool).
_FILE_TYPES = frozenset({"file", "block"})

#: What every writing command but overlay (and clone-vm) says for another host's images.
REMOTE_WRITE_REFUSED = (
    "writing to images on another host is not supported yet except creating an overlay and a "
    "linked-clone VM"
)


class RemoteWriteError(Exception):
    """libvirt did not create the volume; the message says why in a user's words."""


def qemu_format(libvirt_format: str | None) -> str:
    """qemu's name for a format libvirt names (``iso`` and no format are ``raw``)."""
    return _QEMU_FORMATS.get(libvirt_format, libvirt_format or "raw")


def remote_file_id(uri: str, path: str) -> FileId:
    """A file id for ``path`` on the host at ``uri``: distinct for distinct paths, and never a
    local one (no device number is negative), so another host's file never matches one here."""
    digest = hashlib.blake2b(f"{uri}\0{path}".encode(errors="surrogateescape"), digest_size=8)
    return (-1, int.from_bytes(digest.digest(), "big"))


def open_for_reading(uri: str) -> tuple[Any, bool]:
    """A connection to ``uri`` that can read header bytes, and whether it is read-only.

    libvirt forbids downloading volume bytes on a read-only connection, so a read-write one is
    tried first; when it is refused (polkit, a read-only socket) the read-only one still lists
    the volumes and the scan says what it could not read. Raises :class:`LibvirtUnreachable`.
    """
    try:
        return open_connection(uri, readonly=False), False
    except LibvirtUnreachable as exc:
        log.info("%s; reading it read-only", exc)
    return open_connection(uri), True


# ------------------------------------------------------------------------- header bytes


def download(conn: Any, vol: Any, offset: int, length: int) -> bytes:
    """``length`` bytes of the volume ``vol`` from ``offset`` (fewer at its end), through one
    ``virStorageVolDownload`` stream."""
    libvirt = binding()
    stream = conn.newStream(0)
    chunks: list[bytes] = []
    try:
        vol.download(stream, offset, length, 0)
        while True:
            data = stream.recv(min(length, 262144) or 1)
            if not isinstance(data, bytes) or not data:
                break
            chunks.append(data)
        stream.finish()
    except libvirt.libvirtError:
        with contextlib.suppress(libvirt.libvirtError):
            stream.abort()
        raise
    return b"".join(chunks)


class _VolumeReader(BoundedReader):
    """The bounded reader the format parsers take, over a volume on another host: the first
    :data:`HEADER_BYTES` downloaded up front, anything further on demand (within the budget)."""

    def __init__(self, fetch: Callable[[int, int], bytes], size: int, head: bytes):
        self._fetch = fetch
        self.size = max(size, len(head))
        self.budget = MAX_READ
        self.used = len(head)
        self._cache = (0, head)

    def _pread(self, offset: int, length: int) -> bytes:
        return self._fetch(offset, length)


def parse_header(head: bytes, size: int, fetch: Callable[[int, int], bytes]) -> Header:
    """The header in ``head`` (the first bytes of a file ``size`` bytes long), read by the same
    parsers as a local file; raises ParseError."""
    mod = detect(head)
    if mod is None:
        raise ParseError("no image header in its first bytes (libvirt called it qcow2)")
    return check_virtual_size(mod.parse(_VolumeReader(fetch, size, head)))


class _Headers:
    """Reads overlays' headers over one connection; stops trying after the first refusal of a
    read-only connection (one note, not one per volume)."""

    def __init__(self, conn: Any, result: ScanResult):
        self.conn = conn
        self.result = result
        self.denied: str | None = None
        self._pools: dict[str, Any] = {}

    def read(self, vol: Volume) -> Header | None:
        """The parsed header, or None when it could not be fetched (the XML's facts stand);
        raises ParseError when the bytes are no valid header (the volume is unreadable)."""
        if self.denied is not None:
            return None
        libvirt = binding()
        try:
            # By pool and name: one cheap call (a lookup by path searches every pool).
            pool = self._pools.get(vol.pool)
            if pool is None:
                pool = self._pools[vol.pool] = self.conn.storagePoolLookupByName(vol.pool)
            handle = pool.storageVolLookupByName(vol.name)
            size = vol.physical or vol.allocation or MAX_READ  # physical: libvirt 3.0+

            def fetch(offset: int, length: int) -> bytes:
                return download(self.conn, handle, offset, length)

            return parse_header(fetch(0, HEADER_BYTES), size, fetch)  # may fetch more
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_OPERATION_DENIED:
                self.denied = " ".join(str(exc).split())
                self.result.errors.append(
                    ScanError(
                        self.result.root,
                        "overlays' headers were not read (the connection is read-only: "
                        f"{self.denied}); whether each records its backing format is libvirt's "
                        "word, which reports a format it guessed as if it were recorded",
                        False,
                    )
                )
            else:
                self.result.errors.append(
                    ScanError(vol.path, f"header not read through libvirt: {exc}", False)
                )
            return None


# ------------------------------------------------------------------------------ the scan


def _record(uri: str, vol: Volume, path: str, header: Header | None) -> ImageInfo:
    """The image record for one volume: sizes, format and backing from libvirt's XML, the
    backing name and recorded format (and flags) from its header when it was read."""
    if header is not None:
        fmt, name, recorded = header.format, header.backing_file, header.backing_format
        flags, also = header.flags, header.also_opens_as
        extents = tuple(_join(path, e) for e in header.extents)
    else:
        fmt, name, recorded = qemu_format(vol.format), vol.backing_path, vol.backing_format
        flags, also, extents = {}, (), ()
    protocol = bool(name) and backing.is_protocol(name or "")
    target: str | None = None
    if name and not protocol:
        # libvirt resolved it on that host, as qemu will (relative to the overlay's directory).
        target = posixpath.normpath(vol.backing_path) if vol.backing_path else _join(path, name)
    return ImageInfo(
        path,
        fmt,
        vol.capacity,
        vol.allocation,
        name or None,
        recorded,
        target,
        protocol,
        flags=flags,
        extents=extents,
        also_opens_as=also,
        mtime=vol.mtime,
        file_id=remote_file_id(uri, path),
        stamp=(vol.physical, int(vol.mtime * 1e9)),
    )


def _join(overlay: str, name: str) -> str:
    """qemu's ``path_combine`` done lexically: another host's symlinks are not ours to follow."""
    return posixpath.normpath(posixpath.join(posixpath.dirname(overlay), name))


def scan_host(
    conn: Any,
    uri: str,
    directory: str | None = None,
    inventory: HostInventory | None = None,
) -> ScanResult:
    """The images of the host at ``uri`` as a scan result: one record per volume of its active
    storage pools (under ``directory`` on that host when given), and the backing files they
    use outside it as external images, as a local scan of that directory would list them.

    ``inventory``: the host as already read (``read_host``); read here when None. A backing
    file that is no volume but that libvirt could open is an image known by its path and format
    only (with a note); one libvirt could not open is missing. Raises LibvirtUnreachable when
    the host cannot be listed at all.
    """
    started = time.perf_counter()
    inv = inventory if inventory is not None else read_host(conn, uri)
    root = posixpath.normpath(directory) if directory else "/"
    result = ScanResult(root, remote_uri=uri)
    for pool, reason in sorted(inv.pool_errors.items()):
        what = "the storage pools" if pool == "*" else f"storage pool {pool}"
        result.errors.append(ScanError(root, f"{what} could not be listed: {reason}", False))
    volumes: dict[str, Volume] = {}
    for vol in inv.volumes:
        if vol.type in _FILE_TYPES and vol.path.startswith("/"):
            volumes.setdefault(posixpath.normpath(vol.path), vol)  # a file in two pools: once
    result.remote_ids = {p: remote_file_id(uri, p) for p in volumes}
    headers = _Headers(conn, result)

    def record(path: str, vol: Volume) -> ImageInfo | None:
        header = None
        if qemu_format(vol.format) == "qcow2" and vol.backing_path:
            try:
                header = headers.read(vol)
            except ParseError as exc:
                result.errors.append(ScanError(path, str(exc), True))
                return None
        return _record(uri, vol, path, header)

    unclaimed: set[str] = set()
    for path in sorted(volumes):
        if not backing.is_within(path, root):
            continue
        result.files_seen += 1
        vol = volumes[path]
        if qemu_format(vol.format) == "raw" and not is_raw_candidate(path):
            unclaimed.add(path)  # a file without magic: an image only if something backs onto it
            continue
        info = record(path, vol)
        if info is not None:
            result.images[path] = info
    _adopt_backing_files(result, volumes, unclaimed, record)
    result.seconds = time.perf_counter() - started
    log.info(
        "read %s%s: %d images, %d outside it, %d notes in %.3f s",
        uri, "" if root == "/" else f" {root}", len(result.images), len(result.external),
        len(result.errors), result.seconds,
    )  # fmt: skip
    return result


def _adopt_backing_files(
    result: ScanResult,
    volumes: dict[str, Volume],
    unclaimed: set[str],
    record: Callable[[str, Volume], ImageInfo | None],
) -> None:
    """What the scanned images back onto, as the local scan adopts it: a volume without magic
    becomes a raw image, a volume outside the directory an external image; a backing file that
    is no volume is known from the overlay's XML (existing or not); a missing one is left to
    the graph, which shows it as missing."""
    images, external = result.images, result.external
    pending = list(images.values())
    while pending:
        found: list[ImageInfo] = []
        for info in pending:
            target = info.backing_path
            if target is None or target in images or target in external:
                continue
            vol = volumes.get(target)
            if vol is not None:
                adopted = record(target, vol)
                if adopted is None:
                    continue
                if target in unclaimed or backing.is_within(target, result.root):
                    unclaimed.discard(target)
                    images[target] = adopted
                else:
                    external[target] = adopted
                found.append(adopted)
                continue
            overlay = volumes.get(info.path)
            if overlay is None or not overlay.backing_exists:
                continue  # missing on that host: the graph's placeholder
            known = _known_by_path(result, target, overlay)
            if backing.is_within(target, result.root):
                images[target] = known
            else:
                external[target] = known
        pending = found


def _known_by_path(result: ScanResult, path: str, overlay: Volume) -> ImageInfo:
    """A backing file libvirt opened but lists in no pool: its path and the format libvirt
    gives for it are all that can be known from here (its header cannot be downloaded)."""
    uri = result.remote_uri or ""
    result.remote_ids[path] = remote_file_id(uri, path)
    result.errors.append(
        ScanError(
            path,
            f"not a volume of any active storage pool on {uri}: only its path and format are "
            "known (sizes and its own backing file are not); define a pool on its directory to "
            "see it whole",
            False,
        )
    )
    fmt = qemu_format(overlay.backing_format)
    return ImageInfo(path, fmt, 0, 0, file_id=remote_file_id(uri, path))


# ------------------------------------------------------------------------------ writing


def _pool_for(conn: Any, directory: str) -> Any:
    """The active storage pool whose target directory is ``directory`` on the host."""
    libvirt = binding()
    for pool in conn.listAllStoragePools(0):
        try:
            if not pool.isActive():
                continue
            root = ET.fromstring(pool.XMLDesc(0))
        except (libvirt.libvirtError, ET.ParseError):
            continue
        target = root.findtext("target/path")
        if target and posixpath.normpath(target) == directory:
            return pool
    raise RemoteWriteError(
        f"no active storage pool on {conn.getURI()} has the directory {directory}: libvirt "
        "creates volumes only in a pool (define one there, e.g. virsh pool-define-as NAME dir "
        f"--target {directory}, and start it)"
    )


def overlay_volume_xml(name: str, capacity: int, base_path: str, base_format: str) -> str:
    """The ``<volume>`` libvirt creates a qcow2 overlay from: the backing format always
    recorded (qemu 6.1+ and libvirt refuse to guess it)."""
    return (
        "<volume>"
        f"<name>{escape(name)}</name>"
        f"<capacity unit='bytes'>{int(capacity)}</capacity>"
        "<target><format type='qcow2'/></target>"
        f"<backingStore><path>{escape(base_path)}</path>"
        f"<format type='{escape(base_format)}'/></backingStore>"
        "</volume>"
    )


@dataclass(frozen=True)
class OverlayRequest:
    """What creating an overlay on another host will do: shown before it is done (a dry run)."""

    uri: str
    #: The pool the new volume goes into (its directory is the pool's).
    pool: str
    base: Volume
    new_path: str
    #: The ``<volume>`` handed to ``virStorageVolCreateXML``.
    xml: str


def plan_overlay_volume(conn: Any, base_path: str, new_path: str) -> OverlayRequest:
    """The overlay ``new_path`` of the volume ``base_path`` on the host of ``conn`` (read-only
    is enough): the base's format and size, the pool of ``new_path``'s directory, the XML.
    Raises RemoteWriteError when the base is no volume or the directory no active pool's."""
    libvirt = binding()
    uri = conn.getURI()
    base_path = posixpath.normpath(base_path)
    new_path = posixpath.normpath(new_path)
    try:
        handle = conn.storageVolLookupByPath(base_path)
        base = parse_volume(handle.XMLDesc(0), uri, handle.storagePoolLookupByVolume().name())
    except libvirt.libvirtError as exc:
        raise RemoteWriteError(
            f"{base_path} is not a volume of any active storage pool on {uri}: {_words(exc)}"
        ) from None
    except BadXML as exc:
        raise RemoteWriteError(str(exc)) from None
    directory, name = posixpath.split(new_path)
    pool = _pool_for(conn, directory).name()
    xml = overlay_volume_xml(name, base.capacity, base_path, qemu_format(base.format))
    return OverlayRequest(uri, pool, base, new_path, xml)


def create_overlay_volume(conn: Any, base_path: str, new_path: str) -> Volume:
    """Creates ``new_path`` on the host of ``conn`` (read-write) as a qcow2 overlay of the
    volume ``base_path``, through the storage API (``virStorageVolCreateXML``): the backing
    file and its format are recorded, the size is the base's. ``new_path``'s directory must be
    an active pool's. Returns the new volume as libvirt describes it; raises RemoteWriteError.
    """
    libvirt = binding()
    request = plan_overlay_volume(conn, base_path, new_path)
    try:
        pool = conn.storagePoolLookupByName(request.pool)
        vol = pool.createXML(request.xml, 0)
        return parse_volume(vol.XMLDesc(0), request.uri, request.pool)
    except libvirt.libvirtError as exc:
        raise RemoteWriteError(
            f"libvirt did not create {request.new_path}: {_words(exc)}"
        ) from None


def _words(exc: Exception) -> str:
    get = getattr(exc, "get_error_message", None)
    return " ".join(((get() if get else None) or str(exc)).split())


def escape(text: str, entities: dict[str, str] | None = None) -> str:
    """``xml.sax.saxutils.escape``, imported when first used: importing it at start brings
    urllib.request, http.client, email and ssl into every process that imports this module."""
    from xml.sax.saxutils import escape as sax_escape

    return sax_escape(text, entities or {})
