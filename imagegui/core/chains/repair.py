"""Where did a missing base go? Candidates among the scanned images, best first.

A base usually goes missing because it was moved or renamed, not deleted, and the copy is often in
the same directory tree. The evidence, strongest first: the same file name as the stored backing
name; the format the overlay recorded; a virtual size equal to the overlay's (qemu-img create -b
gives an overlay its base's size unless told otherwise). An image that is the overlay itself or
backs onto it is never offered: that would make a loop.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from imagegui.core.chains.graph import ChainGraph
from imagegui.core.chains.schema import PROTOCOL
from imagegui.core.read.model import ImageInfo

SAME_NAME = 4
SAME_SIZE = 2
SAME_FORMAT = 1
#: A candidate needs at least the name, or the size and the format, to be worth offering.
MIN_SCORE = SAME_SIZE + SAME_FORMAT


@dataclass(frozen=True)
class Candidate:
    path: str
    score: int
    reasons: tuple[str, ...] = field(default=())

    def describe(self) -> str:
        return ", ".join(self.reasons)


def missing_backing(graph: ChainGraph, image: str) -> str | None:
    """The resolved path ``image`` backs onto when that file is missing or unreadable."""
    target = graph.backing_of(image)
    if target is None or graph.image(target) is not None:
        return None
    if graph.kind(target) == PROTOCOL:
        return None
    return target


def repair_candidates(graph: ChainGraph, image: str, limit: int = 50) -> list[Candidate]:
    info = graph.image(image)
    if info is None or info.backing_file is None:
        return []
    wanted_name = os.path.basename(info.backing_file)
    excluded = {image, *graph.descendants(image)}
    out = []
    pools: list[dict[str, ImageInfo]] = [graph.scan.images, graph.scan.external]
    for pool in pools:
        for path, cand in pool.items():
            if path in excluded:
                continue
            score, reasons = _score(info, cand, wanted_name)
            if score >= MIN_SCORE:
                out.append(Candidate(path, score, tuple(reasons)))
    # Best first; among equals, the one nearest the overlay (fewest directory steps).
    out.sort(key=lambda c: (-c.score, _distance(image, c.path), c.path))
    return out[:limit]


def _score(overlay: ImageInfo, cand: ImageInfo, wanted_name: str) -> tuple[int, list[str]]:
    score = 0
    reasons = []
    if os.path.basename(cand.path) == wanted_name:
        score += SAME_NAME
        reasons.append("same name")
    if cand.virtual_size == overlay.virtual_size:
        score += SAME_SIZE
        reasons.append("same virtual size")
    if overlay.backing_format and cand.format == overlay.backing_format:
        score += SAME_FORMAT
        reasons.append(f"recorded format {cand.format}")
    return score, reasons


def _distance(a: str, b: str) -> int:
    rel = os.path.relpath(os.path.dirname(b), os.path.dirname(a))
    return 0 if rel == "." else rel.count("/") + 1
