"""The records the scan produces; the graph, the CLI and the GUI all read these, none copy them."""

from __future__ import annotations

from dataclasses import dataclass, field
from operator import attrgetter

from imagegui.core.read.fileid import FileId


@dataclass(slots=True)
class ImageInfo:
    """One disk image as found on disk, with its backing pointer resolved by qemu's rules."""

    #: Absolute path as listed (a symlinked image keeps its link path), normalised lexically.
    path: str
    #: qemu's format name: qcow2, qcow, qed, vmdk, vpc, vhdx, raw.
    format: str
    virtual_size: int
    #: Bytes allocated on disk (st_blocks * 512), extents included.
    actual_size: int
    #: The backing name exactly as stored in the header, or None.
    backing_file: str | None = None
    #: The backing format recorded in the header, or None when the header records none.
    backing_format: str | None = None
    #: The backing file's absolute path as qemu resolves it (relative names from the overlay's own
    #: directory), normalised; None without a backing file or for a protocol backing.
    backing_path: str | None = None
    #: The backing name is a protocol (``nbd:``, ``json:{...}``, ``http://``), not a file.
    backing_protocol: bool = False
    #: A running QEMU holds locks on it; ``in_use_write``: one of them is the write lock.
    in_use: bool = False
    in_use_write: bool = False
    #: Format-specific facts (qcow2: version, cluster_size, dirty, corrupt, ...). Often shared
    #: between images with identical headers (``formats.base.shared_flags``): read-only.
    flags: dict[str, object] = field(default_factory=dict)
    #: Absolute paths of extent / external data files this image's data lives in. Tuples, not
    #: lists: nearly every image has none, and the one empty tuple is shared (two empty lists
    #: were 112 bytes of each record).
    extents: tuple[str, ...] = ()
    #: Formats qemu would also open this file as (a fixed VHD probes as raw but opens as vpc).
    also_opens_as: tuple[str, ...] = ()
    mtime: float = 0.0
    #: ``core.read.fileid`` of the file the path leads to: matches backing names to scanned
    #: files through symlinks, hard links and ``..``.
    file_id: FileId = (0, 0)
    is_symlink: bool = False
    #: (st_size, st_mtime_ns) as scanned: whether kept check results still describe this file
    #: (``core.chains.checkstore``) without a second ``stat``. Internal, like ``file_id``.
    stamp: tuple[int, int] = (0, 0)

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    def to_json(self) -> dict[str, object]:
        """A plain dict for JSON output (shallow: ``asdict`` deep-copies and costs 20x more)."""
        return dict(zip(JSON_FIELDS, _json_values(self), strict=True))


#: The fields of an image in JSON output, in order (the file id is an internal matching key).
JSON_FIELDS = tuple(n for n in ImageInfo.__dataclass_fields__ if n not in ("file_id", "stamp"))
_json_values = attrgetter(*JSON_FIELDS)


@dataclass(frozen=True)
class ScanError:
    """A file the scan could not read as an image (becomes an ``unreadable`` problem) or a path
    it could not walk (dangling link, permission, loop); the scan goes on either way."""

    path: str
    message: str
    #: True when the file looked like an image (magic or image extension) but its header is bad.
    looked_like_image: bool = True
    #: imagegui's own temporary file left by an interrupted operation (a note, and a warning).
    leftover: bool = False
