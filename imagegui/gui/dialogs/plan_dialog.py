"""The shape every writing dialog shares: fields on top, the operation's plan below, OK last.

The plan (exact command lines, what will change, every guard's finding) is what ``--dry-run``
prints on the command line. Planning reads headers, asks the kernel about locks and may scan the
directory for other users of a base, so it runs on the worker pool, again after every change of a
field (debounced); a stale answer is dropped by its generation number. OK is enabled only for a
fresh plan that nothing blocks, and the run itself checks the guards once more.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from imagegui.core.jobs import Job
from imagegui.core.operations import Plan
from imagegui.core.units import display_path
from imagegui.gui import resources, theme
from imagegui.gui.workers import start_job

DEBOUNCE_MS = 250
_LEVEL_ICON = {"refuse": "state-error", "warn": "state-warning", "info": "state-ok"}


def plan_html(plan: Plan) -> str:
    """The plan as the preview shows it: commands first, because that is what will run."""
    parts = ["<h4 style='margin-bottom:2px'>Will run</h4>"]
    for line in plan.command_lines() or ["(nothing)"]:
        parts.append(
            "<pre class='code' style='padding:6px; white-space:pre-wrap'>$ "
            f"{escape(display_path(line))}</pre>"
        )
    parts.append("<h4 style='margin-bottom:2px'>What changes</h4><ul style='margin-top:0'>")
    parts += [f"<li>{escape(display_path(c))}</li>" for c in plan.changes] or ["<li>nothing</li>"]
    parts.append("</ul>")
    if plan.findings:
        parts.append("<h4 style='margin-bottom:2px'>Checks</h4>")
        for f in plan.findings:
            forced = f.level == "refuse" and plan.force and f.overridable
            icon = resources.icon_path("state-warning" if forced else _LEVEL_ICON[f.level])
            tag = (
                "forced"
                if forced
                else {"refuse": "refused", "warn": "warning"}.get(f.level, "note")
            )
            parts.append(
                f"<p><img src='{icon.as_uri()}' width='14' height='14'> <b>{tag}</b>: "
                f"{escape(display_path(f.message))}</p>"
            )
    return "".join(parts)


class PlanDialog(QDialog):
    #: The fresh plan (None while the fields are invalid); tests wait for it.
    planReady = Signal(object)

    def __init__(self, title: str, ok_text: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setMinimumWidth(640)
        self.plan: Plan | None = None
        self.planning = False
        self._generation = 0
        self.intro = QLabel()
        self.intro.setWordWrap(True)
        self.intro.setTextFormat(Qt.TextFormat.RichText)
        self.intro.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.form = QFormLayout()
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        self.verdict = QLabel("Checking…")
        self.verdict.setObjectName("verdict")
        self.verdict.setWordWrap(True)
        self.preview = QTextBrowser()
        self.preview.setOpenLinks(False)
        self.preview.setMinimumHeight(220)
        # The code block's and links' colours come from the palette (gui/theme.py).
        self.preview.document().setDefaultStyleSheet(theme.current().html_css())
        theme.watcher().changed.connect(self._on_theme_changed)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText(ok_text)
        self.ok_button.setEnabled(False)
        self.copy_button = QPushButton(resources.icon("edit-copy"), "Copy command")
        self.copy_button.setToolTip("Copy the exact command line(s) to the clipboard")
        self.copy_button.setEnabled(False)
        self.copy_button.clicked.connect(self._on_copy_clicked)
        self.buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.HelpRole)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        box = QVBoxLayout(self)
        box.addWidget(self.intro)
        box.addLayout(self.form)
        box.addWidget(self.verdict)
        box.addWidget(self.preview, 1)
        box.addWidget(self.buttons)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self.replan)
        self._set_verdict("pending", "Checking…")

    def _on_theme_changed(self) -> None:
        self.preview.document().setDefaultStyleSheet(theme.current().html_css())
        if self.plan is not None:
            self.preview.setHtml(plan_html(self.plan))

    # -- for subclasses

    def planner(self) -> Callable[[], Plan] | str:
        """A callable that makes the plan from the current fields (it runs on a worker, so it
        must capture plain values, not widgets), or a message saying what is wrong."""
        raise NotImplementedError

    def fields_changed(self) -> None:
        """Connect every field's change signal here."""
        self._generation += 1  # a plan still on its way is for the old fields
        self.planning = False
        self.plan = None
        self.ok_button.setEnabled(False)
        self._set_verdict("pending", "Checking…")
        self._debounce.start()

    # -- planning

    def replan(self) -> None:
        self._debounce.stop()
        self._generation += 1
        make = self.planner()
        if isinstance(make, str):
            self.planning = False
            self.plan = None
            self.ok_button.setEnabled(False)
            self.copy_button.setEnabled(False)
            self._set_verdict("refused", make)
            self.preview.clear()
            self.planReady.emit(None)
            return
        self.planning = True
        generation = self._generation
        start_job(
            Job("plan", lambda p, c: (generation, make())),
            finished=self._on_planned,
            failed=self._on_plan_failed,
        )

    def _on_planned(self, result: tuple[int, Plan]) -> None:
        generation, plan = result
        if generation != self._generation:
            return
        self.planning = False
        self.plan = plan
        self.preview.setHtml(plan_html(plan))
        self.copy_button.setEnabled(bool(plan.commands))
        blocking = plan.blocking()
        if blocking:
            self._set_verdict("refused", "Refused: " + display_path(blocking[0].message))
        else:
            self._set_verdict("ok", self.ready_text(plan))
        self.ok_button.setEnabled(not blocking)
        self.planReady.emit(plan)

    def _on_plan_failed(self, exc: object) -> None:
        self.planning = False
        self.plan = None
        self.ok_button.setEnabled(False)
        self._set_verdict("refused", f"Could not plan this: {exc}")
        self.planReady.emit(None)

    def ready_text(self, plan: Plan) -> str:
        warnings = sum(1 for f in plan.findings if f.level == "warn")
        if warnings:
            return f"Ready, with {warnings} warning{'s' * (warnings > 1)}: read them below."
        return "Ready: every check passed."

    def _set_verdict(self, kind: str, text: str) -> None:
        self.verdict.setText(text)
        self.verdict.setProperty("verdict", kind)
        self.verdict.style().unpolish(self.verdict)
        self.verdict.style().polish(self.verdict)

    def _on_copy_clicked(self) -> None:
        if self.plan is not None:
            QGuiApplication.clipboard().setText("\n".join(self.plan.command_lines()))

    # -- closing

    def accept(self) -> None:
        """Only a fresh plan that nothing blocks is accepted (a test calls this directly)."""
        if self.planning or self._debounce.isActive() or self.plan is None or self.plan.refused:
            return
        super().accept()

    def done(self, result: int) -> None:
        self._debounce.stop()
        self._generation += 1  # drop any plan still on its way
        super().done(result)
