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

At 100,000 images that price is not small: the records are about a million tracked objects, and
each walk of them (the young collection when the pause ends, the middle one, then a full one or
two as the window builds on them) held the GIL for 0.4-0.9 s, event-loop stalls of the same
length. So the window's scan jobs pause with ``keep=True``: when such a pause ends, what is alive
is frozen (``gc.freeze()``), and when the next one begins (the next scan) it is thawed again
(``gc.unfreeze()``). The freeze thus lasts one scan, not the window's life. A cycle that became
garbage while frozen is found by a full collection run when a kept pause begins, but only once
the objects thawed have grown by a quarter since the last such collection (CPython's own rule for
its full collections): each rescan does not pay a walk of the snapshot it replaces, and what
cycles wait meanwhile stays under a quarter of what is alive.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_depth = 0
_was_enabled = True
#: Objects frozen just after the last full collection of thawed objects (``_thaw``).
_kept_base = 0
#: Thawed objects may grow by this share before a kept pause collects them all once.
GROWTH = 0.25


@contextlib.contextmanager
def paused_gc(keep: bool = False) -> Iterator[None]:
    """Automatic collection off until the outermost pause ends; then as it was before.

    ``keep``: what this pause builds is kept (a scan the window shows until the next one): at
    its start what the last kept pause froze is thawed, at its end everything alive is frozen,
    so no collection walks it while it is shown (see the module's docstring)."""
    global _depth, _was_enabled, _kept_base
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
        if keep:
            _thaw()
    try:
        yield
    finally:
        with _lock:
            if keep:
                gc.freeze()
                if not _kept_base:  # the first scan kept: what is alive with it is the base
                    _kept_base = gc.get_freeze_count()
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()


def _thaw() -> None:
    """Unfreezes; collects everything once when the frozen objects grew by ``GROWTH`` since the
    last such collection (cycles that died while frozen are freed then)."""
    global _kept_base
    frozen = gc.get_freeze_count()
    gc.unfreeze()
    if frozen > _kept_base * (1 + GROWTH):
        gc.collect()
        gc.freeze()  # counts what survived, cheaply: a freeze only moves a list
        _kept_base = gc.get_freeze_count()
        gc.unfreeze()
