"""The names and descriptions gui/a11y.py gives, checked in-process through Qt's own accessibility
interfaces (what the AT-SPI bridge reads; test_accessibility.py reads the real bridge)."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QAccessible
from PySide6.QtWidgets import (
    QAbstractButton,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QToolButton,
    QWidget,
)

from imagegui.gui import a11y
from imagegui.gui.dialogs.plan_dialog import PlanDialog
from tests.gui.test_dialog_geometry import DIALOGS
from tests.gui.test_dialog_geometry import lab as lab  # a fixture, shared


def _iface(widget):
    QAccessible.setActive(True)
    iface = QAccessible.queryAccessibleInterface(widget)
    assert iface is not None
    return iface


def test_graph_is_a_named_canvas_describing_the_selection(window, open_dir, make, qtbot):
    make.create("base.qcow2")
    make.overlay("mid.qcow2", "base.qcow2")
    make.overlay("web06.qcow2", "mid.qcow2")
    make.create("debian.qcow2")
    (make.root / "base.qcow2").unlink()
    open_dir(make.root)
    iface = _iface(window.view)
    assert iface.role() == QAccessible.Role.Canvas
    assert iface.text(QAccessible.Text.Name) == "Chain graph"
    assert iface.text(QAccessible.Text.Description) == a11y.NOTHING_SELECTED
    overview = _iface(window.view.minimap)
    assert (overview.role(), overview.text(QAccessible.Text.Name)) == (
        QAccessible.Role.Canvas,
        "Graph overview",
    )
    window.selection.set(str(make.root / "web06.qcow2"))
    assert iface.text(QAccessible.Text.Description) == (
        "web06.qcow2, qcow2, unusable (missing backing file below): "
        "chain broken below: base.qcow2 — missing backing file"
    )
    window.selection.set(str(make.root / "mid.qcow2"))
    assert iface.text(QAccessible.Text.Description) == (
        "mid.qcow2, qcow2, error: missing backing file: base.qcow2"
    )
    window.selection.set(str(make.root / "debian.qcow2"))
    assert iface.text(QAccessible.Text.Description) == "debian.qcow2, qcow2, ok"
    window.selection.set(None)
    assert iface.text(QAccessible.Text.Description) == a11y.NOTHING_SELECTED


def test_filter_box_and_its_buttons_are_named(window):
    edit = window.chains.filter
    assert _iface(edit).text(QAccessible.Text.Name) == "Filter images"
    names = sorted(b.accessibleName() for b in edit.findChildren(QToolButton))
    assert names == ["Clear the filter", "Filter"]


def test_form_label_names_the_editor_inside_a_composite_field(qtbot):
    dialog = QDialog()
    qtbot.addWidget(dialog)
    form = QFormLayout(dialog)
    field = QWidget()
    edit = QLineEdit()
    edit.setClearButtonEnabled(True)
    QHBoxLayout(field).addWidget(edit)
    plain = QLineEdit()
    form.addRow("New &image:", field)
    form.addRow("Size:", plain)
    a11y.name_form_fields(dialog)
    assert edit.accessibleName() == "New image"
    assert plain.accessibleName() == ""  # Qt names it from its label itself
    assert _iface(plain).text(QAccessible.Text.Name) == "Size:"
    clear = [b.accessibleName() for b in edit.findChildren(QToolButton)]
    assert clear == ["Clear new image"]


def test_toolbar_overflow_button_is_named(window):
    button = window.toolbar.findChild(QToolButton, "qt_toolbar_ext_button")
    assert button is not None
    assert button.accessibleName() == "More toolbar buttons"


# -- every control has a name, read through Qt's accessibility interfaces

#: Roles of what a user operates or reads as a unit: each needs a name saying what it is.
CONTROL_ROLES = {
    QAccessible.Role.PushButton,
    QAccessible.Role.CheckBox,
    QAccessible.Role.RadioButton,
    QAccessible.Role.EditableText,
    QAccessible.Role.ComboBox,
    QAccessible.Role.SpinBox,
    QAccessible.Role.Slider,
    QAccessible.Role.ProgressBar,
    QAccessible.Role.Tree,
    QAccessible.Role.Table,
    QAccessible.Role.List,
    QAccessible.Role.PageTab,
    QAccessible.Role.ButtonMenu,
    QAccessible.Role.ButtonDropDown,
    QAccessible.Role.Canvas,
}
#: Roles whose children are rows and cells: their names are the data, not checked here.
DATA_ROLES = {QAccessible.Role.Tree, QAccessible.Role.Table, QAccessible.Role.List}


def unnamed_controls(widget: QWidget) -> list[str]:
    """Every control under ``widget`` (hidden ones too: they show when needed) without a name.
    A read-only text browser counts as a control: it is a scrolled text a user moves into."""
    from PySide6.QtWidgets import QTextBrowser

    found = []
    stack = [_iface(widget)]
    seen = 0
    while stack and seen < 5000:
        iface = stack.pop()
        seen += 1
        role = iface.role()
        obj = iface.object()
        control = role in CONTROL_ROLES or isinstance(obj, QTextBrowser)
        if control and not iface.text(QAccessible.Text.Name).strip():
            where = f"{type(obj).__name__} {obj.objectName()!r}" if obj is not None else "-"
            found.append(f"{role.name} ({where}, tooltip {getattr(obj, 'toolTip', str)()!r})")
        if role in DATA_ROLES:
            continue
        for i in range(iface.childCount()):
            child = iface.child(i)
            if child is None:
                continue
            if isinstance(child.object(), QWidget) and child.object().isWindow():
                continue  # another window: checked on its own
            stack.append(child)
    return found


def test_every_control_of_the_window_is_named_with_a_job_running(qtbot, window, make, open_dir):
    import threading

    from imagegui.core.jobs import Job

    make.create("base.qcow2")
    make.overlay("top.qcow2", "base.qcow2")
    open_dir(make.root)
    window.selection.set(str(make.root / "top.qcow2"))
    release = threading.Event()

    def run(progress, cancel):
        cancel.on_cancel(release.set)
        release.wait()
        cancel.raise_if_cancelled()

    record = window.jobs.start(Job("Flatten top.qcow2", run))
    try:
        assert unnamed_controls(window) == []
        row = record.row
        assert row.cancel.accessibleName() == "Cancel Flatten top.qcow2"
        assert row.progress.accessibleName() == "Progress of Flatten top.qcow2"
    finally:
        with qtbot.waitSignal(window.jobs.jobFinished, timeout=10_000):
            release.set()


@pytest.mark.parametrize("name", list(DIALOGS))
def test_every_control_of_every_dialog_is_named(name, qtbot, window, lab, wait_plan):
    dialog = DIALOGS[name](window, lab)
    qtbot.waitExposed(dialog)
    if isinstance(dialog, PlanDialog):
        wait_plan(dialog)
    unnamed = unnamed_controls(dialog)
    assert not unnamed, "\n".join(unnamed)
    dialog.reject()


@pytest.mark.slow
def test_vm_rows_name_their_buttons_after_the_vm(qtbot, window, tmp_path):
    from opshelpers import create

    from imagegui.core.ops.launch import LaunchOptions, plan_launch

    vm = (
        plan_launch(str(create(tmp_path / "guest.qcow2")), LaunchOptions(memory=64, accel="tcg"))
        .run()
        .vm
    )
    try:
        record = window.vms.add(vm)
        assert record.stop.accessibleName() == "Stop guest.qcow2"
        assert record.force.accessibleName() == "Force off guest.qcow2"
        assert unnamed_controls(window.vms) == []
    finally:
        vm.stop(timeout=0)


def test_visible_buttons_of_the_window_have_distinct_names(window, make, open_dir):
    """Four "Close" buttons (one per panel) would all read alike: each says what it is for."""
    make.create("base.qcow2")
    open_dir(make.root)
    names = [
        b.accessibleName() or b.text()
        for b in window.findChildren(QAbstractButton)
        if b.isVisible()
    ]
    assert len(names) > 10
    assert sorted(n for n in set(names) if names.count(n) > 1) == []
    close = window.problems_dock.findChild(QAbstractButton, "qt_dockwidget_closebutton")
    assert _iface(close).text(QAccessible.Text.Name) == "Close the Problems panel"
