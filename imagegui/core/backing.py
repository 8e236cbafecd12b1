"""How qemu turns a stored backing name into something to open (block.c, qemu's own rules)."""

from __future__ import annotations

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


def resolve(overlay_path: str, name: str) -> str | None:
    """The absolute, normalised path qemu opens for ``name`` stored in ``overlay_path``.

    A relative name is joined to the directory of the overlay's own path (not the current
    directory and not its realpath); protocols and empty names resolve to nothing.
    """
    if not name or is_protocol(name):
        return None
    if name.startswith("/"):
        return os.path.normpath(name)
    directory = overlay_path[: overlay_path.rfind("/")] or "/"
    if "/" not in name and name not in (".", ".."):
        # The common case, a plain file name beside the overlay: already normal (the overlay's
        # path is), and normpath costs more than the rest of a probe's bookkeeping.
        return f"{directory}/{name}" if directory != "/" else f"/{name}"
    return os.path.normpath(os.path.join(directory, name))


def is_within(path: str, root: str) -> bool:
    """Lexically inside ``root`` (both absolute and normalised)."""
    return path == root or path.startswith(root.rstrip("/") + "/")
