"""The names and descriptions gui/a11y.py gives, checked in-process through Qt's own accessibility
interfaces (what the AT-SPI bridge reads; test_accessibility.py reads the real bridge)."""

from __future__ import annotations

from PySide6.QtGui import QAccessible
from PySide6.QtWidgets import QDialog, QFormLayout, QHBoxLayout, QLineEdit, QToolButton, QWidget

from imagegui.gui import a11y


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
