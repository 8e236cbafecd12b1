"""Failure and result boxes. Shown with ``open()`` (window-modal, non-blocking), never ``exec()``:
a job's failure arrives in a slot, and a nested event loop there would stall everything else."""

from __future__ import annotations

import shlex

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices, QFontDatabase, QTextCursor
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from imagegui import logsetup
from imagegui.core.chains.diagnose import Level
from imagegui.core.ops.check import CheckResult
from imagegui.core.ops.plan import GuardRefused
from imagegui.core.units import display_path
from imagegui.gui import a11y

#: A box lists at most this many lines, the rest under Show Details: it never outgrows the screen.
MAX_LINES = 12


def _informative(box: QMessageBox, lines: list[str], details: list[str]) -> None:
    """Sets the box's informative text to the first lines; the rest go to the details."""
    shown = lines if len(lines) <= MAX_LINES else lines[: MAX_LINES - 1]
    rest = lines[len(shown) :]
    if rest:
        shown = [*shown, f"… and {len(rest)} more (Show Details…)"]
        details.insert(0, "\n".join(lines))
    box.setInformativeText("\n".join(shown))


def failure_box(parent: QWidget | None, title: str, exc: object, hint: str = "") -> QMessageBox:
    """qemu's own words for a failed operation: the message says what to do, the details hold
    the exact command and qemu-img's stderr."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Critical)
    box.setWindowTitle(title)
    details: list[str] = []
    if isinstance(exc, GuardRefused):
        box.setText(f"<b>{title}</b> was refused: something changed since the plan was shown.")
        _informative(box, [f"• {display_path(f.message)}" for f in exc.findings], details)
    else:
        box.setText(f"<b>{title}</b> failed.")
        box.setInformativeText(display_path(str(exc)) + (f"\n\n{hint}" if hint else ""))
    argv = getattr(exc, "argv", None)
    if argv:
        details.append("$ " + shlex.join(argv))
    if getattr(exc, "returncode", None) is not None:
        details.append(f"exit status {exc.returncode}")  # type: ignore[attr-defined]
    stderr = getattr(exc, "stderr", "")
    if stderr:
        details.append(stderr.strip())
    if details:
        box.setDetailedText(display_path("\n".join(details)))
    box.setStandardButtons(QMessageBox.StandardButton.Close)
    add_show_log(box, parent)
    box.setModal(False)
    a11y.name_dialog(box)
    box.open()
    return box


#: The button every failure box has: what the program did before it failed is in the log.
SHOW_LOG = "Show Log"


def add_show_log(box: QMessageBox, parent: QWidget | None) -> QPushButton:
    button = box.addButton(SHOW_LOG, QMessageBox.ButtonRole.ActionRole)
    button.setToolTip("What imagegui did before this happened, from its log file")
    button.clicked.connect(lambda: log_dialog(parent))
    return button


def log_dialog(parent: QWidget | None) -> QDialog:
    """The end of the log file in a window (scrolled to the newest line), with a button that
    opens the whole file in the desktop's text viewer."""
    path = logsetup.log_path()
    dialog = QDialog(parent)
    dialog.setWindowTitle("Log")
    layout = QVBoxLayout(dialog)
    where = QLabel(f"The newest entries of {display_path(str(path))}:")
    where.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    layout.addWidget(where)
    text = QPlainTextEdit(dialog)
    text.setObjectName("logText")
    text.setAccessibleName("Log")
    text.setReadOnly(True)
    text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
    text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
    text.setPlainText(logsetup.tail(path) if path.exists() else "Nothing has been logged yet.")
    text.moveCursor(QTextCursor.MoveOperation.End)
    layout.addWidget(text)
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, dialog)
    open_file = buttons.addButton("Open Log File", QDialogButtonBox.ButtonRole.ActionRole)
    open_file.setEnabled(path.exists())
    open_file.clicked.connect(lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(path))))
    buttons.rejected.connect(dialog.reject)
    layout.addWidget(buttons)
    dialog.resize(900, 500)
    dialog.setModal(False)
    a11y.name_dialog(dialog)
    dialog.open()
    return dialog


def info_box(
    parent: QWidget | None,
    title: str,
    text: str,
    informative: str = "",
    icon: QMessageBox.Icon = QMessageBox.Icon.Information,
) -> QMessageBox:
    box = QMessageBox(parent)
    box.setIcon(icon)
    box.setWindowTitle(title)
    box.setText(text)
    if informative:
        details: list[str] = []
        _informative(box, informative.split("\n"), details)
        if details:
            box.setDetailedText("\n".join(details))
    box.setStandardButtons(QMessageBox.StandardButton.Close)
    box.setModal(False)
    a11y.name_dialog(box)
    box.open()
    return box


def check_result_box(parent: QWidget | None, result: CheckResult) -> QMessageBox:
    """The outcome of ``qemu-img check``: each problem with its next step."""
    problems = result.problems
    if not problems:
        return info_box(
            parent,
            "Check",
            f"<b>{display_path(result.message)}</b>",
            "The check found no corruption and no leaked clusters.",
        )
    worst = any(p.level == Level.ERROR for p in problems)
    text = "\n".join(f"• [{p.level}] {display_path(p.message)}" for p in problems)
    return info_box(
        parent,
        "Check",
        f"<b>{display_path(result.message)}</b>",
        text,
        QMessageBox.Icon.Critical if worst else QMessageBox.Icon.Warning,
    )
