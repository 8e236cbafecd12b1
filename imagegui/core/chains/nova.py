"""OpenStack Nova's image cache: the images in an ``instances/_base`` directory, how many
instance disks still back onto each, and whether Nova's own clean-up would remove it now.

Nova keeps one copy of every Glance image its instances were started from in ``_base``, named by
the SHA-1 of the image id (plus ``_<size in GiB>`` for a copy resized for a flavour); instance
disks are qcow2 overlays onto them. With ``remove_unused_base_images`` on (the default), the
compute node deletes a base no instance uses once it is older than the minimum ages below.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from imagegui.core.read.model import ImageInfo

if TYPE_CHECKING:
    import networkx

_RESIZED = re.compile(r"^[0-9a-f]{40}_\d+$")
#: Nova's defaults for removing unused cached bases (remove_unused_*_minimum_age_seconds).
ORIGINAL_MIN_AGE = 86400
RESIZED_MIN_AGE = 3600


@dataclass(frozen=True)
class NovaBase:
    """An image in an OpenStack Nova ``instances/_base`` cache and who still uses it."""

    path: str
    #: Images that back onto it directly (instance disks): what Nova counts.
    used_by: int
    age_seconds: float
    resized: bool

    @property
    def unused(self) -> bool:
        return self.used_by == 0

    @property
    def nova_would_remove(self) -> bool:
        """Nova (remove_unused_base_images on, default ages) would delete it on its next pass."""
        limit = RESIZED_MIN_AGE if self.resized else ORIGINAL_MIN_AGE
        return self.unused and self.age_seconds > limit

    def to_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "used_by": self.used_by,
            "unused": self.unused,
            "age_seconds": round(self.age_seconds, 1),
            "resized": self.resized,
            "nova_would_remove": self.nova_would_remove,
        }


def is_cached_base(path: str) -> bool:
    """Whether ``path`` lies directly in a directory named ``_base``."""
    # The substring test first: this runs for every image of a scan.
    return "/_base/" in path and os.path.basename(os.path.dirname(path)) == "_base"


def find_bases(
    g: networkx.DiGraph[str], images: Mapping[str, ImageInfo], now: float
) -> list[NovaBase]:
    """Every scanned image in a ``_base`` directory, by path, with the overlays that use it:
    its in-degree in the chain graph (edges point from an overlay to its backing file)."""
    bases = [
        NovaBase(
            path=path,
            used_by=g.in_degree(path),
            age_seconds=max(0.0, now - info.mtime),
            resized=bool(_RESIZED.match(os.path.basename(path))),
        )
        for path, info in images.items()
        if is_cached_base(path)
    ]
    bases.sort(key=lambda b: b.path)
    return bases
