"""Every command of the window as a QAction: icon, shortcut, tooltip, and when it is enabled.

Menus, the toolbar and the context menus all show these same objects, so a shortcut or an
enabled state can never differ between them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QWidget

from imagegui.core.chains.diagnose import KINDS
from imagegui.core.chains.graph import EXTERNAL, IMAGE
from imagegui.core.chains.nodestate import short_name
from imagegui.core.chains.repair import missing_backing
from imagegui.core.ops.journal import (
    CHANGE_OPS,
    CLONE_OP,
    CONVERT_OP,
    DELETE_OP,
    MOVE_OP,
    NEW_OP,
    RESIZE_OP,
    SNAPSHOT_OP,
    ChangeEntry,
    UndoTarget,
)
from imagegui.core.ops.resize import RESIZABLE
from imagegui.core.units import counted, display_path
from imagegui.gui import resources
from imagegui.gui.snapshot import Snapshot

Std = QKeySequence.StandardKey
#: Why no image action applies to another host's images (shown, not changed, from the window).
REMOTE_ONLY_SHOWN = "the images of {uri} are only shown here: they are another host's files"
UNDO_TIP = (
    "Undo the last change imagegui recorded: a rebase, a move or rename, a linked-clone VM, a "
    "move to the Trash, a new or converted image, a snapshot taken or a disk grown"
)
#: What Undo does to each change a ``journal.ChangeEntry`` records (its tooltip).
CHANGE_TIPS = {
    NEW_OP: "Move the new image to the Trash, if no image backs onto it and it is not in use",
    CONVERT_OP: "Move the converted file to the Trash (its source is untouched), if no image "
    "backs onto it and it is not in use",
    SNAPSHOT_OP: "Delete the snapshot again, if it is still there as it was taken",
    RESIZE_OP: "Shrink the disk back to its size before, if nothing was written past that size",
}


@dataclass
class Actions:
    open: QAction
    open_demo: QAction
    new_image: QAction
    rescan: QAction
    stop_scan: QAction
    connect_libvirt: QAction
    refresh_vms: QAction
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
    problems_only: QAction
    show_graph: QAction
    show_space: QAction
    overlay: QAction
    clone_vm: QAction
    rebase: QAction
    commit: QAction
    flatten: QAction
    convert: QAction
    resize: QAction
    take_snapshot: QAction
    check: QAction
    launch: QAction
    repair: QAction
    reveal: QAction
    rename: QAction
    move_to: QAction
    trash: QAction
    trash_with_overlays: QAction
    delete_permanently: QAction
    clean_up: QAction
    about: QAction

    def image_menu(self) -> list[QAction | None]:
        """The image actions in menu order; None is a separator."""
        return [
            self.overlay, self.clone_vm, self.rebase, self.commit, self.flatten, None,
            self.convert, self.resize, self.take_snapshot, None,
            self.check, self.launch, self.repair, self.undo_rebase, None,
            self.copy_path, self.reveal, None,
            self.rename, self.move_to, None,
            self.trash, self.trash_with_overlays, self.delete_permanently,
        ]  # fmt: skip

    def label(self, name: str) -> str:
        """An action's text as a sentence uses it: "Create Overlay", no mnemonic or dots."""
        return getattr(self, name).text().replace("&", "").rstrip("…")

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


def _checkable(action: QAction) -> QAction:
    action.setCheckable(True)
    return action


def create_actions(parent: QWidget) -> Actions:
    a = _action
    return Actions(
        open=a(parent, "&Open Directory…", "document-open", Std.Open,
               "Scan a directory and show its image chains"),
        open_demo=a(parent, "Open &Demo", None, None,
                    "Build a demo directory with qemu-img (a Nova cache, snapshots, a broken "
                    "clone, a loop) and open it"),
        new_image=a(parent, "&New Image…", None, "Ctrl+Shift+N",
                    "Create a blank disk image (qcow2 or raw) in the open folder"),
        rescan=a(parent, "&Rescan", "view-refresh", ["F5", "Ctrl+R"],
                 "Scan the directory again"),
        stop_scan=a(parent, "&Stop Scanning", "stop", "Esc",
                    "Stop the scan that is running; what was shown before stays shown"),
        connect_libvirt=a(parent, "Connect to &libvirt…", "vm", None,
                          "Add or remove libvirt connections (this machine's or another host's), "
                          "to see which VMs use the images"),
        refresh_vms=a(parent, "Refresh &VMs", "view-refresh", "Shift+F5",
                      "Read the libvirt hosts again: which VMs are defined, their state and "
                      "disks"),
        preferences=a(parent, "&Preferences…", "settings", Std.Preferences,
                      "qemu binaries, launch and overlay defaults"),
        quit=a(parent, "&Quit", None, Std.Quit, "Close imagegui"),
        copy_path=a(parent, "&Copy Path", "edit-copy", "Ctrl+Shift+C",
                    "Copy the selected image's full path"),
        find=a(parent, "&Filter…", "filter", Std.Find,
               "Filter the chains list by name, format, state or problem"),
        undo_rebase=a(parent, "&Undo…", "edit-undo", Std.Undo, UNDO_TIP),
        zoom_in=a(parent, "Zoom &In", "zoom-in", ["Ctrl++", "Ctrl+="], "Zoom into the graph"),
        zoom_out=a(parent, "Zoom &Out", "zoom-out", "Ctrl+-", "Zoom out of the graph"),
        zoom_fit=a(parent, "&Fit All", "zoom-fit", "Ctrl+0", "Show the whole graph"),
        zoom_reset=a(parent, "&Actual Size", None, "Ctrl+1", "Zoom to 100 %"),
        show_selected=a(parent, "&Show Selected", None, "Ctrl+.",
                        "Scroll the graph to the selected image"),
        problems_only=_checkable(a(parent, "&Problems Only", "problems-only", "Ctrl+Shift+P",
                                   "Show only the chains with a problem or an unusable image "
                                   "in the graph")),
        show_graph=_checkable(a(parent, "&Graph", "view-graph", "Ctrl+Shift+G",
                                "Show the chains as a graph: bases on the left, overlays to "
                                "the right")),
        show_space=_checkable(a(parent, "&Space", "view-space", "Ctrl+Shift+S",
                                "Show where the disk space goes instead of the graph: each "
                                "image a rectangle as large as what it and its overlays hold "
                                "on disk")),
        overlay=a(parent, "Create &Overlay…", "overlay-new", "Ctrl+N",
                  "Create a qcow2 overlay (linked clone) of the selected image"),
        clone_vm=a(parent, "&New Linked-Clone VM…", "vm", None,
                   "Create a virtual machine in libvirt whose disk is a new overlay of the "
                   "selected image"),
        rebase=a(parent, "Re&base…", "rebase", "Ctrl+B",
                 "Point the selected image at another backing file"),
        commit=a(parent, "Co&mmit…", "commit", "Ctrl+Shift+M",
                 "Write the selected overlay's data into its backing file"),
        flatten=a(parent, "&Flatten…", "flatten", "Ctrl+Shift+F",
                  "Copy the selected image's whole chain into one independent qcow2"),
        convert=a(parent, "Con&vert…", None, None,
                  "Write the selected image in another format (VMware, Hyper-V, VHD, raw, "
                  "qcow2) as a new file"),
        resize=a(parent, "Resi&ze…", None, None,
                 "Change the size of the selected image's virtual disk"),
        take_snapshot=a(parent, "&Take Snapshot…", None, "Ctrl+T",
                        "Record the selected qcow2 image's current state as an internal "
                        "snapshot, to revert to later (Details lists its snapshots)"),
        check=a(parent, "C&heck", "check-image", "Ctrl+K",
                "Check the selected image's metadata for corruption and leaks (read-only)"),
        launch=a(parent, "&Launch in QEMU…", "launch", "Ctrl+L",
                 "Boot the selected image in a virtual machine"),
        repair=a(parent, "Re&pair Missing Backing…", "repair", "Ctrl+Shift+R",
                 "Find the moved base among the scanned images and point the overlay at it"),
        reveal=a(parent, "Re&veal in File Manager", "reveal", "Ctrl+Shift+O",
                 "Show the selected image in the file manager"),
        rename=a(parent, "Ren&ame…", None, "F2",
                 "Rename the selected image; the overlays that back onto it are re-pointed to "
                 "the new name"),
        move_to=a(parent, "Move To Fol&der…", None, None,
                  "Move the selected images into another folder; the overlays that back onto "
                  "them are re-pointed"),
        trash=a(parent, "Move to &Trash…", "user-trash", "Delete",
                "Move the selected image to the Trash (refused while anything depends on it, "
                "it is in use or a VM uses it); Restore puts it back"),
        trash_with_overlays=a(parent, "Delete With O&verlays…", None, None,
                              "Move the selected image and every overlay that depends on it to "
                              "the Trash, all listed first"),
        delete_permanently=a(parent, "Delete &Permanently…", None, "Shift+Delete",
                             "Delete the selected image for good, without the Trash: it cannot "
                             "be restored (its name is typed to confirm)"),
        clean_up=a(parent, "Clean &Up…", "clean-up", None,
                   "Find what can go (leftover files, empty overlays, old unused images, unused "
                   "cache bases) and move what you choose to the Trash"),
        about=a(parent, "&About imagegui", None, None, "Version and licence"),
    )  # fmt: skip


def update_undo(actions: Actions, target: UndoTarget | None) -> None:
    """Names the change Undo would revert ("Undo rebase of web06.qcow2", "Undo linked-clone VM
    web02"), whatever is selected; disabled, saying why, when there is none (``target`` None:
    the journal is not read yet)."""
    action = actions.undo_rebase
    keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
    if target is None or target.entry is None:
        why = target.reason if target is not None else "the rebase journal is being read"
        action.setText("&Undo…")
        action.setEnabled(False)
        action.setToolTip(f"{UNDO_TIP} ({keys})\nUnavailable: {why}")
        action.setStatusTip(f"Unavailable: {why}")
        return
    name = display_path(target.name).replace("&", "&&")
    if target.kind == DELETE_OP:
        batch = target.batch or (target.entry,)
        others = len(batch) - 1
        more = f" and {counted(others, 'other file')}" if others else ""
        action.setText(f"&Restore {name}{more}…")
        tip = (
            f"Put {display_path(target.entry.image)}{more} back from the Trash, where "
            f"{'they were' if others else 'it was'}"
        )
    elif target.kind == CLONE_OP:
        action.setText(f"&Undo linked-clone VM {name}…")
        tip = (
            f"Remove the VM {display_path(target.name)} from libvirt and delete its disk "
            f"{display_path(target.entry.image)}, if the VM has never run"
        )
    elif isinstance(target.entry, ChangeEntry):
        words = CHANGE_OPS.get(target.kind, target.kind)
        action.setText(f"&Undo {words} {name}…")
        tip = CHANGE_TIPS.get(target.kind, "Take back the last change")
    elif target.kind == MOVE_OP:
        action.setText(f"&Undo move of {name}…")
        tip = (
            f"Move {display_path(target.name)} back where it was and put back the backing "
            "pointers the move rewrote, if nothing changed since"
        )
    else:
        action.setText(f"&Undo rebase of {name}…")
        tip = (
            f"Put back the backing file {display_path(target.entry.image)} had before its last "
            "rebase, exactly as the journal recorded it"
        )
    action.setEnabled(True)
    action.setToolTip(f"{tip} ({keys})")
    action.setStatusTip(tip)


def _set(action: QAction, enabled: bool, why_not: str | None) -> None:
    """Enables ``action``, or disables it with the reason in its tooltip and status tip."""
    base = action.property("baseTip")
    if base is None:
        base = (action.toolTip(), action.statusTip())
        action.setProperty("baseTip", base)
    tip, status_tip = base
    action.setEnabled(enabled)
    if enabled or not why_not:
        action.setToolTip(tip)
        action.setStatusTip(status_tip)
    else:
        action.setToolTip(f"{tip}\nUnavailable: {why_not}")
        action.setStatusTip(f"Unavailable: {why_not}")


def disabled_reasons(snapshot: Snapshot | None, node: str | None) -> dict[str, str | None]:
    """For each image action, why it cannot apply to ``node`` now (None: it can)."""
    names = (
        "overlay", "clone_vm", "rebase", "commit", "flatten", "convert", "resize", "check",
        "launch", "repair", "trash", "trash_with_overlays", "delete_permanently", "rename",
        "move_to", "take_snapshot",
    )  # fmt: skip
    if snapshot is None:
        return dict.fromkeys(names, "open a directory first")
    if node is None or node not in snapshot.graph.nodes:
        return dict.fromkeys(names, "select an image first")
    graph = snapshot.graph
    kind, info = graph.nodes[node]
    label = display_path(short_name(node))
    if snapshot.remote_uri is not None:
        return dict.fromkeys(names, REMOTE_ONLY_SHOWN.format(uri=snapshot.remote_uri))
    if info is None or kind not in (IMAGE, EXTERNAL):
        what = {"missing": "does not exist", "protocol": "is a network source"}.get(
            kind, "is not a readable image"
        )
        return dict.fromkeys(names, f"{label} {what}")
    status = snapshot.status[node]
    reason = status.chain_reason(node)
    broken = f"qemu cannot open {label} ({reason})" if reason else None
    why: dict[str, str | None] = dict.fromkeys(names)
    for name in (
        "overlay", "clone_vm", "commit", "flatten", "convert", "resize", "launch", "take_snapshot"
    ):  # fmt: skip
        why[name] = broken
    if info.format != "qcow2":
        why["take_snapshot"] = (
            f"only qcow2 images hold internal snapshots; {label} is {info.format}"
        )
    if info.format not in RESIZABLE:
        why["resize"] = f"qemu cannot resize a {info.format} image; convert it to qcow2 first"
    if status.broken_at == node and status.broken_kind and KINDS[status.broken_kind].stops_check:
        why["check"] = broken
    if info.format not in ("qcow2", "qed"):
        why["rebase"] = f"only qcow2 and qed images can be rebased; {label} is {info.format}"
    if not info.backing_file:
        why["commit"] = f"{label} has no backing file to commit into"
    elif info.backing_protocol:
        why["commit"] = f"{label}'s backing file is a network source"
    if missing_backing(graph, node) is None:
        why["repair"] = f"{label}'s backing file is not missing"
    if kind != IMAGE:
        outside = f"{label} is outside the scanned folder"
        why["trash"] = why["trash_with_overlays"] = why["delete_permanently"] = outside
        why["rename"] = why["move_to"] = outside
    elif not graph.children(node):
        why["trash_with_overlays"] = f"no overlay depends on {label}: Move to Trash removes it"
    return why


def update_enabled(actions: Actions, snapshot: Snapshot | None, node: str | None) -> None:
    """Enables each image action only where it can apply to the selected node, and says why
    not in the tooltip and status tip of the others."""
    have = snapshot is not None
    for action in (actions.rescan, actions.zoom_in, actions.zoom_out, actions.zoom_fit,
                   actions.zoom_reset, actions.problems_only):  # fmt: skip
        action.setEnabled(have)
    if not have:
        why_not: str | None = "open a directory first"
    elif snapshot.remote_uri is not None:
        why_not = REMOTE_ONLY_SHOWN.format(uri=snapshot.remote_uri)
    else:
        why_not = None
    _set(actions.clean_up, why_not is None, why_not)
    _set(actions.new_image, why_not is None, why_not)
    kind, info = (None, None)
    if have and node in snapshot.graph.nodes:
        kind, info = snapshot.graph.nodes[node]
    for name, why in disabled_reasons(snapshot, node).items():
        _set(getattr(actions, name), why is None, why)
    actions.copy_path.setEnabled(kind is not None)
    local = have and snapshot.remote_uri is None
    actions.reveal.setEnabled(kind is not None and local and "://" not in (node or ""))
    actions.show_selected.setEnabled(kind is not None)
