"""Keeping Python's cyclic garbage collector from freezing the window at 10,000 images.

A full (generation 2) collection walks every tracked object; with a scan of 10,000 images loaded
that is ~50 ms in one go, on whichever thread allocates, holding the GIL - a visible stall. The
records a scan produces are long-lived and free of reference cycles (they are released by
reference counting when the next scan replaces them), so:

- ``paused()`` switches automatic collection off while a scan builds them (process-wide, counted,
  so overlapping scans nest), which also makes the scan faster, and freezes what was built;
- ``settle()`` is called in the GUI thread when a scan's result arrives: ``gc.freeze()`` moves
  everything alive to the permanent generation, so later collections only walk new objects.
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
def paused() -> Iterator[None]:
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
            if _depth == 0:
                # Everything allocated meanwhile sits in generation 0; the first collection after
                # enabling would walk all of it (20 ms at 10,000 images). Freeze it first.
                gc.freeze()
                if _was_enabled:
                    gc.enable()


def settle() -> None:
    """Takes every object alive now out of future collections (cheap: no walk happens)."""
    gc.freeze()
