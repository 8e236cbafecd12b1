"""Qt-free engine: probing, scanning, the chain graph and the operations.

Nothing below this package may import PySide6 (tests/core/test_qt_free.py enforces it), so the
command line and the tests run without a display and the GUI stays a thin adapter.
"""
