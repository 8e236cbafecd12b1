"""A guard against a PySide6 6.12.0 reference-count bug on Python 3.10/3.11.

PySide6 6.12.0's generated wrappers return ``None`` from every ``void`` C++ method without taking a
reference to it (harmless from Python 3.12 on, where ``None`` is immortal). On 3.11 each such call
(``setPos``, ``update``, ``setText``, ...) drops ``None``'s reference count by one, and after a few
thousand calls the interpreter aborts with "Fatal Python error: none_dealloc" (reproduced: a loop
of ``QObject.setObjectName`` under 6.12.0 on 3.11.7 aborts, exit 134). 6.11.x does not have the
bug.

Why both a pin and this guard: ``pyproject.toml`` excludes exactly 6.12.0 (``!=6.12.0``), so pip
never picks it, while a fixed 6.12.x and Python 3.12+ users are not held back by a ``<6.12`` cap.
But 6.12.0 can still arrive - a distribution's package, ``pip install --no-deps``, a constraints
file, an environment made before the pin - and then this guard keeps the window alive (the GUI
tests pass under 6.12.0 on 3.11 with it).

The fix is to make ``None`` effectively immortal, as 3.12 does: its count is raised by 2**48 once,
which no program can call its way through. It is applied only when the leak is measured, so a
fixed PySide6 (or Python 3.12+) is left alone.
"""

from __future__ import annotations

import ctypes
import sys

#: Added to None's reference count when the leak is present (3.12's immortal count is 2**32-1).
_HEADROOM = 1 << 48

applied = False


def leaks_none() -> bool:
    """Measures whether a ``void`` PySide6 call loses a reference to ``None``."""
    from PySide6.QtCore import QObject

    probe = QObject()
    before = sys.getrefcount(None)
    for _ in range(16):
        probe.setObjectName("probe")
    after = sys.getrefcount(None)
    del probe
    return after < before


def apply() -> bool:
    """Applies the fix if needed (idempotent); returns whether it is in effect."""
    global applied
    if applied:
        return True
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False
    if not leaks_none():
        return False
    # ob_refcnt is the first field of every PyObject in a release build of CPython.
    ctypes.c_ssize_t.from_address(id(None)).value += _HEADROOM
    applied = True
    return True
