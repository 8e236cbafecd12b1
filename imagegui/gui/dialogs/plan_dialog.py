"""The shape every writing dialog shares: fields on top, the operation's plan below, OK last.

The plan (exact command lines, what will change, every guard's finding) is what ``--dry-run``
prints on the command line. Planning reads headers, asks the kernel about locks and may scan the
directory for other users of a base, so it runs on the worker pool, again after every change of a
field (debounced), in the dialog's task slot: a new plan supersedes the one on its way, and a
change of the fields discards it, so a plan for old fields never arrives. OK is enabled only for
a fresh plan that nothing blocks, and the run itself checks the guards once more.

A plan that destroys or may corrupt data (a commit, an unsafe rebase, a forced guard) is never
the easy choice: Cancel is the default button, so Enter runs nothing; the run button names the
consequence; a forced override shows red and needs the base's name typed before it runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from html import escape

from PySide6.QtCore import QEvent, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication, QKeyEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from imagegui.core.jobs import Job
from imagegui.core.ops.plan import ACCESS_CODES, LEVEL_WORDS, Finding, Plan
from imagegui.core.units import display_path
from imagegui.core.virt.inventory import DomainSource
from imagegui.gui import a11y, resources, theme
from imagegui.gui.dialogs.fit import fit_to_contents
from imagegui.gui.panels.chains_model import LEVEL_ICON
from imagegui.gui.workers import TaskSlot

DEBOUNCE_MS = 250
#: Refusals (and their "allowed" notes) that name one file the user may allow explicitly.
_ALLOW_CODES = (*ACCESS_CODES, "allowed")


def scan_roots(root: str) -> tuple[str, ...]:
    """The scanned folder as the plans' ``roots`` (none when the dialog was opened without)."""
    return (root,) if root else ()


def forced_findings(plan: Plan) -> list[Finding]:
    """The refusals a forced plan lifts: each one is data that will be damaged."""
    return [f for f in plan.findings if plan.forced(f)]


def is_destructive(plan: Plan) -> bool:
    """A commit rewrites its base, an unsafe rebase changes what the guest sees without copying
    anything, a forced plan overrides a guard: each can destroy data, so none is the default."""
    return (
        plan.op == "commit" or bool(getattr(plan, "unsafe", False)) or bool(forced_findings(plan))
    )


_PATH_RUN = re.compile(r"/[^,:;\s]+(?:, /[^,:;\s]+){2,}")


def count_paths(text: str) -> str:
    """A verdict names a list of three or more files by count: the checks below list them, and
    one place naming them is enough."""
    return _PATH_RUN.sub(lambda m: f"{m.group(0).count(', /') + 1} images (listed below)", text)


def plan_html(plan: Plan, describe: Callable[[Finding], str] | None = None) -> str:
    """The plan as the preview shows it: commands first, because that is what will run.
    ``describe`` words a finding (the commit dialog refers to its list of victims by count)."""
    # A plan that runs no program (removing leftover files) starts with what changes.
    parts = ["<h4 style='margin-bottom:2px'>Will run</h4>"] if plan.commands else []
    for line in plan.command_lines():
        parts.append(
            "<pre class='code' style='padding:6px; white-space:pre-wrap'>$ "
            f"{escape(display_path(line))}</pre>"
        )
    for caption, text in plan.documents:  # what is handed to libvirt (a domain's XML)
        parts.append(f"<h4 style='margin-bottom:2px'>{escape(display_path(caption))}</h4>")
        parts.append(
            "<pre class='code' style='padding:6px; white-space:pre-wrap'>"
            f"{escape(display_path(text))}</pre>"
        )
    parts.append("<h4 style='margin-bottom:2px'>What changes</h4><ul style='margin-top:0'>")
    parts += [f"<li>{escape(display_path(c))}</li>" for c in plan.changes] or ["<li>nothing</li>"]
    parts.append("</ul>")
    if plan.search_line:
        roots = ", ".join(display_path(r) for r in plan.searched)
        parts.append(f"<p>Looked for {escape(plan.searched_for)} in {escape(roots)}</p>")
    if plan.findings:
        parts.append("<h4 style='margin-bottom:2px'>Checks</h4>")
        for f in plan.findings:
            forced = plan.forced(f)
            icon = resources.icon_path("state-error" if forced else LEVEL_ICON[f.level])
            tag = "forced" if forced else LEVEL_WORDS[f.level]
            text = describe(f) if describe else display_path(f.message)
            parts.append(
                f"<p><img src='{icon.as_uri()}' width='14' height='14'> <b>{tag}</b>: "
                f"{escape(text)}</p>"
            )
    return "".join(parts)


class ConfirmField(QLineEdit):
    """Where the base's name is typed to confirm a forced run. Enter here does nothing: it must
    neither run the plan nor close the dialog on what was typed."""

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt's name)
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            event.accept()
            return
        super().keyPressEvent(event)


class PlanPreview(QTextBrowser):
    """The plan's text; it asks for the height of the whole plan (up to ``MAX_HEIGHT``), so the
    dialog opens or grows to show all of it, and scrolls beyond that."""

    MIN_HEIGHT = 220
    MAX_HEIGHT = 480

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        hint = super().sizeHint()
        doc = self.document().size().height() + 2 * self.frameWidth() + 8
        return QSize(hint.width(), int(min(self.MAX_HEIGHT, max(self.MIN_HEIGHT, doc))))

    def setHtml(self, text: str) -> None:  # noqa: N802 (Qt's name)
        super().setHtml(text)
        self.updateGeometry()


class PlanDialog(QDialog):
    #: The fresh plan (None while the fields are invalid); tests wait for it.
    planReady = Signal(object)
    MIN_WIDTH = 640

    def __init__(
        self,
        title: str,
        ok_text: str,
        parent: QWidget | None = None,
        qemu_img: str = "",
        domains: DomainSource | None = None,
    ):
        super().__init__(parent)
        #: The qemu-img the plans run (the window's setting; "" for the one on PATH).
        self.qemu_img = qemu_img
        #: Where the plans ask libvirt which VMs use the images (the window's connections);
        #: a plan reads it on the planning worker, never here on the GUI thread.
        self.domains = domains
        self.setWindowTitle(title)
        self.setMinimumWidth(self.MIN_WIDTH)
        self.ok_text = ok_text
        self.plan: Plan | None = None
        self.planning = False
        self._planning = TaskSlot(self, on_done=self._on_planned, on_failed=self._on_plan_failed)
        self.intro = QLabel()
        self.intro.setWordWrap(True)
        self.intro.setTextFormat(Qt.TextFormat.RichText)
        self.intro.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.form = QFormLayout()
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        self.verdict = QLabel("Checking…")
        self.verdict.setObjectName("verdict")
        self.verdict.setWordWrap(True)
        self.preview = PlanPreview()
        self.preview.setOpenLinks(False)
        self.preview.setAccessibleName("What will be done")
        self.preview.setMinimumHeight(PlanPreview.MIN_HEIGHT)
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
        self.cancel_button = self.buttons.button(QDialogButtonBox.StandardButton.Cancel)
        self.ok_button.setObjectName("runButton")
        self.copy_button.setAutoDefault(False)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        # The second step of a forced run: type the name of what will be damaged.
        self.confirm_name: str | None = None
        self.confirm_label = QLabel()
        self.confirm_label.setWordWrap(True)
        # Selectable: a 40-digit Nova base name may be copied, still a step of its own.
        self.confirm_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.confirm = ConfirmField()
        self.confirm.setObjectName("confirmName")
        self.confirm.setAccessibleName("Name to type to run it anyway")
        self.confirm.textChanged.connect(self._update_run_button)
        self.confirm_label.setBuddy(self.confirm)
        self.confirm_row = QWidget()
        row = QHBoxLayout(self.confirm_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.confirm_label, 1)
        row.addWidget(self.confirm, 1)
        self.confirm_row.hide()
        # One deliberate, unchecked box per file the plan refuses to read (outside the folder,
        # a device, another user's private file, a network source), naming it.
        self.allowed: set[str] = set()
        self.allow_boxes: dict[str, QCheckBox] = {}
        self.allow_row = QWidget()
        self.allow_row.setObjectName("allowFiles")
        self._allow_layout = QVBoxLayout(self.allow_row)
        self._allow_layout.setContentsMargins(0, 0, 0, 0)
        self.allow_row.hide()
        box = QVBoxLayout(self)
        box.addWidget(self.intro)
        box.addLayout(self.form)
        box.addWidget(self.verdict)
        box.addWidget(self.confirm_row)
        box.addWidget(self.allow_row)
        box.addWidget(self.preview, 1)
        box.addWidget(self.buttons)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self.replan)
        self._set_verdict("pending", "Checking…")
        self._set_default_button()

    def _on_theme_changed(self) -> None:
        self.preview.document().setDefaultStyleSheet(theme.current().html_css())
        if self.plan is not None:
            self.preview.setHtml(plan_html(self.plan, self.describe_finding))

    # -- for subclasses

    def destructive_fields(self) -> bool:
        """Whether the fields as they are ask for something destructive, known before the plan
        arrives (a commit, an unsafe rebase), so Cancel is the default from the start."""
        return False

    def run_text(self, plan: Plan | None) -> str:
        """The run button's text for ``plan``: it names the consequence when there is one."""
        if plan is not None and plan.op == "rebase" and getattr(plan, "unsafe", False):
            return "Rewrite pointer without copying"
        return self.ok_text

    def describe_finding(self, finding: Finding) -> str:
        """A finding in the preview's words (the commit dialog refers to its list by count)."""
        return display_path(finding.message)

    def refused_text(self, plan: Plan) -> str:
        return "Refused: " + count_paths(self.describe_finding(plan.blocking()[0]))

    def forced_text(self, plan: Plan) -> str:
        return "Forced: " + "; ".join(
            count_paths(self.describe_finding(f)) for f in forced_findings(plan)
        )

    def require_confirmation(self, name: str | None) -> None:
        """Asks for ``name`` to be typed before a forced plan may run (None: no forced run)."""
        self.confirm_name = name
        self.confirm.clear()
        if name:
            self.confirm_label.setText(f"To run it anyway, type <b>{escape(name)}</b>:")
            self.confirm.setPlaceholderText(name)
        self.confirm_row.setVisible(bool(name))
        self._update_run_button()
        self.refit()

    # -- overriding a guard that can be overridden (a shut-off VM's disk, a read-only image)

    #: Each overridable refusal in a few words, for the override box's text.
    OVERRIDE_WORDS = {
        "base-has-overlays": "other images back onto it",
        "used-by-vm": "a shut-off VM uses it",
        "read-only": "its owner made it read-only",
    }

    def add_override(self, verb: str, confirm_name: str) -> QCheckBox:
        """An unticked box, shown only while the plan has a refusal that can be overridden (or
        it is ticked): "Resize anyway: a shut-off VM uses it". Ticked, the plan is made with
        the override and runs only once ``confirm_name`` is typed, as a forced commit does."""
        self.override_verb, self.override_name = verb, confirm_name
        self.override = QCheckBox(f"{verb} anyway")
        self.override.setObjectName("override")
        self.override.setAccessibleName(f"{verb} anyway, overriding the checks that refused it")
        self.override.setToolTip(
            "Only if you know why the check refused it: the preview names what may be damaged"
        )
        self.form.addRow("", self.override)  # in the fields' column, as other options
        self.form.setRowVisible(self.override, False)
        self.override.toggled.connect(self._on_override_toggled)
        return self.override

    def overriding(self) -> bool:
        box = getattr(self, "override", None)
        return box is not None and box.isChecked()

    def _on_override_toggled(self, checked: bool) -> None:
        self.require_confirmation(self.override_name if checked else None)
        self.fields_changed()

    def _show_override(self, plan: Plan) -> None:
        box = getattr(self, "override", None)
        if box is None:
            return
        lifted = [f for f in plan.findings if f.refuses and f.overridable]
        if lifted:
            words = [self.OVERRIDE_WORDS.get(f.code, "a check refused it") for f in lifted]
            box.setText(f"{self.override_verb} anyway: {', '.join(dict.fromkeys(words))}")
        self.form.setRowVisible(box, bool(lifted) or box.isChecked())

    def allowed_files(self) -> tuple[str, ...]:
        """The files the user ticked "Allow reading" for: pass them to the planner (``allow``)."""
        return tuple(sorted(self.allowed))

    def _show_allow_boxes(self, plan: Plan) -> None:
        wanted = [f.subject for f in plan.findings if f.subject and f.code in _ALLOW_CODES]
        wanted += [s for s in sorted(self.allowed) if s not in wanted]
        for subject in list(self.allow_boxes):
            if subject not in wanted:
                self.allow_boxes.pop(subject).deleteLater()
        for subject in wanted:
            if subject in self.allow_boxes:
                continue
            check = QCheckBox(f"Allow reading {display_path(subject)}")
            check.setToolTip(
                "Only if you trust this file: the images will read it although it is outside "
                "the folder, a device, private to another user or on the network"
            )
            check.setChecked(subject in self.allowed)
            check.toggled.connect(lambda on, s=subject: self._on_allow_toggled(s, on))
            self.allow_boxes[subject] = check
            self._allow_layout.addWidget(check)
        self.allow_row.setVisible(bool(self.allow_boxes))

    def _on_allow_toggled(self, subject: str, on: bool) -> None:
        if on:
            self.allowed.add(subject)
        else:
            self.allowed.discard(subject)
        self.fields_changed()

    def planner(self) -> Callable[[], Plan] | str:
        """A callable that makes the plan from the current fields (it runs on a worker, so it
        must capture plain values, not widgets), or a message saying what is wrong."""
        raise NotImplementedError

    def fields_changed(self) -> None:
        """Connect every field's change signal here."""
        self._planning.discard()  # a plan still on its way is for the old fields
        self.planning = False
        self.plan = None
        self.ok_button.setEnabled(False)
        self._set_verdict("pending", "Checking…")
        self._set_default_button()
        self._debounce.start()

    # -- planning

    def replan(self) -> None:
        self._debounce.stop()
        self._planning.discard()
        self._set_default_button()
        make = self.planner()
        if isinstance(make, str):
            self.planning = False
            self.plan = None
            self.ok_button.setEnabled(False)
            self.copy_button.setEnabled(False)
            self._set_verdict("refused", make)
            self.preview.clear()
            self._set_default_button()
            self.planReady.emit(None)
            return
        self.planning = True
        self._planning.start(Job("plan", lambda p, c: make()))

    def _on_planned(self, plan: Plan) -> None:
        self.planning = False
        self.plan = plan
        self.preview.setHtml(plan_html(plan, self.describe_finding))
        self._show_allow_boxes(plan)
        self._show_override(plan)
        self.copy_button.setEnabled(bool(plan.commands))
        if plan.blocking():
            self._set_verdict("refused", self.refused_text(plan))
        elif forced_findings(plan):
            self._set_verdict("forced", self.forced_text(plan))
        else:
            warned = bool(plan.warnings)
            self._set_verdict("warning" if warned else "ok", self.ready_text(plan))
        self._update_run_button()
        self.planReady.emit(plan)

    def _on_plan_failed(self, exc: object) -> None:
        self.planning = False
        self.plan = None
        self.ok_button.setEnabled(False)
        self._set_verdict("refused", f"Could not plan this: {exc}")
        self._set_default_button()
        self.planReady.emit(None)

    def ready_text(self, plan: Plan) -> str:
        warnings = len(plan.warnings)
        if warnings:
            return f"Ready, with {warnings} warning{'s' * (warnings > 1)}: read them below."
        return "Ready: every check passed."

    def _set_verdict(self, kind: str, text: str) -> None:
        self.verdict.setText(text)
        self.verdict.setProperty("verdict", kind)
        self.verdict.style().unpolish(self.verdict)
        self.verdict.style().polish(self.verdict)
        self.refit()

    def confirmed(self) -> bool:
        """A forced plan runs only once the name asked for is typed exactly."""
        if self.plan is None or not forced_findings(self.plan):
            return True
        return bool(self.confirm_name) and self.confirm.text().strip() == self.confirm_name

    def runnable(self) -> bool:
        return (
            not self.planning
            and not self._debounce.isActive()
            and self.plan is not None
            and not self.plan.refused
            and self.confirmed()
        )

    def destructive(self) -> bool:
        plan = self.plan
        return self.destructive_fields() or (plan is not None and is_destructive(plan))

    def _update_run_button(self) -> None:
        self.ok_button.setEnabled(self.runnable())
        self.ok_button.setText(self.run_text(self.plan))
        self._set_default_button()

    def _set_default_button(self) -> None:
        """Enter presses the default button: Cancel whenever the plan is destructive."""
        destructive = self.destructive()
        self.ok_button.setAutoDefault(not destructive)
        self.ok_button.setDefault(not destructive)
        self.cancel_button.setAutoDefault(destructive)
        self.cancel_button.setDefault(destructive)
        self.ok_button.setProperty("destructive", destructive)
        self.ok_button.style().unpolish(self.ok_button)
        self.ok_button.style().polish(self.ok_button)

    def refit(self) -> None:
        """Grows the dialog to show what changed (a longer verdict, the confirmation row)."""
        fit_to_contents(self, self.MIN_WIDTH)

    def showEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt's name)
        a11y.name_dialog(self)
        fit_to_contents(self, self.MIN_WIDTH)
        super().showEvent(event)

    def _on_copy_clicked(self) -> None:
        if self.plan is not None:
            QGuiApplication.clipboard().setText("\n".join(self.plan.command_lines()))

    # -- closing

    def accept(self) -> None:
        """Only a fresh plan that nothing blocks, and a forced one only once its confirmation is
        typed, is accepted (a test calls this directly)."""
        if not self.runnable():
            return
        super().accept()

    def done(self, result: int) -> None:
        # done(Accepted) skips accept(): the same gate, so no path runs an unconfirmed plan.
        if result == QDialog.DialogCode.Accepted and not self.runnable():
            return
        self._debounce.stop()
        self._planning.discard()  # drop any plan still on its way
        super().done(result)
