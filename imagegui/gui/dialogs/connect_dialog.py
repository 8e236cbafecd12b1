"""File ▸ Connect to libvirt…: add a connection (checked by connecting, on a worker), list and
remove the remembered ones (``Settings.libvirt_uris``).

A connection is remembered only once it answered: a typo would otherwise fail quietly at every
scan. When it does not answer, libvirt's own reason is shown under the field, in the dialog (no
second dialog on top), and the field keeps the text to correct. With none remembered the window
tries this machine's defaults quietly; the dialog says so.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from imagegui.core.jobs import Job
from imagegui.core.virt.connect import DEFAULT_URIS, LibvirtUnreachable, open_connection
from imagegui.gui import a11y
from imagegui.gui.dialogs.fit import fit_to_contents
from imagegui.gui.settings import Settings
from imagegui.gui.workers import TaskSlot

EXAMPLES = (
    "Examples: <b>qemu:///system</b> (this machine's VMs), <b>qemu:///session</b> (your own), "
    "<b>qemu+ssh://user@host/system</b> (another host over SSH, with your SSH key)."
)
DEFAULTS_NOTE = (
    "None added: this machine's VMs are looked for at " + " and ".join(DEFAULT_URIS) + ", quietly."
)


def try_connection(uri: str) -> str:
    """Opens ``uri`` read-only and returns the host's name (on a worker: a host over SSH can take
    seconds); raises ``LibvirtUnreachable`` with libvirt's reason."""
    conn = open_connection(uri)
    try:
        try:
            return str(conn.getHostname() or "")
        except Exception:  # noqa: BLE001 - the name is only for the message; it answered
            return ""
    finally:
        conn.close()


class ConnectDialog(QDialog):
    #: The remembered connections changed (the window reads the hosts again).
    urisChanged = Signal()
    #: A check of the field's connection ended: (uri, "" when it answered else the reason).
    checked = Signal(str, str)

    def __init__(self, settings: Settings, parent: QWidget | None = None):
        super().__init__(parent)
        self.settings = settings
        self.setWindowTitle("Connect to libvirt")
        self.uri = QLineEdit()
        self.uri.setPlaceholderText("qemu:///system")
        self.uri.setAccessibleName("Connection address")
        self.uri.setToolTip(
            "A libvirt connection address (URI): this machine's daemon, or another host's "
            "through SSH"
        )
        self.add = QPushButton("&Add")
        self.add.setAccessibleName("Add the connection")
        self.add.setToolTip("Connects to it (read-only) and, when it answers, remembers it")
        self.add.setEnabled(False)
        examples = QLabel(EXAMPLES)
        examples.setWordWrap(True)
        examples.setObjectName("hint")
        self.result = QLabel()
        self.result.setObjectName("verdict")
        self.result.setWordWrap(True)
        self.result.setTextFormat(Qt.TextFormat.PlainText)
        self.result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.result.setAccessibleName("Result of the connection check")
        self.result.hide()
        self.list = QListWidget()
        self.list.setAccessibleName("Remembered connections")
        self.list.setToolTip("Read with every scan; each is one section in the libvirt Hosts panel")
        self.remove = QPushButton("&Remove")
        self.remove.setAccessibleName("Remove the selected connection")
        self.remove.setToolTip("Forget the selected connection (nothing on the host changes)")
        self.defaults = QLabel(DEFAULTS_NOTE)
        self.defaults.setObjectName("hint")
        self.defaults.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.Close).setAutoDefault(False)

        line = QHBoxLayout()
        line.addWidget(self.uri, 1)
        line.addWidget(self.add)
        form = QFormLayout()
        form.addRow("&Connection:", line)
        label = form.labelForField(line)
        if isinstance(label, QLabel):
            label.setBuddy(self.uri)
        rows = QHBoxLayout()
        rows.addWidget(self.list, 1)
        side = QVBoxLayout()
        side.addWidget(self.remove)
        side.addStretch(1)
        rows.addLayout(side)
        box = QVBoxLayout(self)
        box.addLayout(form)
        box.addWidget(examples)
        box.addWidget(self.result)
        remembered = QLabel("&Remembered connections:")
        remembered.setBuddy(self.list)
        box.addWidget(remembered)
        box.addLayout(rows, 1)
        box.addWidget(self.defaults)
        box.addWidget(buttons)

        self._check = TaskSlot(self, on_done=self._on_answered, on_failed=self._on_failed)
        self._checking: str | None = None
        self.uri.textChanged.connect(self._on_text_changed)
        self.uri.returnPressed.connect(self.try_add)
        self.add.clicked.connect(self.try_add)
        self.remove.clicked.connect(self.remove_selected)
        self.list.currentRowChanged.connect(lambda _r: self._update_buttons())
        self._fill()
        a11y.name_dialog(self)
        fit_to_contents(self, 560)

    # -- the list

    def uris(self) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count())]

    def _fill(self) -> None:
        self.list.clear()
        self.list.addItems(self.settings.libvirt_uris())
        self.defaults.setVisible(self.list.count() == 0)
        self._update_buttons()

    def _update_buttons(self) -> None:
        self.remove.setEnabled(self.list.currentRow() >= 0)
        text = self.uri.text().strip()
        self.add.setEnabled(bool(text) and self._checking is None)

    def remove_selected(self) -> None:
        row = self.list.currentRow()
        if row < 0:
            return
        uri = self.list.item(row).text()
        self.settings.set_libvirt_uris([u for u in self.uris() if u != uri])
        self._fill()
        self._say(f"Removed {uri}.", "ok")
        self.urisChanged.emit()

    # -- adding

    def _on_text_changed(self, _text: str) -> None:
        self.result.hide()
        self._update_buttons()

    def try_add(self) -> None:
        """Connects to the field's address on a worker; it is remembered when it answers."""
        uri = self.uri.text().strip()
        if not uri or self._checking is not None:
            return
        if uri in self.uris():
            self._say(f"{uri} is already remembered.", "ok")
            return
        self._checking = uri
        self._update_buttons()
        self._say(f"Connecting to {uri}…")
        self._check.start(Job(f"Connect to {uri}", lambda _p, _c: try_connection(uri)))

    def _on_answered(self, hostname: str) -> None:
        uri, self._checking = self._checking or "", None
        self.settings.set_libvirt_uris([*self.uris(), uri])
        self._fill()
        self.uri.clear()
        host = f" ({hostname})" if hostname else ""
        self._say(f"Connected to {uri}{host}: remembered.", "ok")
        self.urisChanged.emit()
        self.checked.emit(uri, "")

    def _on_failed(self, exc: BaseException) -> None:
        uri, self._checking = self._checking or "", None
        reason = exc.reason if isinstance(exc, LibvirtUnreachable) else str(exc)
        self._say(f"Not added: {uri} did not answer: {reason}", "refused")
        self._update_buttons()
        self.uri.setFocus()
        self.checked.emit(uri, reason)

    def _say(self, text: str, verdict: str = "pending") -> None:
        """The check's outcome under the field, coloured as a plan's verdict is."""
        self.result.setText(text)
        self.result.setProperty("verdict", verdict)
        self.result.style().unpolish(self.result)
        self.result.style().polish(self.result)
        self.result.show()
        fit_to_contents(self, 560)

    def done(self, result: int) -> None:
        self._check.discard()  # a slow host over SSH: nothing arrives after the dialog closed
        super().done(result)
