"""Pause Python's cyclic garbage collector around bulk work that makes no reference cycles.

A scan, a graph build or a JSON dump of 100,000 images allocates millions of small objects; the
collector, triggered by allocation counts, re-traverses everything alive each time, which made
those phases 1.5x slower. Reference counting still frees everything; only cycle detection waits.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
