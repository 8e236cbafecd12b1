"""Every command of the window as a QAction: icon, shortcut, tooltip, and when it is enabled.

Menus, the toolbar and the context menus all show these same objects, so a shortcut or an
enabled state can never differ between them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QWidget

from imagegui.core.graph import EXTERNAL, IMAGE
from imagegui.core.repair import missing_backing
from imagegui.gui import resources
from imagegui.gui.snapshot import Snapshot

Std = QKeySequence.StandardKey


@dataclass
class Actions:
    open: QAction
    open_demo: QAction
    rescan: QAction
    preferences: QAction
    quit: QAction
    copy_path: QAction
    find: QAction
    undo_rebase: QAction
    zoom_in: QAction
    zoom_out: QAction
    zoom_fit: QAction
    zoom_reset: QAction
    show_selected: QAction
    overlay: QAction
    rebase: QAction
    commit: QAction
    flatten: QAction
    check: QAction
    launch: QAction
    repair: QAction
    reveal: QAction
    about: QAction

    def image_menu(self) -> list[QAction | None]:
        """The image actions in menu order; None is a separator."""
        return [
            self.overlay, self.rebase, self.commit, self.flatten, None,
            self.check, self.launch, self.repair, self.undo_rebase, None,
            self.copy_path, self.reveal,
        ]  # fmt: skip

    def all(self) -> list[QAction]:
        return [getattr(self, f.name) for f in fields(self)]


def _action(
    parent: QWidget,
    text: str,
    icon: str | None,
    shortcut: QKeySequence.StandardKey | str | list | None,
    tip: str,
) -> QAction:
    action = QAction(text, parent)
    if icon:
        action.setIcon(resources.icon(icon))
    if isinstance(shortcut, list):
        action.setShortcuts([QKeySequence(s) for s in shortcut])
    elif isinstance(shortcut, QKeySequence.StandardKey):
        action.setShortcuts(shortcut)
    elif shortcut:
        action.setShortcut(QKeySequence(shortcut))
    keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
    action.setToolTip(f"{tip} ({keys})" if keys else tip)
    action.setStatusTip(tip)
    return action


def create_actions(parent: QWidget) -> Actions:
    a = _action
    return Actions(
        open=a(parent, "&Open Directory…", "document-open", Std.Open,
               "Scan a directory and show its image chains"),
        open_demo=a(parent, "Open &Demo", None, None,
                    "Build a demo directory with qemu-img (a Nova cache, snapshots, a broken "
                    "clone, a loop) and open it"),
        rescan=a(parent, "&Rescan", "view-refresh", ["F5", "Ctrl+R"],
                 "Scan the directory again"),
        preferences=a(parent, "&Preferences…", "settings", Std.Preferences,
                      "qemu binaries, launch and overlay defaults"),
        quit=a(parent, "&Quit", None, Std.Quit, "Close imagegui"),
        copy_path=a(parent, "&Copy Path", "edit-copy", "Ctrl+Shift+C",
                    "Copy the selected image's full path"),
        find=a(parent, "&Filter…", "filter", Std.Find,
               "Filter the chains list by name, format, state or problem"),
        undo_rebase=a(parent, "&Undo Last Rebase…", "edit-undo", Std.Undo,
                      "Restore the backing file the selected image had before its last rebase"),
        zoom_in=a(parent, "Zoom &In", "zoom-in", ["Ctrl++", "Ctrl+="], "Zoom into the graph"),
        zoom_out=a(parent, "Zoom &Out", "zoom-out", "Ctrl+-", "Zoom out of the graph"),
        zoom_fit=a(parent, "&Fit All", "zoom-fit", "Ctrl+0", "Show the whole graph"),
        zoom_reset=a(parent, "&Actual Size", None, "Ctrl+1", "Zoom to 100 %"),
        show_selected=a(parent, "&Show Selected", None, "Ctrl+.",
                        "Scroll the graph to the selected image"),
        overlay=a(parent, "Create &Overlay…", "overlay-new", "Ctrl+N",
                  "Create a qcow2 overlay (linked clone) of the selected image"),
        rebase=a(parent, "Re&base…", "rebase", "Ctrl+B",
                 "Point the selected image at another backing file"),
        commit=a(parent, "Co&mmit…", "commit", "Ctrl+Shift+M",
                 "Write the selected overlay's data into its backing file"),
        flatten=a(parent, "&Flatten…", "flatten", "Ctrl+Shift+F",
                  "Copy the selected image's whole chain into one independent qcow2"),
        check=a(parent, "C&heck", "check-image", "Ctrl+K",
                "Run qemu-img check on the selected image"),
        launch=a(parent, "&Launch in QEMU…", "launch", "Ctrl+L",
                 "Boot the selected image in a virtual machine"),
        repair=a(parent, "Re&pair Missing Backing…", "repair", "Ctrl+Shift+R",
                 "Find the moved base among the scanned images and point the overlay at it"),
        reveal=a(parent, "Re&veal in File Manager", "reveal", "Ctrl+Shift+O",
                 "Show the selected image in the file manager"),
        about=a(parent, "&About imagegui", None, None, "Version and licence"),
    )  # fmt: skip


def update_enabled(actions: Actions, snapshot: Snapshot | None, node: str | None) -> None:
    """Enables each image action only where it can apply to the selected node."""
    have = snapshot is not None
    for action in (actions.rescan, actions.zoom_in, actions.zoom_out, actions.zoom_fit,
                   actions.zoom_reset):  # fmt: skip
        action.setEnabled(have)
    kind, info = (None, None)
    if have and node in snapshot.graph.nodes:
        kind, info = snapshot.graph.nodes[node]
    image = info is not None and kind in (IMAGE, EXTERNAL)
    rebaseable = image and info.format in ("qcow2", "qed")
    actions.overlay.setEnabled(image)
    actions.rebase.setEnabled(rebaseable)
    actions.undo_rebase.setEnabled(rebaseable)
    actions.commit.setEnabled(image and bool(info.backing_file) and not info.backing_protocol)
    actions.flatten.setEnabled(image)
    actions.check.setEnabled(image)
    actions.launch.setEnabled(image)
    actions.repair.setEnabled(image and missing_backing(snapshot.graph, node) is not None)
    actions.copy_path.setEnabled(kind is not None)
    actions.reveal.setEnabled(kind is not None and "://" not in (node or ""))
    actions.show_selected.setEnabled(kind is not None)
