"""Failure and result boxes. Shown with ``open()`` (window-modal, non-blocking), never ``exec()``:
a job's failure arrives in a slot, and a nested event loop there would stall everything else."""

from __future__ import annotations

import shlex

from PySide6.QtWidgets import QMessageBox, QWidget

from imagegui.core.guards import GuardRefused
from imagegui.core.units import display_path


def failure_box(parent: QWidget | None, title: str, exc: object, hint: str = "") -> QMessageBox:
    """qemu's own words for a failed operation: the message says what to do, the details hold
    the exact command and qemu-img's stderr."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Critical)
    box.setWindowTitle(title)
    if isinstance(exc, GuardRefused):
        box.setText(f"<b>{title}</b> was refused: something changed since the plan was shown.")
        box.setInformativeText("\n".join(f"• {display_path(f.message)}" for f in exc.findings))
    else:
        box.setText(f"<b>{title}</b> failed.")
        box.setInformativeText(display_path(str(exc)) + (f"\n\n{hint}" if hint else ""))
    details = []
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
    box.setModal(False)
    box.open()
    return box


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
        box.setInformativeText(informative)
    box.setStandardButtons(QMessageBox.StandardButton.Close)
    box.setModal(False)
    box.open()
    return box


def check_result_box(parent: QWidget | None, result) -> QMessageBox:
    """The outcome of ``qemu-img check``: each problem with its next step."""
    problems = result.data.get("problems", [])
    if not problems:
        return info_box(
            parent,
            "Check",
            f"<b>{display_path(result.message)}</b>",
            "The check found no corruption and no leaked clusters.",
        )
    worst = any(p.severity == "error" for p in problems)
    text = "\n".join(f"• [{p.severity}] {display_path(p.message)}" for p in problems)
    return info_box(
        parent,
        "Check",
        f"<b>{display_path(result.message)}</b>",
        text,
        QMessageBox.Icon.Critical if worst else QMessageBox.Icon.Warning,
    )
