"""Qt-free engine: probing, scanning, the chain graph and the operations.

Nothing below this package may import PySide6 (tests/core/test_qt_free.py enforces it), so the
command line and the tests run without a display and the GUI stays a thin adapter.
"""

import logging

# Until ``imagegui.logsetup`` installs the real handlers (the CLI and the window do), records
# go nowhere: a library use or a test must not get warnings on stderr from logging's fallback.
logging.getLogger("imagegui").addHandler(logging.NullHandler())
