"""The PySide6 window over the core engine. Nothing outside this package imports Qt."""

from imagegui.gui import qtfix

qtfix.apply()
