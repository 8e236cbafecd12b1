"""Which bytes of a virtual disk one layer of a chain decides: the records space accounting
(``core.chains.space``) works with, and the arithmetic on them.

A layer *holds data* where its own file stores the guest's bytes, and *covers* wherever a read
stops at it: its data plus the ranges it marks as zeroes (a qcow2 zero cluster, a qed/vmdk
zeroed grain), which hide the backing file's bytes just as well. Everything else falls through
to the backing file. A raw image (no backing) covers its whole disk.

Ranges are tuples of ``(start, end)`` pairs, end exclusive, sorted and neither overlapping nor
touching: one canonical form, so equality of two maps is equality of tuples.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

Range = tuple[int, int]
Ranges = tuple[Range, ...]


def normalise(pairs: Iterable[Range]) -> Ranges:
    """Sorted, merged, empty pairs dropped: the canonical form of any list of ranges."""
    out: list[list[int]] = []
    for start, end in sorted(pairs):
        if end <= start:
            continue
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1][1] = end
        else:
            out.append([start, end])
    return tuple((a, b) for a, b in out)


def total(ranges: Ranges) -> int:
    return sum(end - start for start, end in ranges)


def union(*many: Ranges) -> Ranges:
    """Bytes in any of ``many`` (each canonical). One non-empty input is returned as it is and
    two that do not meet are joined: the common cases of adding a layer to a chain."""
    some = [r for r in many if r]
    if len(some) <= 1:
        return some[0] if some else ()
    if len(some) == 2:
        a, b = some
        if a[-1][1] < b[0][0]:
            return a + b
        if b[-1][1] < a[0][0]:
            return b + a
    return normalise(pair for ranges in some for pair in ranges)


def intersect(a: Ranges, b: Ranges) -> Ranges:
    """Bytes in both ``a`` and ``b`` (a two-pointer sweep; both canonical)."""
    if not a or not b or a[-1][1] <= b[0][0] or b[-1][1] <= a[0][0]:
        return ()
    out: list[Range] = []
    i = j = 0
    while i < len(a) and j < len(b):
        start = max(a[i][0], b[j][0])
        end = min(a[i][1], b[j][1])
        if start < end:
            out.append((start, end))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


def subtract(a: Ranges, b: Ranges) -> Ranges:
    """Bytes of ``a`` not in ``b`` (both canonical)."""
    out: list[Range] = []
    j = 0
    for start, end in a:
        while j < len(b) and b[j][1] <= start:
            j += 1
        k = j
        cur = start
        while k < len(b) and b[k][0] < end:
            if b[k][0] > cur:
                out.append((cur, b[k][0]))
            cur = max(cur, b[k][1])
            k += 1
        if cur < end:
            out.append((cur, end))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class LayerMap:
    """What one image file decides of its virtual disk, by itself (its backing file not read).
    Kept for every image while the window shows a scan (the space report's maps): slots, and
    equal maps shared (``gui.spacejob``), keep 100,000 of them small."""

    virtual_size: int
    #: Guest bytes stored in this file.
    data: Ranges
    #: Guest bytes this layer reads as zeroes without storing them (they hide the backing file).
    zero: Ranges = ()
    #: How the map was read: "native" (the allocation tables parsed here) or "qemu-img map".
    source: str = "native"

    @property
    def covers(self) -> Ranges:
        """Every byte a read stops at this layer for."""
        return union(self.data, self.zero) if self.zero else self.data

    @property
    def guest_data(self) -> int:
        return total(self.data)


class MapUnavailable(Exception):
    """This layer's allocation map cannot be read here (natively or at all); the message says
    why in words a user can act on."""
