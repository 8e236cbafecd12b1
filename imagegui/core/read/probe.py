"""One file -> ImageInfo: dispatch on the magic, parse natively, never follow a backing file.

The scanner calls :func:`probe_fd` with a descriptor it opened itself (so it can refuse FIFOs and
devices before any read); :func:`probe_image` is the one-file convenience the operations use.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import stat
from types import ModuleType

from imagegui.core.read import backing
from imagegui.core.read.fileid import stat_id
from imagegui.core.read.formats import qcow2
from imagegui.core.read.formats.base import (
    EMPTY_FLAGS,
    BoundedReader,
    Header,
    ParseError,
    check_virtual_size,
    shared_name,
    shared_size,
)
from imagegui.core.read.locks import lock_state_fd
from imagegui.core.read.model import ImageInfo

#: Bytes read up front; every common header (qcow2 with its extensions and backing name, QED,
#: VMDK sparse header and embedded descriptor, VHD) fits, so a typical image costs one read.
HEAD_SIZE = 4096

#: Names a raw image is recognised by (a file without magic is skipped unless named so).
IMAGE_EXTENSIONS = frozenset(
    {".img", ".raw", ".iso", ".qcow2", ".qcow", ".qed", ".vmdk", ".vhd", ".vpc", ".vhdx"}
)
#: Extensions that promise one format; a file with such a name but no valid header is unreadable.
_CLAIMED_FORMAT = {
    ".qcow2": "qcow2",
    ".qcow": "qcow",
    ".qed": "qed",
    ".vmdk": "vmdk",
    ".vhd": "vpc",
    ".vpc": "vpc",
    ".vhdx": "vhdx",
}
#: Which format modules may claim a file, by its first byte. Only qcow2 is imported up front (it
#: is nearly every file); the others load the first time a file could be theirs. Each module's
#: own ``probe`` makes the decision.
_CANDIDATES: dict[int, tuple[str, ...]] = {
    ord("Q"): ("qcow2", "qcow", "qed"),
    ord("c"): ("vpc",),
    ord("v"): ("vhdx", "vmdk"),  # "vhdxfile", or a VMDK descriptor starting "version="
    ord("K"): ("vmdk",),
    ord("C"): ("vmdk",),  # VMware 3 "COWD"
    ord("#"): ("vmdk",),  # "# Disk DescriptorFile"
    ord("L"): ("luks",),  # "LUKS\\xba\\xbe": a raw LUKS volume, which qemu opens as luks
    ord(" "): ("vmdk",),  # a descriptor may open with blank lines of spaces
}

OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class ProbeError(Exception):
    """The file cannot be read as an image; the message says why in a user's words."""


def extension(path: str) -> str:
    """``.qcow2`` for ``/a/b.QCOW2``; empty for ``/a/.hidden`` and ``/a.d/file``."""
    dot = path.rfind(".")
    return path[dot:].lower() if dot > path.rfind("/") + 1 else ""


def has_image_extension(path: str) -> bool:
    return extension(path) in IMAGE_EXTENSIONS


def format_module(name: str) -> ModuleType:
    return importlib.import_module(f"imagegui.core.read.formats.{name}")


def detect(head: bytes) -> ModuleType | None:
    """The format module whose magic ``head`` carries, or None (a raw candidate)."""
    if not head:
        return None
    if qcow2.probe(head):
        return qcow2
    for name in _CANDIDATES.get(head[0], ()):
        mod = format_module(name)
        if mod.probe(head):
            return mod
    return None


#: Nova's bookkeeping beside its images: ``disk.info`` (JSON: each disk's format), and in
#: ``_base`` the ``.info`` files of old releases and ``.part`` downloads still in progress.
_NOVA_NOT_IMAGES = (".info", ".part")


def is_raw_candidate(path: str) -> bool:
    """Files without magic count as raw images only when named or placed like one."""
    if has_image_extension(path):
        return True
    parent, name = os.path.split(path)
    if name.endswith(_NOVA_NOT_IMAGES):
        return False
    if os.path.basename(parent) == "_base":  # OpenStack Nova image cache
        return True
    return name == "disk" or name.startswith("disk.")  # Nova instance disks (disk.local, ...)


def probe_fd(
    fd: int, path: str, st: os.stat_result, raw_ok: bool | None = None, is_symlink: bool = False
) -> ImageInfo | None:
    """Probe an open regular file. Returns None for a file that is not an image (no magic and
    not ``raw_ok``; None: decided by :func:`is_raw_candidate`); raises ProbeError for a file
    that claims to be an image but is broken."""
    head = os.pread(fd, HEAD_SIZE, 0)
    mod = detect(head)
    reader = BoundedReader(fd, st.st_size)
    reader.prime(0, head)
    ext = extension(path)
    try:
        if mod is not None:
            header = check_virtual_size(mod.parse(reader))
        else:
            guessed = _no_magic(reader, path, ext, raw_ok, st.st_size)
            if guessed is None:
                return None
            header = guessed
    except ParseError as exc:
        message = str(exc)
        if st.st_size < 512 and "truncated" not in message:
            message += f" (the file is only {st.st_size} bytes long: truncated?)"
        raise ProbeError(message) from None
    lock = lock_state_fd(fd)
    return _info(path, st, header, lock.in_use, lock.writer, is_symlink, ext)


def _no_magic(
    reader: BoundedReader, path: str, ext: str, raw_ok: bool | None, size: int
) -> Header | None:
    claimed = _CLAIMED_FORMAT.get(ext)
    if claimed == "vpc":
        fixed = format_module("vpc").parse_fixed_footer(reader)
        if fixed is not None:
            return fixed
    if claimed is not None:
        what = "is empty" if size == 0 else f"has no {claimed} header (its first bytes are not"
        if size:
            what += " any known image format's)"
        raise ParseError(f"named like a {claimed} image but {what}")
    if not (is_raw_candidate(path) if raw_ok is None else raw_ok):
        return None
    if size == 0:
        raise ParseError("file is empty (0 bytes): not a usable disk image")
    return Header("raw", size)


def _info(
    path: str,
    st: os.stat_result,
    header: Header,
    in_use: bool,
    writer: bool,
    is_symlink: bool,
    ext: str,
) -> ImageInfo:
    """The record for one probed file. On the scan's hot path: keep it lean. A scan of 100,000
    images keeps 100,000 of these, so values that repeat between images are shared: the flags
    (``formats.base.shared_flags``, and one empty dict), the virtual size, the backing format
    name, the empty extent and format tuples; an absolute backing name that is already
    canonical is its own resolved path."""
    flags = header.flags  # may be shared between images (formats.base.shared_flags): no edits
    if header.format != "raw":
        claimed = _CLAIMED_FORMAT.get(ext)
        if claimed and claimed != header.format:
            flags = {**flags, "extension_mismatch": f"named {ext} but is {header.format}"}
    if not flags:
        flags = EMPTY_FLAGS
    actual = st.st_blocks * 512
    extents: tuple[str, ...] = ()
    if header.extents:
        extents = tuple(backing.join(path, e) for e in header.extents)
        for extent in extents:
            if extent != path:
                with contextlib.suppress(OSError):
                    actual += os.stat(extent).st_blocks * 512
    name = header.backing_file
    resolved = None
    if name:
        resolved = backing.resolve(path, name)
        if resolved == name:
            resolved = name
    fmt = header.backing_format
    return ImageInfo(
        path,
        header.format,
        shared_size(header.virtual_size),
        actual,
        name,
        fmt if fmt is None else shared_name(fmt),
        resolved,
        bool(name) and resolved is None,
        in_use,
        writer,
        flags,
        extents,
        header.also_opens_as,
        st.st_mtime,
        stat_id(st),
        is_symlink,
        (st.st_size, st.st_mtime_ns),
    )


def open_regular(path: str) -> tuple[int, os.stat_result]:
    """Open ``path`` for reading without blocking on a FIFO and make sure it is a regular file."""
    try:
        pre = os.stat(path)
        if not stat.S_ISREG(pre.st_mode):
            raise ProbeError(f"not a regular file ({file_kind(pre.st_mode)}); not read")
        fd = os.open(path, OPEN_FLAGS)
    except OSError as exc:
        raise ProbeError(_os_message(exc)) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise ProbeError(f"not a regular file ({file_kind(st.st_mode)}); not read")
    return fd, st


def probe_image(path: str, raw_ok: bool = True) -> ImageInfo:
    """Probe one file named by the user or by a backing pointer (raw when it has no magic)."""
    abspath = backing.canonical(path)
    fd, st = open_regular(abspath)
    try:
        info = probe_fd(fd, abspath, st, raw_ok, os.path.islink(abspath))
    finally:
        os.close(fd)
    if info is None:
        raise ProbeError("not a disk image (no known header and not named like one)")
    return info


def _os_message(exc: OSError) -> str:
    import errno

    if exc.errno == errno.ENOENT:
        return "no such file (it may have been moved, deleted, or be a broken link)"
    if exc.errno == errno.EACCES:
        return "permission denied: cannot read it as this user"
    if exc.errno == errno.ELOOP:
        return "symbolic link loop: the link never reaches a file"
    return exc.strerror or str(exc)


def file_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "a special file"
