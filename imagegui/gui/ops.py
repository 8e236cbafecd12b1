"""The image actions: open the right dialog, run the accepted plan as a job, rescan after it.

Dialogs are opened with ``open()`` (window-modal, no nested event loop) and deleted on close;
``dialog`` is the one opened last, which the tests drive by setting fields and calling
``accept()``. Writing operations hold the session's automatic rescans until they end, so a
half-written file is never scanned; the graph refreshes once each job ends.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from PySide6.QtCore import QObject, QProcess, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QDialog, QMainWindow, QMessageBox

from imagegui.core.chains.graph import ChainGraph
from imagegui.core.jobs import Job, Outcome
from imagegui.core.ops import journal
from imagegui.core.ops.check import CheckResult, plan_check
from imagegui.core.ops.launch import LaunchResult
from imagegui.core.ops.launchvirt import LibvirtLaunchResult, local_uri
from imagegui.core.ops.plan import Plan
from imagegui.core.read.model import ImageInfo
from imagegui.core.units import display_path
from imagegui.core.virt.connect import local_uris
from imagegui.core.virt.inventory import DomainSource
from imagegui.gui.actions import update_undo
from imagegui.gui.dialogs.check_repair_dialog import CheckRepairDialog
from imagegui.gui.dialogs.clone_vm_dialog import CloneVmDialog
from imagegui.gui.dialogs.commit_dialog import CommitDialog
from imagegui.gui.dialogs.convert_dialog import ConvertDialog
from imagegui.gui.dialogs.flatten_dialog import FlattenDialog
from imagegui.gui.dialogs.launch_dialog import LaunchDialog
from imagegui.gui.dialogs.leftovers_dialog import RemoveLeftoversDialog
from imagegui.gui.dialogs.messages import check_result_box, failure_box, info_box
from imagegui.gui.dialogs.new_image_dialog import NewImageDialog
from imagegui.gui.dialogs.overlay_dialog import OverlayDialog
from imagegui.gui.dialogs.rebase_dialog import RebaseDialog
from imagegui.gui.dialogs.repair_dialog import RepairDialog
from imagegui.gui.dialogs.resize_dialog import ResizeDialog
from imagegui.gui.dialogs.snapshot_dialog import SnapshotDialog
from imagegui.gui.dialogs.undo_dialog import (
    UndoChangeDialog,
    UndoCloneVmDialog,
    UndoMoveDialog,
    UndoRebaseDialog,
)
from imagegui.gui.panels.jobs import JobsPanel
from imagegui.gui.panels.vms import VmsPanel
from imagegui.gui.session import Selection, Session
from imagegui.gui.settings import Settings
from imagegui.gui.workers import TaskSlot


class Ops(QObject):
    dialogOpened = Signal(object)
    #: The Undo on offer changed (a ``journal.UndoTarget``).
    undoChanged = Signal(object)
    #: A message for the status bar.
    message = Signal(str)
    #: A change Undo can take back is done (a new image, a convert, a snapshot taken, a grow):
    #: its message, for the status bar to show with an Undo button beside it once rescanned.
    undoable = Signal(str)

    def __init__(
        self,
        window: QMainWindow,
        session: Session,
        selection: Selection,
        jobs: JobsPanel,
        vms: VmsPanel,
        settings: Settings,
    ):
        super().__init__(window)
        self.window = window
        self.session = session
        self.selection = selection
        self.jobs = jobs
        self.vms = vms
        self.settings = settings
        self.dialog: QDialog | None = None
        #: Select this path once the next scan shows it (a new overlay, a flattened copy).
        self.select_after_scan: str | None = None
        self.last_box = None
        #: What Undo acts on: the journal's last change, read with each scan and after each job.
        self.undo: journal.UndoTarget | None = None
        #: Reads the journal; a newer read supersedes one still running.
        self._journal = TaskSlot(self, on_done=self.set_undo)
        for sig in (jobs.jobFinished, jobs.jobFailed, jobs.jobCancelled):
            sig.connect(lambda *_: self.refresh_undo())
        session.snapshotReady.connect(lambda snap: self.set_undo(snap.undo))
        #: The message of a journalled change, said with Undo once the rescan it starts is in
        #: (said before, the rescan's own message would replace it at once).
        self._undoable_text: str | None = None
        session.snapshotReady.connect(self._say_undoable)
        session.scanUnchanged.connect(lambda: self._say_undoable(None))  # the rescan is in
        update_undo(window.actions, None)  # disabled until the journal has been read
        self.refresh_undo()

    # -- what the actions act on

    @property
    def qemu_img(self) -> str:
        """The qemu-img every plan runs: the Preferences' choice ("" for the one on PATH)."""
        return self.settings.qemu_img()

    def domains(self) -> DomainSource:
        """Where the plans ask libvirt which VMs use the images: the connections the user made
        to this machine (File ▸ Connect to libvirt…), else the defaults tried quietly. Only
        built here; each plan reads it on its worker. Other hosts' VMs cannot use files here,
        so they are not asked."""
        local = tuple(local_uris(self.settings.libvirt_uris()))
        return DomainSource(local or None)

    @property
    def graph(self) -> ChainGraph | None:
        snap = self.session.snapshot
        return snap.graph if snap else None

    def current(self) -> ImageInfo | None:
        graph, node = self.graph, self.selection.node
        return graph.image(node) if graph is not None and node else None

    def _taken(self) -> set[str]:
        graph = self.graph
        return set(graph.nodes) if graph else set()

    # -- dialogs

    def _open(self, dialog: QDialog, on_accepted: Callable[[QDialog], None]) -> QDialog:
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: on_accepted(dialog))
        self.dialog = dialog
        dialog.open()
        self.dialogOpened.emit(dialog)
        return dialog

    def create_overlay(self) -> None:
        info = self.current()
        if info is None:
            return
        defaults = self.settings.overlay_defaults()
        root = self.session.snapshot.root if self.session.snapshot else ""
        dialog = OverlayDialog(
            info,
            defaults,
            self._taken(),
            self.window,
            root=root,
            qemu_img=self.qemu_img,
            domains=self.domains(),
        )

        def accepted(d: OverlayDialog) -> None:
            if (chosen := d.chosen_defaults(defaults)) is not None:
                self.settings.set_overlay_defaults(chosen)
            self.run_plan(d.plan, f"Create overlay {os.path.basename(d.new_path)}", d.new_path)

        self._open(dialog, accepted)

    def clone_vm(self) -> None:
        """New Linked-Clone VM…: the VMs that use the image are read on the dialog's worker."""
        info = self.current()
        if info is None:
            return
        root = self.session.snapshot.root if self.session.snapshot else ""
        dialog = CloneVmDialog(
            info,
            self._taken(),
            self.settings.libvirt_uris(),
            self.window,
            root=root,
            qemu_img=self.qemu_img,
        )
        self._open(
            dialog,
            lambda d: self.run_plan(d.plan, f"Create VM {d.name.text()}", d.new_path),
        )

    def rebase(self, backing: str | None = None, unsafe: bool = False) -> None:
        info, snap = self.current(), self.session.snapshot
        if info is None or snap is None:
            return
        dialog = RebaseDialog(
            info, snap, backing, unsafe, self.window, qemu_img=self.qemu_img, domains=self.domains()
        )
        self._open(dialog, lambda d: self.run_plan(d.plan, f"Rebase {info.name}"))

    def record_format(self) -> None:
        """The fix for an unrecorded or wrong backing format: unsafe rebase onto the same file."""
        info = self.current()
        if info is not None and info.backing_path:
            self.rebase(info.backing_path, unsafe=True)

    def commit(self) -> None:
        info, snap = self.current(), self.session.snapshot
        if info is None or snap is None:
            return
        dialog = CommitDialog(
            info, snap, self.window, qemu_img=self.qemu_img, domains=self.domains()
        )
        self._open(dialog, lambda d: self.run_plan(d.plan, f"Commit {info.name}"))

    def flatten(self) -> None:
        info = self.current()
        if info is None:
            return
        root = self.session.snapshot.root if self.session.snapshot else ""
        dialog = FlattenDialog(
            info,
            self._taken(),
            self.window,
            root=root,
            qemu_img=self.qemu_img,
            domains=self.domains(),
        )
        self._open(
            dialog,
            lambda d: self.run_plan(
                d.plan, f"Flatten {info.name} → {os.path.basename(d.out_path)}", d.out_path
            ),
        )

    def convert(self) -> None:
        info = self.current()
        if info is None:
            return
        root = self.session.snapshot.root if self.session.snapshot else ""
        dialog = ConvertDialog(
            info, self._taken(), self.window, root=root, qemu_img=self.qemu_img,
            domains=self.domains(),
        )  # fmt: skip
        self._open(
            dialog,
            lambda d: self.run_plan(
                d.plan, f"Convert {info.name} → {os.path.basename(d.out_path)}", d.out_path
            ),
        )

    def new_image(self) -> None:
        """File ▸ New Image…: a blank image in the open folder (or where the user browses)."""
        snap = self.session.snapshot
        if snap is None or snap.remote_uri is not None:
            return
        dialog = NewImageDialog(snap.root, self._taken(), self.window, qemu_img=self.qemu_img)
        self._open(
            dialog,
            lambda d: self.run_plan(
                d.plan, f"New image {os.path.basename(d.new_path)}", d.new_path
            ),
        )

    def snapshot(self, action: str = "create", name: str = "") -> None:
        """Take, revert to or delete an internal snapshot of the selected qcow2 image."""
        info = self.current()
        if info is None:
            return
        root = self.session.snapshot.root if self.session.snapshot else ""
        dialog = SnapshotDialog(
            info, action, name, self.window, root=root, qemu_img=self.qemu_img,
            domains=self.domains(),
        )  # fmt: skip
        what = {"create": "Snapshot", "apply": "Revert", "delete": "Delete snapshot of"}[action]
        self._open(dialog, lambda d: self.run_plan(d.plan, f"{what} {info.name}", info.path))

    def resize(self) -> None:
        info = self.current()
        if info is None:
            return
        root = self.session.snapshot.root if self.session.snapshot else ""
        dialog = ResizeDialog(
            info, self.window, root=root, qemu_img=self.qemu_img, domains=self.domains()
        )
        self._open(dialog, lambda d: self.run_plan(d.plan, f"Resize {info.name}", info.path))

    def repair(self) -> None:
        info, snap = self.current(), self.session.snapshot
        if info is None or snap is None:
            return
        dialog = RepairDialog(
            info, snap, self.window, qemu_img=self.qemu_img, domains=self.domains()
        )
        self._open(dialog, lambda d: self.run_plan(d.plan, f"Repair {info.name}"))

    def undo_rebase(self) -> None:
        """Undoes the journal's last change, whichever image is selected (it is named)."""
        target = self.undo
        if target is None or target.entry is None:
            return
        entry = target.entry
        if isinstance(entry, journal.CloneVmEntry):
            undo = UndoCloneVmDialog(entry, self.window)
            self._open(undo, lambda d: self.run_plan(d.plan, f"Undo linked-clone VM {target.name}"))
            return
        if isinstance(entry, journal.ChangeEntry):
            created = entry.kind in (journal.NEW_OP, journal.CONVERT_OP)
            change = UndoChangeDialog(
                entry, self.window, qemu_img=self.qemu_img, domains=self.domains()
            )
            label = f"Undo {entry.words}"
            self._open(
                change, lambda d: self.run_plan(d.plan, label, None if created else entry.image)
            )
            return
        if isinstance(entry, journal.MoveEntry):
            back = entry.renames[0]["src"] if entry.renames else None
            moving = UndoMoveDialog(
                entry, self.window, qemu_img=self.qemu_img, domains=self.domains()
            )
            self._open(moving, lambda d: self.run_plan(d.plan, f"Undo move of {target.name}", back))
            return
        dialog = UndoRebaseDialog(
            entry, self.window, qemu_img=self.qemu_img, domains=self.domains()
        )
        self._open(
            dialog,
            lambda d: self.run_plan(d.plan, f"Undo rebase of {target.name}", entry.image),
        )

    def remove_leftovers(self, paths: list[str]) -> None:
        """Leftover temporary files of interrupted flattens: confirm (Cancel is the default),
        remove on a worker, rescan."""
        if not paths:
            return
        dialog = RemoveLeftoversDialog(paths, self.window, domains=self.domains())
        n = len(paths)
        title = "Remove leftover file" if n == 1 else f"Remove {n} leftover files"
        self._open(dialog, lambda d: self.run_plan(d.plan, title))

    # -- the undo on offer

    def refresh_undo(self) -> None:
        """Reads the journal again on a worker (an operation may have written it)."""
        self._journal.start(Job("read the rebase journal", lambda p, c: journal.undo_target()))

    def set_undo(self, target: journal.UndoTarget | None) -> None:
        if target is None:
            return
        self.undo = target
        update_undo(self.window.actions, target)
        self.undoChanged.emit(target)

    def launch(self) -> None:
        info, graph, snap = self.current(), self.graph, self.session.snapshot
        if info is None or graph is None or snap is None:
            return
        dialog = LaunchDialog(
            info,
            len(graph.children(info.path)),
            snap.root,
            self.settings.memory_mib(),
            self.settings.cpus(),
            self.settings.qemu_system(),
            self.settings.accel(),
            self.window,
            runner=self.settings.launch_runner(),
            libvirt_uri=self.libvirt_uri(),
            domains=self.domains(),
        )

        def accepted(d: LaunchDialog) -> None:
            if d.remember.isChecked():
                self.settings.set_memory_mib(d.memory.value())
                self.settings.set_cpus(d.cpus.value())
                self.settings.set_accel(d.accel_key())
            self.settings.set_launch_runner(d.runner.value())
            self.jobs.start(Job(f"Launch {info.name}", d.plan.run), self._on_launched)

        self._open(dialog, accepted)

    def libvirt_uri(self) -> str:
        """The connection a launch through libvirt uses: the first on this machine that the
        user connected to, else the first default (also when the user connected only to other
        hosts: the image is a file here); "" when there is none."""
        from imagegui.core.virt.connect import default_uris

        return local_uri([*self.settings.libvirt_uris(), *default_uris()], fallback="")

    def _on_libvirt_launched(self, result: LibvirtLaunchResult) -> None:
        """libvirt's VM is not this window's to stop: say where it is and offer its screen."""
        self.message.emit(display_path(" ".join(filter(None, (result.message, result.note)))))
        how = (
            "It keeps running when imagegui quits, and libvirt forgets it when it stops."
            if result.transient
            else "It keeps running when imagegui quits."
        )
        where = "Stop it or open its screen in virt-manager."
        if not result.console:
            where = "Open its screen in virt-manager (virt-viewer is not installed)."
        box = info_box(
            self.window,
            "Launched through libvirt",
            f"The VM {result.domain} runs at {result.uri}.",
            f"{how} {where}",
        )
        if result.console:
            button = box.addButton("Open Console", QMessageBox.ButtonRole.ActionRole)
            button.clicked.connect(lambda: self.open_console(result.console))
        self.last_box = box
        self.session.rescan_soon(600)  # the in-use badges

    def open_console(self, argv: list[str]) -> bool:
        """Starts virt-viewer on its own (it outlives this window); never waits for it."""
        ok = QProcess.startDetached(argv[0], argv[1:])[0]
        if not ok:
            self.message.emit(f"Could not start {argv[0]}")
        return bool(ok)

    def _on_launched(self, outcome: Outcome, payload: object) -> None:
        if outcome == Outcome.DONE and isinstance(payload, LibvirtLaunchResult):
            self._on_libvirt_launched(payload)
        elif outcome == Outcome.DONE and isinstance(payload, LaunchResult):
            vm = payload.vm
            self.vms.add(vm)
            self.message.emit(display_path(" ".join(filter(None, (payload.message, vm.note)))))
            self.session.rescan_soon(600)  # the in-use badges
        elif outcome == Outcome.FAILED:
            hint = ""
            if "kvm" in str(payload).lower():
                hint = (
                    "KVM is present but does not work here (nested virtualisation?): choose the "
                    "TCG accelerator in the Launch dialog."
                )
            self.last_box = failure_box(self.window, "Launch", payload, hint)

    def check(self) -> None:
        """Read-only: no confirmation; the result opens in a box when qemu-img is done, and
        becomes the image's problems (kept by core.chains.checkstore) once the rescan it starts
        ends."""
        info = self.current()
        if info is None:
            return
        path = info.path
        roots = (self.session.snapshot.root,) if self.session.snapshot else ()
        qemu_img = self.qemu_img
        job = Job(
            f"Check {info.name}",
            lambda p, c: plan_check(path, roots=roots, qemu_img=qemu_img).run(p, c),
        )

        def done(outcome: Outcome, payload: object) -> None:
            if outcome in (Outcome.DONE, Outcome.FAILED):
                self.session.rescan()  # on a worker: the findings show as problems
            if outcome == Outcome.DONE and isinstance(payload, CheckResult):
                self.last_box = check_result_box(self.window, payload)
                self._offer_repair(self.last_box, payload, path)
            elif outcome == Outcome.FAILED:
                self.last_box = failure_box(self.window, "Check", payload)

        self.jobs.start(job, done)

    def _offer_repair(self, box: QMessageBox, result: CheckResult, path: str) -> None:
        """Repair Leaks… / Repair All… right in the result box, when the check found that."""
        rec = result.record
        notes = [n for n in (result.store_note,) if n]
        if rec is None and result.problems:
            notes.append(
                "The image changed while it was checked (a running VM?), so this result is not "
                "kept: check it again when it is idle."
            )
        if notes:
            box.setInformativeText(
                "\n\n".join([box.informativeText(), *map(display_path, notes)]).strip()
            )
        if rec is None:
            return
        offers = []
        if rec.leaks:
            offers.append(("leaks", "Repair Leaks…"))
        if rec.corruptions or rec.check_errors:
            offers.append(("all", "Repair All…"))
        for mode, label in offers:
            button = box.addButton(label, QMessageBox.ButtonRole.ActionRole)
            button.clicked.connect(lambda _=False, m=mode: self.repair_check(m, path))

    def repair_check(self, mode: str = "leaks", path: str | None = None) -> None:
        """Repair what a check found (``mode`` "leaks" or "all"), through plan and preview."""
        graph = self.graph
        node = path or self.selection.node
        info = graph.image(node) if graph is not None and node else None
        if info is None:
            return
        dialog = CheckRepairDialog(
            info,
            graph.problems_for(info.path),
            mode,
            self.window,
            qemu_img=self.qemu_img,
            domains=self.domains(),
        )
        self._open(
            dialog,
            lambda d: self.run_plan(
                d.plan, f"{'Repair leaks of' if d.repair_mode == 'leaks' else 'Repair'} {info.name}"
            ),
        )

    # -- running

    def run_plan(self, plan: Plan | None, title: str, select: str | None = None):
        """Runs an accepted plan as a job; rescans and selects ``select`` when it is done."""
        if plan is None or plan.refused:
            return None
        self.session.hold()

        def done(outcome: Outcome, payload: object) -> None:
            self.session.release()
            if outcome == Outcome.DONE:
                self.select_after_scan = select
                text = display_path(getattr(payload, "message", title))
                self.message.emit(text)
                if journalled_change(plan):
                    self._undoable_text = text
            elif outcome == Outcome.FAILED:
                self.last_box = failure_box(self.window, title, payload)
            else:
                self.message.emit(display_path(str(payload)))

        return self.jobs.start(Job(title, plan.run), done)

    def _say_undoable(self, _snapshot: object) -> None:
        if self._undoable_text is not None:
            text, self._undoable_text = self._undoable_text, None
            self.undoable.emit(text)

    # -- no dialog

    def copy_path(self) -> None:
        node = self.selection.node
        if node:
            QGuiApplication.clipboard().setText(node)
            self.message.emit(f"Copied {display_path(node)}")

    def reveal(self) -> None:
        """Asks the file manager to show the file selected (freedesktop FileManager1 over
        D-Bus, asynchronously); without that service, opens the file's directory instead."""
        node = self.selection.node
        if not node or "://" in node:
            return
        directory = QUrl.fromLocalFile(os.path.dirname(node))
        try:
            from PySide6.QtDBus import QDBusConnection, QDBusMessage, QDBusPendingCallWatcher
        except ImportError:
            QDesktopServices.openUrl(directory)
            return
        bus = QDBusConnection.sessionBus()
        if not bus.isConnected():
            QDesktopServices.openUrl(directory)
            return
        msg = QDBusMessage.createMethodCall(
            "org.freedesktop.FileManager1",
            "/org/freedesktop/FileManager1",
            "org.freedesktop.FileManager1",
            "ShowItems",
        )
        msg.setArguments([[QUrl.fromLocalFile(node).toString()], ""])
        watcher = QDBusPendingCallWatcher(bus.asyncCall(msg), self)

        def finished(w: QDBusPendingCallWatcher) -> None:
            if w.isError():  # no file manager implements it: open the directory
                QDesktopServices.openUrl(directory)
            w.deleteLater()

        watcher.finished.connect(finished)


def journalled_change(plan: Plan) -> bool:
    """Whether running ``plan`` recorded a change Undo can take back: a new image, a convert,
    a snapshot taken, a disk grown (``journal.ChangeEntry``), a move or rename."""
    if plan.op in ("new", "convert", "move"):
        return True
    if plan.op == "snapshot":
        return getattr(plan, "action", "") == "create"
    if plan.op == "resize":
        return getattr(plan, "new_size", 0) > getattr(plan, "old_size", 0)
    return False
