"""What a screen reader hears: the custom-painted graph, and the names Qt cannot guess.

The graph is painted cards, not widgets: assistive technology sees one view. So the view's
accessible description follows the selection, one sentence the user would otherwise read off
the card ("web06.qcow2, qcow2, unusable: chain broken below: base.qcow2 — missing backing
file"). ``QWidget.setAccessibleDescription`` sends Qt's DescriptionChanged event itself, so a
screen reader is told when it changes.
"""

from __future__ import annotations

from PySide6.QtCore import QObject
from PySide6.QtGui import QAccessible
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractSpinBox,
    QAccessibleWidget,
    QComboBox,
    QDockWidget,
    QFormLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QTextEdit,
    QToolBar,
    QToolButton,
    QWidget,
)

from imagegui.core.chains.nodestate import short_name

#: The view's description while nothing is selected.
NOTHING_SELECTED = (
    "No image selected. The arrow keys move between images; Shift+F10 opens the image's menu."
)


def selection_description(snapshot, node: str | None) -> str:
    """The selected image in one line: name, format, state and why its chain cannot open."""
    if snapshot is None or node is None or node not in snapshot.status:
        return NOTHING_SELECTED
    kind, info = snapshot.graph.nodes[node]
    status = snapshot.status[node]
    parts = [short_name(node), info.format if info is not None else str(kind)]
    text = ", ".join(parts) + f", {status.label()}"
    reason = status.chain_reason(node)
    if reason is not None:
        text += f": {reason}"
    return text


def describe(widget: QWidget, text: str) -> None:
    """Sets ``widget``'s accessible description when it changed (one event per real change)."""
    if widget.accessibleDescription() != text:
        widget.setAccessibleDescription(text)


# -- roles Qt cannot guess

#: Widget classes (by class name) whose role Qt would get wrong: the graph is a QGraphicsView,
#: which Qt reports as a bare "filler" that screen readers skip; it is a drawing of the chains.
#: The overview in its corner is a drawing too, one the user clicks to move the view, and so is
#: the Space view's treemap and the layer bars above the details.
ROLES = {
    "ChainView": QAccessible.Role.Canvas,
    "Minimap": QAccessible.Role.Canvas,
    "TreemapView": QAccessible.Role.Canvas,
    "LayerBar": QAccessible.Role.Canvas,
}


def _factory(key: str, obj: QObject):
    role = ROLES.get(key)
    if role is None or not isinstance(obj, QWidget):
        return None
    return QAccessibleWidget(obj, role)


def install() -> None:
    """Gives the classes in ``ROLES`` their role (once per process, before any window)."""
    global _installed
    if not _installed:
        QAccessible.installFactory(_factory)
        _installed = True


_installed = False


# -- names for the parts Qt builds itself


def name_line_edit_buttons(edit: QLineEdit, clear: str = "Clear", icon: str | None = None) -> None:
    """Names the buttons Qt puts inside a line edit: the clear button (its own action) and the
    icons added with ``addAction`` (named after the action's text, or ``icon``). Without this a
    screen reader finds two nameless push buttons inside every such field."""
    for button in edit.findChildren(QToolButton):
        if button.accessibleName():
            continue
        action = button.defaultAction()
        if action is not None and action.objectName() == _CLEAR_ACTION:
            button.setAccessibleName(clear)
        elif action is not None and action.text():
            button.setAccessibleName(action.text())
        elif icon is not None:
            button.setAccessibleName(icon)


_CLEAR_ACTION = "_q_qlineeditclearaction"
_EDITORS = (QLineEdit, QComboBox, QAbstractSpinBox)


def name_form_fields(root: QWidget) -> None:
    """Names the editors inside composite form fields after their row's label.

    Qt names a field from its form label only when the field itself is the editor; a path field
    (a line edit and a Browse… button in one widget) leaves the line edit nameless. The line
    edits' own clear buttons are named here too."""
    for form in root.findChildren(QFormLayout):
        for row in range(form.rowCount()):
            label = form.itemAt(row, QFormLayout.ItemRole.LabelRole)
            field = form.itemAt(row, QFormLayout.ItemRole.FieldRole)
            if label is None or field is None or field.widget() is None:
                continue
            text = label.widget().text() if isinstance(label.widget(), QLabel) else ""
            text = text.replace("&", "").rstrip(": ")
            if not text:
                continue
            for editor in field.widget().findChildren(QWidget):
                if (
                    isinstance(editor, _EDITORS)
                    and not editor.accessibleName()
                    and not isinstance(editor.parent(), QAbstractSpinBox)  # a spin box's own edit
                ):
                    editor.setAccessibleName(text)
    for edit in root.findChildren(QLineEdit):
        name_line_edit_buttons(edit, "Clear " + (edit.accessibleName() or "the field").lower())


def name_dialog(root: QWidget) -> None:
    """What every dialog needs before it shows: its form fields named (``name_form_fields``),
    each combo box's drop-down list named after the combo box, and a message box's Show
    Details text called "Details"."""
    name_form_fields(root)
    for combo in root.findChildren(QComboBox):
        view = combo.view()
        if view is not None and not view.accessibleName():
            label = combo.accessibleName() or _label_text(root, combo)
            view.setAccessibleName(f"{label} choices" if label else "Choices")
    if isinstance(root, QMessageBox):
        for text in root.findChildren(QTextEdit):
            if not text.accessibleName():
                text.setAccessibleName("Details")


def _label_text(root: QWidget, field: QWidget) -> str:
    for form in root.findChildren(QFormLayout):
        label = form.labelForField(field)
        if isinstance(label, QLabel):
            return label.text().replace("&", "").rstrip(": ")
    return ""


def name_dock_buttons(dock: QDockWidget, title: str) -> None:
    """A dock's Close and Float buttons say which panel they close: four docks, otherwise four
    buttons all called "Close"."""
    for suffix, verb in (("closebutton", "Close"), ("floatbutton", "Float")):
        button = dock.findChild(QAbstractButton, f"qt_dockwidget_{suffix}")
        if button is not None:
            button.setAccessibleName(f"{verb} the {title} panel")


def name_toolbar_extension(toolbar: QToolBar) -> None:
    """The » button a toolbar shows when it is too narrow for all its buttons."""
    button = toolbar.findChild(QToolButton, "qt_toolbar_ext_button")
    if button is not None:
        button.setAccessibleName("More toolbar buttons")
