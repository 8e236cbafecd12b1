"""Keeping Python's cyclic garbage collector out of bulk work that makes no reference cycles.

A scan, a graph build or a JSON dump of 100,000 images allocates millions of small objects; the
collector, triggered by allocation counts, re-walks everything alive again and again while they
are built (those phases ran 1.5x slower with it). ``paused_gc()`` switches automatic collection
off for the duration (process-wide, counted, so overlapping scans on worker threads nest, and
the outermost pause decides when collection comes back).

What it never does is ``gc.freeze()``. This module used to freeze everything alive at the end of
each pause and again when the window received a scan, so that no later collection walked the
records again. But a freeze is process-wide and permanent: it pins every object alive at that
moment, the scan's records *and* whatever else the window held then (dialogs, models, a cycle
waiting to be collected), and a cycle among frozen objects is never collected, however long
the window stays open; each rescan added more. Since the records outlive the scan (the window
shows them until the next one), "freeze only what dies with the scan" would freeze nothing, so
no pause freezes anything and ``gc.get_freeze_count()`` stays what it was.

The price, measured at 10,000 images: when a pause ends, the objects built during it are young,
and the next young collection walks them once (about 20 ms, GIL held, on whichever thread
allocates next); collections of the older generations walk them again later, and CPython runs a
full collection only once the old generation has grown by a quarter, so about once per
rescan. In the window that is a stall well inside the 100 ms budget; the command line avoids it
by pausing once around a whole ``scan``/``check`` (the inner pauses nest, nothing is walked
between the scan, the graph and the output, and the process ends right after).
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_depth = 0
_was_enabled = True


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Automatic collection off until the outermost pause ends; then as it was before."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
