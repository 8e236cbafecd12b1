"""The menu bar, the toolbar and the context menu, all made of the shared actions."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QMainWindow, QMenu, QToolBar

from imagegui.gui import a11y
from imagegui.gui.actions import Actions


def build_menus(
    window: QMainWindow, actions: Actions, docks: list, restore: QMenu | None = None
) -> QMenu:
    """Fills the menu bar (``restore``: the Restore from Trash menu, under Undo); returns the
    (empty) Open Recent menu for the window to fill."""
    bar = window.menuBar()
    file = bar.addMenu("&File")
    file.addAction(actions.open)
    recent = file.addMenu("Open &Recent")
    recent.setToolTipsVisible(True)
    file.addAction(actions.open_demo)
    file.addAction(actions.new_image)
    file.addAction(actions.rescan)
    file.addAction(actions.stop_scan)
    file.addSeparator()
    file.addAction(actions.clean_up)
    file.addSeparator()
    file.addAction(actions.connect_libvirt)
    file.addAction(actions.refresh_vms)
    file.addSeparator()
    file.addAction(actions.preferences)
    file.addSeparator()
    file.addAction(actions.quit)

    edit = bar.addMenu("&Edit")
    edit.addAction(actions.copy_path)
    edit.addAction(actions.find)
    edit.addSeparator()
    edit.addAction(actions.undo_rebase)
    if restore is not None:
        edit.addMenu(restore)

    view = bar.addMenu("&View")
    view.addAction(actions.show_graph)
    view.addAction(actions.show_space)
    view.addSeparator()
    for action in (actions.zoom_in, actions.zoom_out, actions.zoom_fit, actions.zoom_reset):
        view.addAction(action)
    view.addAction(actions.show_selected)
    view.addSeparator()
    view.addAction(actions.problems_only)
    view.addSeparator()
    for dock in docks:
        view.addAction(dock.toggleViewAction())

    image = bar.addMenu("&Image")
    fill_image_menu(image, actions)

    help_menu = bar.addMenu("&Help")
    help_menu.addAction(actions.about)
    for menu in (file, edit, view, image, help_menu):
        menu.setToolTipsVisible(True)
    return recent


def fill_image_menu(menu: QMenu, actions: Actions) -> None:
    for action in actions.image_menu():
        if action is None:
            menu.addSeparator()
        else:
            menu.addAction(action)


def build_toolbar(window: QMainWindow, actions: Actions) -> QToolBar:
    bar = QToolBar("Main toolbar", window)
    bar.setObjectName("mainToolbar")
    bar.setIconSize(QSize(20, 20))
    bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    bar.setMovable(False)
    for action in (
        actions.open, actions.rescan, actions.stop_scan, None,
        actions.overlay, actions.rebase, actions.commit, actions.flatten, None,
        actions.check, actions.launch, actions.repair, None,
        actions.zoom_in, actions.zoom_out, actions.zoom_fit, actions.problems_only, None,
        actions.show_space,
    ):  # fmt: skip
        if action is None:
            bar.addSeparator()
        else:
            bar.addAction(action)
    # Zoom buttons need no words; the rest read better with them.
    for action in (
        actions.zoom_in, actions.zoom_out, actions.zoom_fit, actions.rescan, actions.stop_scan
    ):  # fmt: skip
        button = bar.widgetForAction(action)
        if button is not None:
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
    window.addToolBar(bar)
    a11y.name_toolbar_extension(bar)
    return bar
