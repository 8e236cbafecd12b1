"""Every dialog opens at a size that shows all of its content, and nothing overlaps at its
minimum size either: the button box never covers text, no word-wrapped label is cut short.

Each dialog is opened on real images (a shared base with long-named overlays, a moved base),
waits for its plan, and is measured as it opened and again shrunk to its minimum size.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable

import pytest
from PySide6.QtCore import QCoreApplication, QPoint, QRect
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractScrollArea,
    QAbstractSpinBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QWidget,
)

from imagegui.core.chains.diagnose import Kind, Level, Problem
from imagegui.core.ops.check import CheckKind, CheckProblem, CheckResult
from imagegui.core.ops.plan import GuardRefused, refuse
from imagegui.core.qemu.qemuimg import QemuImgError
from imagegui.gui.dialogs import messages
from imagegui.gui.dialogs.check_repair_dialog import CheckRepairDialog
from imagegui.gui.dialogs.commit_dialog import CommitDialog
from imagegui.gui.dialogs.launch_dialog import LaunchDialog
from imagegui.gui.dialogs.plan_dialog import PlanDialog
from imagegui.gui.dialogs.preferences_dialog import PreferencesDialog
from imagegui.gui.dialogs.undo_dialog import UndoRebaseDialog

OVERLAYS = [f"customer-{n:02d}-web-frontend-production-disk.qcow2" for n in range(12)]


@pytest.fixture
def lab(make, tmp_path, window, open_dir):
    """A shared base with twelve long-named overlays, an overlay to commit, a moved base."""
    make.create("base.qcow2", "qcow2", "1G")
    for name in OVERLAYS:
        make.overlay(name, "base.qcow2")
    make.overlay("top.qcow2", "base.qcow2")
    make.create("lonely-base.qcow2", "qcow2", "1G")
    make.overlay("lonely-top.qcow2", "lonely-base.qcow2")
    make.create("images/moved.qcow2", "qcow2", "64M")
    make.overlay("clones/clone.qcow2", "../images/moved.qcow2")
    (tmp_path / "archive").mkdir()
    shutil.move(tmp_path / "images" / "moved.qcow2", tmp_path / "archive" / "moved.qcow2")
    open_dir(tmp_path)
    return tmp_path


def _select(window, path) -> None:
    window.selection.set(str(path))


def _info(window, path):
    return window.session.snapshot.graph.image(str(path))


def overlay(window, lab):
    _select(window, lab / "base.qcow2")
    window.ops.create_overlay()
    return window.ops.dialog


def rebase_safe(window, lab):
    _select(window, lab / "lonely-top.qcow2")
    window.ops.rebase(str(lab / "base.qcow2"))
    return window.ops.dialog


def rebase_unsafe(window, lab):
    _select(window, lab / "lonely-top.qcow2")
    window.ops.rebase(str(lab / "base.qcow2"), unsafe=True)
    return window.ops.dialog


def commit_unshared(window, lab):
    _select(window, lab / "lonely-top.qcow2")
    window.ops.commit()
    return window.ops.dialog


def commit_refused(window, lab):
    _select(window, lab / "top.qcow2")
    window.ops.commit()
    return window.ops.dialog


def commit_forced(window, lab):
    dialog = commit_refused(window, lab)
    assert isinstance(dialog, CommitDialog)
    dialog.force.setChecked(True)
    return dialog


def flatten(window, lab):
    _select(window, lab / "lonely-top.qcow2")
    window.ops.flatten()
    return window.ops.dialog


def launch_snapshot(window, lab):
    _select(window, lab / "base.qcow2")
    window.ops.launch()
    return window.ops.dialog


def launch_refused(window, lab):
    """The guard finds the overlays the dialog was not told about: a long refusal."""
    snap = window.session.snapshot
    dialog = LaunchDialog(_info(window, lab / "base.qcow2"), 0, snap.root, 256, 1, parent=window)
    dialog.open()
    return dialog


def repair(window, lab):
    _select(window, lab / "clones" / "clone.qcow2")
    window.ops.repair()
    return window.ops.dialog


def undo_refused(window, lab):
    from imagegui.core.ops.journal import RebaseEntry

    # An entry the journal does not hold: the plan refuses it.
    entry = RebaseEntry(
        "not-journalled", 0.0, str(lab / "top.qcow2"), "base.qcow2", "qcow2",
        "lonely-base.qcow2", "qcow2", "unsafe",
    )  # fmt: skip
    dialog = UndoRebaseDialog(entry, window)
    dialog.open()
    return dialog


def preferences(window, lab):
    dialog = PreferencesDialog(window.settings, window)
    dialog.open()
    return dialog


def failure_refused(window, lab):
    findings = [
        refuse("in-use", f"{lab / name} is in use by a running VM (pid {pid})")
        for pid in range(4)
        for name in OVERLAYS
    ]
    return messages.failure_box(window, "Commit top.qcow2", GuardRefused(findings))


def failure_qemu(window, lab):
    exc = QemuImgError(
        "qemu-img could not open the image: " + "x" * 300,
        ["qemu-img", "commit", str(lab / "top.qcow2")],
        1,
        "qemu-img: Could not open\n" * 20,
    )
    return messages.failure_box(window, "Commit top.qcow2", exc)


def check_result(window, lab):
    problems = [
        Problem(Kind.CHECK_ERRORS, Level.ERROR, str(lab / name), f"{lab / name}: {n} errors")
        for n, name in enumerate(OVERLAYS * 4)
    ]
    result = CheckResult(message=f"{lab / 'top.qcow2'}: 48 problems", problems=problems)
    return messages.check_result_box(window, result)


def check_repair_all(window, lab):
    top = lab / "top.qcow2"
    problems = [
        Problem(Kind.CHECK_ERRORS, Level.ERROR, str(top), "The check found 3 corruptions."),
        Problem(Kind.LEAKED_CLUSTERS, Level.WARNING, str(top), "It found 1 leaked cluster."),
    ]
    dialog = CheckRepairDialog(_info(window, top), problems, "all", window)
    dialog.open()
    return dialog


def check_result_with_repairs(window, lab):
    from imagegui.core.chains.checkstore import CheckRecord, Fingerprint

    top = str(lab / "top.qcow2")
    rec = CheckRecord(top, Fingerprint.of(top), 1.0, "qcow2", corruptions=3, leaks=1)
    problems = [
        CheckProblem(
            kind=CheckKind.CORRUPT,
            level=Level.ERROR,
            path=top,
            message="3 corruption(s): copy the data out",
        )
    ]
    result = CheckResult(message=f"{top}: 1 problem(s)", problems=problems, record=rec)
    box = messages.check_result_box(window, result)
    window.ops._offer_repair(box, result, top)
    return box


def connect_libvirt(window, lab):
    """Two remembered connections and a long failure reason under the field."""
    window.settings.set_libvirt_uris(
        ["qemu:///system", "qemu+ssh://admin@kvm01.example.org/system"]
    )
    window.show_connect_dialog()
    dialog = window.ops.dialog
    dialog._say(
        "Not added: qemu+ssh://root@kvm02.example.org/system did not answer: Cannot recv data: "
        "ssh: connect to host kvm02.example.org port 22: Connection refused: Connection reset "
        "by peer",
        "refused",
    )
    return dialog


DIALOGS: dict[str, Callable] = {
    f.__name__: f
    for f in (
        overlay,
        rebase_safe,
        rebase_unsafe,
        commit_unshared,
        commit_refused,
        commit_forced,
        flatten,
        launch_snapshot,
        launch_refused,
        repair,
        undo_refused,
        preferences,
        failure_refused,
        failure_qemu,
        check_result,
        check_repair_all,
        check_result_with_repairs,
        connect_libvirt,
    )
}


def settle() -> None:
    """Delivers the layout requests posted by the last changes (no waiting: nothing is timed)."""
    QCoreApplication.sendPostedEvents()
    QCoreApplication.processEvents()


def _rect_in(widget: QWidget, dialog: QWidget) -> QRect:
    return QRect(widget.mapTo(dialog, QPoint(0, 0)), widget.size())


def _clipped_by_scroll_area(widget: QWidget, dialog: QWidget) -> bool:
    """Content inside a scroll area's viewport may lie outside it: the viewport clips it. A spin
    box or combo box sizes its own line edit inside its frame, a line edit its clear button."""
    parent = widget.parentWidget()
    while parent is not None and parent is not dialog:
        if isinstance(parent, (QAbstractScrollArea, QAbstractSpinBox, QComboBox, QLineEdit)):
            return True
        parent = parent.parentWidget()
    return False


def _shown(dialog: QWidget) -> list[QWidget]:
    return [
        w
        for w in dialog.findChildren(QWidget)
        if w.isVisible() and not w.isWindow() and not _clipped_by_scroll_area(w, dialog)
    ]


def assert_fits(dialog: QDialog, when: str) -> None:
    box = next(b for b in dialog.findChildren(QDialogButtonBox) if b.isVisible())
    box_rect = _rect_in(box, dialog)
    assert dialog.rect().contains(box_rect), (when, box_rect, dialog.rect())
    screen = dialog.screen().availableGeometry()
    assert dialog.height() <= screen.height() and dialog.width() <= screen.width(), when
    problems = []
    shown = _shown(dialog)
    for w in shown:
        name = f"{type(w).__name__} {w.objectName()!r} {getattr(w, 'text', lambda: '')()!r:.60}"
        rect = _rect_in(w, dialog)
        if not dialog.rect().contains(rect):
            problems.append(f"{name} runs off the dialog: {rect} in {dialog.rect()}")
        apart = w is not box and not box.isAncestorOf(w) and not w.isAncestorOf(box)
        if apart and rect.intersects(box_rect):
            problems.append(f"{name} {rect} is under the buttons {box_rect}")
        if isinstance(w, QLabel) and w.wordWrap() and w.text():
            if w.height() < w.heightForWidth(w.width()):
                problems.append(f"{name} is cut: {w.height()} < {w.heightForWidth(w.width())}")
        elif isinstance(w, (QLabel, QAbstractButton, QLineEdit, QComboBox, QAbstractSpinBox)):
            hint = w.minimumSizeHint()
            if w.height() < hint.height():
                problems.append(f"{name} is cut: height {w.height()} < {hint.height()}")
            if isinstance(w, QAbstractButton) and w.width() < hint.width():
                problems.append(f"{name} is cut: width {w.width()} < {hint.width()}")
    # Siblings laid out side by side or one above the other never overlap.
    for w in shown:
        kids = [k for k in w.children() if isinstance(k, QWidget) and k in shown]
        for i, a in enumerate(kids):
            for b in kids[i + 1 :]:
                if a.geometry().intersects(b.geometry()):
                    problems.append(
                        f"{type(a).__name__} {a.geometry()} overlaps {type(b).__name__} "
                        f"{b.geometry()} in {type(w).__name__}"
                    )
    assert not problems, f"{when}:\n" + "\n".join(problems)


@pytest.mark.parametrize("name", list(DIALOGS))
def test_dialog_shows_all_its_content(name, qtbot, window, lab, wait_plan):
    dialog = DIALOGS[name](window, lab)  # deleted on close, or a child of the window
    qtbot.waitExposed(dialog)
    if isinstance(dialog, PlanDialog):
        wait_plan(dialog)
        assert dialog.plan is not None or name == "undo_refused"
    settle()  # the verdict's text arrived after the dialog opened: it must still fit
    assert_fits(dialog, f"{name} as opened ({dialog.width()}x{dialog.height()})")

    smallest = dialog.minimumSize()
    dialog.resize(smallest)
    qtbot.waitUntil(lambda: dialog.width() == max(smallest.width(), dialog.minimumWidth()))
    settle()
    assert_fits(dialog, f"{name} at its minimum size ({dialog.width()}x{dialog.height()})")
    dialog.reject()


def test_the_geometry_check_sees_a_dialog_squeezed_below_its_content(qtbot, window, lab, wait_plan):
    """The check above can fail: squeeze a commit refusal below its minimum and it sees overlap."""
    dialog = commit_refused(window, lab)
    qtbot.waitExposed(dialog)
    wait_plan(dialog)
    dialog.setMinimumSize(100, 100)
    dialog.resize(640, 200)
    qtbot.waitUntil(lambda: dialog.height() == 200)
    settle()
    with pytest.raises(AssertionError):
        assert_fits(dialog, "squeezed")
    dialog.reject()
