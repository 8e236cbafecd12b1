"""What the window shows before a directory is open: what to do, and the recent directories."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QPushButton, QVBoxLayout, QWidget

from imagegui.core.units import display_path
from imagegui.gui import resources


class WelcomePage(QWidget):
    openRequested = Signal()
    demoRequested = Signal()
    recentRequested = Signal(str)
    #: Stop Scanning, from the button shown while a first folder is scanned (``set_scanning``).
    stopRequested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("welcome")
        logo = QLabel(pixmap=resources.app_icon().pixmap(96, 96))
        logo.setAccessibleName("imagegui logo")
        logo.setAlignment(Qt.AlignmentFlag.AlignCenter)
        title = QLabel("<h2>imagegui</h2>")
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.status = QLabel(
            "See every QEMU/KVM disk-image chain in a directory, spot what is broken, and act "
            "on it safely.<br>Open a directory, or drop a folder onto this window."
        )
        self.status.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.status.setWordWrap(True)
        self.status.setObjectName("hint")
        open_button = QPushButton(resources.icon("document-open"), "Open Directory…")
        open_button.setDefault(True)
        open_button.clicked.connect(self.openRequested)
        demo_button = QPushButton("Open the Demo")
        demo_button.setToolTip(
            "A directory made with qemu-img showing every kind of chain and trouble"
        )
        demo_button.clicked.connect(self.demoRequested)
        #: Shown while the first folder is scanned: where the user looks, not only the status bar.
        self.stop = QPushButton(resources.icon("stop"), "Stop Scanning")
        self.stop.setToolTip("Stop the scan (Esc); open another directory or the demo instead")
        self.stop.clicked.connect(self.stopRequested)
        self.stop.hide()
        self._recent = QVBoxLayout()
        self._recent.setSpacing(0)
        box = QVBoxLayout(self)
        box.addStretch(2)
        box.addWidget(logo)
        box.addWidget(title)
        box.addWidget(self.status)
        box.addSpacing(12)
        for button in (self.stop, open_button, demo_button):
            button.setMinimumWidth(220)
            box.addWidget(button, 0, Qt.AlignmentFlag.AlignHCenter)
        box.addSpacing(12)
        box.addLayout(self._recent)
        box.addStretch(3)

    def set_recent(self, dirs: list[str]) -> None:
        while self._recent.count():
            item = self._recent.takeAt(0)
            if item.widget():
                item.widget().deleteLater()
        if not dirs:
            return
        header = QLabel("<b>Recent</b>")
        header.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._recent.addWidget(header)
        for path in dirs[:6]:
            button = QPushButton(display_path(path))
            button.setFlat(True)
            button.setToolTip(f"Open {display_path(path)}")
            button.clicked.connect(lambda _=False, p=path: self.recentRequested.emit(p))
            self._recent.addWidget(button, 0, Qt.AlignmentFlag.AlignHCenter)

    def show_message(self, text: str) -> None:
        self.status.setText(text)

    def set_scanning(self, scanning: bool) -> None:
        self.stop.setVisible(scanning)
