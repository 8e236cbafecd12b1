"""How qemu turns a stored backing name into something to open (block.c, qemu's own rules).

qemu never normalises a backing name: ``path_combine`` glues a relative name to the directory
part of the overlay's filename *as qemu was given it* and ``open()`` lets the kernel walk the
result. The kernel follows a symlinked directory *before* it applies ``..``, so
``vms/clones/../base.qcow2`` with ``vms/clones -> ../data/clones`` is ``data/base.qcow2``, not the
``vms/base.qcow2`` that ``os.path.normpath`` would make of it. Every path here is therefore
normalised only where the kernel agrees (:func:`canonical`).
"""

from __future__ import annotations

import errno
import os


def is_protocol(name: str) -> bool:
    """True for names qemu hands to a protocol driver instead of opening as a file.

    qemu's ``path_has_protocol``: the name has a protocol when its first ``:`` comes before any
    ``/``; ``json:{...}`` and URLs (``http://``) are caught by the same rule.
    """
    colon = name.find(":")
    if colon < 0:
        return False
    slash = name.find("/", 0, colon)
    return slash < 0 or "://" in name


def _has_dotdot(path: str) -> bool:
    return "/../" in path or path.endswith("/..")


def canonical(path: str, heads: dict[str, str | None] | None = None) -> str:
    """``path`` made absolute, naming the same file the kernel opens for it.

    ``.`` and doubled slashes are dropped (the kernel ignores them); ``..`` is resolved the
    kernel's way, from the real directory it follows (the directory part goes through
    ``realpath``; the last component stays as named, so a symlinked image keeps its link name).
    A path the kernel cannot walk (a directory on the way is missing or not a directory), and a
    path ending in ``/``, ``/.`` or ``/..`` (the kernel then wants a directory: qemu says "Not a
    directory"), is returned as written, so opening it fails exactly as it does for qemu.

    ``heads``: a memo of the directory part's resolution (a rescan resolves many names that
    climb out of the same directory), valid while no directory on the way changes.
    """
    if not path.startswith("/"):
        path = f"{os.getcwd().rstrip('/')}/{path}"
    if path.endswith(("/", "/.", "/..")):
        return path
    if not _has_dotdot(path):
        return os.path.normpath(path)
    head, tail = path.rsplit("/", 1)
    head = head or "/"
    if heads is not None and head in heads:
        real = heads[head]
    else:
        # kernel resolution: missing, not a directory, no permission
        real = os.path.realpath(head) if os.path.isdir(head) else None
        if heads is not None:
            heads[head] = real
    if real is None:
        return _canonical_missing(head, tail, path)
    return f"{real.rstrip('/')}/{tail}"


def _canonical_missing(head: str, tail: str, path: str) -> str:
    """A path whose directory does not exist, as tidy as the kernel's walk allows.

    The kernel walks the existing directories (following symlinks, then applying ``..``) and
    fails at the first missing one; when no ``..`` comes after that point, the name of the
    missing file is the real existing prefix plus the rest (``clones/../images/x`` with
    ``images`` gone is ``images/x``). A ``..`` after a missing directory is never walked by the
    kernel, so such a path stays as written.
    """
    parts = head.split("/")
    for cut in range(len(parts) - 1, 0, -1):
        prefix = "/".join(parts[:cut]) or "/"
        if os.path.isdir(prefix):
            rest = parts[cut:]
            if ".." in rest or os.path.lexists(f"{prefix.rstrip('/')}/{rest[0]}"):
                return path  # never walked, or there but not a directory: as qemu names it
            real = os.path.realpath(prefix).rstrip("/")
            kept = [p for p in rest if p not in ("", ".")]
            return "/".join([real, *kept, tail])
    return path


def join(overlay_path: str, name: str, heads: dict[str, str | None] | None = None) -> str:
    """qemu's ``path_combine`` followed by the kernel: ``name`` (a file name, never a protocol)
    as opened from the image at ``overlay_path``, made canonical."""
    if name.startswith("/"):
        return canonical(name, heads)
    directory = overlay_path[: overlay_path.rfind("/")] or "/"
    if "/" not in name and name not in (".", ".."):
        # The common case, a plain file name beside the overlay: already canonical (the
        # overlay's path is), and canonical() costs more than the rest of a probe's bookkeeping.
        return f"{directory}/{name}" if directory != "/" else f"/{name}"
    return canonical(f"{directory.rstrip('/')}/{name}", heads)


def resolve(overlay_path: str, name: str, heads: dict[str, str | None] | None = None) -> str | None:
    """The absolute path of the file qemu opens for ``name`` stored in ``overlay_path``.

    A relative name is joined to the directory of the overlay's own path (not the current
    directory and not its realpath) and then walked as the kernel walks it; protocols and empty
    names resolve to nothing.
    """
    if not name or is_protocol(name):
        return None
    return join(overlay_path, name, heads)


def open_error(path: str) -> str | None:
    """Why the kernel cannot reach ``path`` (qemu's words: "Not a directory"), or None."""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ENOTDIR:
            return "Not a directory: a part of the name that must be a directory is not one"
        return exc.strerror or str(exc)
    return None


def relative_name(target_dir: str, file: str) -> str | None:
    """A name to store in an image in ``target_dir`` that the kernel resolves to ``file``.

    The plain ``relpath`` is right when no symlinked directory lies on the way; otherwise the
    name is computed between the real directories (``..`` then climbs what the kernel climbs).
    None when neither name reaches ``file`` (checked with ``samefile``, as qemu will open it).
    """
    candidates = [os.path.relpath(file, target_dir)]
    real_dir = os.path.realpath(os.path.dirname(file))
    candidates.append(
        os.path.relpath(
            os.path.join(real_dir, os.path.basename(file)), os.path.realpath(target_dir)
        )
    )
    for name in candidates:
        if reaches(target_dir, name, file):
            return name
    return None


def reaches(directory: str, name: str, file: str) -> bool:
    """Whether ``name`` stored in an image in ``directory`` opens ``file`` (kernel resolution)."""
    joined = name if name.startswith("/") else f"{directory.rstrip('/')}/{name}"
    try:
        return os.path.samefile(joined, file)
    except OSError:
        return False


def is_within(path: str, root: str) -> bool:
    """Lexically inside ``root`` (both absolute and canonical)."""
    return path == root or path.startswith(root.rstrip("/") + "/")


def is_inside(path: str, root: str) -> bool:
    """Inside ``root`` as written or once both are resolved through symlinks (a root reached
    through a symlink, a backing resolved through a real directory)."""
    if is_within(path, root):
        return True
    if not path or not root:
        return False
    return is_within(os.path.realpath(path), os.path.realpath(root))
