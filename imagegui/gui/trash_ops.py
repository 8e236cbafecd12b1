"""Delete, Restore and Clean Up in the window: the dialogs, the runs, and what the window says.

Kept apart from ``ops.py`` (the operations that write images) because these remove files: every
one goes through a plan and its preview with Cancel as the default button, runs on a worker, and
ends with a rescan and a status line that says what happened and how to take it back ("Moved 3
images (4.2 GiB) to the Trash", with Undo beside it while the Restore is on offer).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QMenu

from imagegui.core.chains.graph import IMAGE, ChainGraph
from imagegui.core.chains.space import Maps, read_maps, space_report
from imagegui.core.jobs import CancelToken, Job, Outcome, ProgressFn
from imagegui.core.ops import journal
from imagegui.core.ops.clean import categories, plan_clean, select
from imagegui.core.ops.delete import DeleteResult, RestoreResult
from imagegui.core.ops.journal import DeleteEntry, UndoTarget
from imagegui.core.ops.plan import Plan
from imagegui.core.qemu.qemuimg import read_layer_map
from imagegui.core.units import counted, display_path, human_size
from imagegui.core.virt.inventory import DomainSource
from imagegui.gui.dialogs.cleanup_dialog import CleanUpDialog, Finder, Found, Planner
from imagegui.gui.dialogs.delete_dialog import DeleteDialog, plan_bytes, plan_paths
from imagegui.gui.dialogs.messages import failure_box
from imagegui.gui.dialogs.undo_dialog import RestoreDialog
from imagegui.gui.ops import Ops
from imagegui.gui.workers import TaskSlot


def moved_message(
    result: object, fallback: Sequence[str], size: int | None, permanent: bool, noun: str = "image"
) -> str:
    """ "Moved web06.qcow2 (64 MiB) to the Trash", "Deleted 3 images (4.2 GiB) permanently; 1
    kept: …", from the run's result, else (no result) from the plan's figures."""
    if isinstance(result, DeleteResult):
        paths = result.removed if permanent else [t.original for t in result.trashed]
        size = result.freed if permanent else result.in_trash
        kept = result.kept
    else:
        paths, kept = list(fallback), []
    what = (
        display_path(os.path.basename(paths[0])) if len(paths) == 1 else counted(len(paths), noun)
    )
    if paths and size is not None:
        what += f" ({human_size(size)})"
    text = f"Deleted {what} permanently" if permanent else f"Moved {what} to the Trash"
    if kept:
        text += f"; {len(kept):,} kept: {display_path(kept[0].message)}"
    return text


def restorable(limit: int = 15) -> list[tuple[DeleteEntry, ...]]:
    """The deletes whose files are still in the Trash, newest first, each as its files (the last
    one moved first: a base after its overlays), from the journal; ``limit`` of them. Reads the
    journal and the Trash folders: call it on a worker."""
    from imagegui.core.ops.trash import locate

    batches: dict[str, list[DeleteEntry]] = {}
    for entry in journal.in_trash():
        if locate(entry.trashed_file()) is not None:
            batches.setdefault(entry.batch or entry.id, []).append(entry)
    out = [tuple(reversed(b)) for b in batches.values()]
    out.sort(key=lambda b: b[0].time, reverse=True)
    return out[:limit]


def restored_message(result: object) -> str:
    """ "Restored web06.qcow2 from the Trash", "Restored 3 files from the Trash; 1 could not
    be: …"."""
    back = result.restored if isinstance(result, RestoreResult) else []
    if len(back) == 1:
        text = f"Restored {display_path(os.path.basename(back[0]))} from the Trash"
    else:
        text = f"Restored {counted(len(back), 'file')} from the Trash"
    if isinstance(result, RestoreResult) and result.kept:
        text += f"; {len(result.kept):,} could not be: {display_path(result.kept[0].message)}"
    return text


class TrashOps(QObject):
    """Move to Trash…, Delete With Overlays…, Delete Permanently…, Restore and Clean Up…."""

    #: A status line and whether Undo (Restore) belongs beside it.
    message = Signal(str, bool)

    def __init__(self, ops: Ops, selected: Callable[[], list[str]] | None = None):
        super().__init__(ops)
        self.ops = ops
        #: The images selected for a delete (the chains list's rows), the current one first.
        self.selected = selected or (lambda: [ops.selection.node] if ops.selection.node else [])
        #: What to say once the rescan after a removal is shown (a scan starting clears the
        #: status bar, so said before it, it would flash and go).
        self._pending: tuple[str, bool] | None = None
        ops.session.snapshotReady.connect(self._on_snapshot_ready)
        ops.session.scanUnchanged.connect(lambda: self._on_snapshot_ready(None))
        #: Edit ▸ Restore from Trash: every delete whose files are still in the Trash (Undo
        #: offers only the last change), read on a worker with each scan and after each job.
        self.restore_menu = QMenu("Restore from &Trash", ops.window)
        self.restore_menu.setObjectName("restoreMenu")
        self.restore_menu.setToolTipsVisible(True)
        self.restore_menu.menuAction().setStatusTip(
            "Put back files imagegui moved to the Trash, while they are still there"
        )
        self.batches: list[tuple[DeleteEntry, ...]] = []
        self._reading = TaskSlot(self, on_done=self._on_restorable)
        self._show_restorable([])
        for sig in (ops.jobs.jobFinished, ops.jobs.jobFailed, ops.jobs.jobCancelled):
            sig.connect(lambda *_: self.refresh_restorable())
        self.refresh_restorable()

    # -- restore from trash

    def refresh_restorable(self) -> None:
        self._reading.start(Job("read the deletions", lambda p, c: restorable()))

    def _on_restorable(self, batches: list[tuple[DeleteEntry, ...]]) -> None:
        self.batches = batches
        self._show_restorable(batches)

    def _show_restorable(self, batches: list[tuple[DeleteEntry, ...]]) -> None:
        menu = self.restore_menu
        menu.clear()
        for batch in batches:
            first = batch[0]
            name = display_path(os.path.basename(first.original)).replace("&", "&&")
            more = f" and {counted(len(batch) - 1, 'other file')}" if len(batch) > 1 else ""
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(first.time))
            action = menu.addAction(f"{name}{more} ({when})…")
            action.setToolTip(
                "Put back "
                + ", ".join(display_path(e.original) for e in batch[:5])
                + (" …" if len(batch) > 5 else "")
            )
            action.triggered.connect(lambda _=False, b=batch: self.restore_entries(list(b)))
        menu.menuAction().setEnabled(bool(batches))
        if not batches:
            menu.menuAction().setToolTip(
                "Unavailable: nothing imagegui moved to the Trash is still there"
            )
        else:
            menu.menuAction().setToolTip("")

    def _say_after_rescan(self, text: str, undo: bool) -> None:
        self._pending = (text, undo)

    def _on_snapshot_ready(self, _snapshot: object) -> None:
        self.refresh_restorable()  # the Trash may have been emptied meanwhile
        if self._pending is not None:
            text, undo = self._pending
            self._pending = None
            self.message.emit(text, undo)

    # -- delete

    def delete(self, with_overlays: bool = False, permanent: bool = False) -> None:
        """The selected images (several rows of the list, or the current image) to the Trash,
        with every overlay above them, or for good: the plan first, in a dialog whose default
        button is Cancel."""
        info, graph, snap = self.ops.current(), self.ops.graph, self.ops.session.snapshot
        if info is None or graph is None or snap is None:
            return
        chosen = [n for n in self.selected() if graph.kind(n) == IMAGE]
        paths = chosen if info.path in chosen else [info.path]
        overlays: set[str] = set()
        for path in paths:
            overlays |= graph.descendants(path)
        # A base chosen together with everything that depends on it: they go together (tops
        # first), as Delete With Overlays would take them; otherwise its overlays refuse it.
        together = bool(overlays) and overlays <= set(paths)
        if not (with_overlays or together):
            overlays = set()
        dialog = DeleteDialog(
            paths,
            self.ops.window,
            with_overlays=with_overlays,
            together=together,
            permanent=permanent,
            overlays=sorted(overlays - set(paths)),
            root=snap.root,
            domains=self.ops.domains(),
        )
        gone = set(paths) | overlays
        below = next(
            (b for p in paths if (b := graph.backing_of(p)) and b not in gone and graph.image(b)),
            None,
        )
        self.ops._open(
            dialog,
            lambda d: self.run_removal(d.plan, d.windowTitle(), d.paths, d.permanent, below),
        )

    def run_removal(
        self,
        plan: Plan | None,
        title: str,
        fallback: Sequence[str],
        permanent: bool,
        select: str | None = None,
        noun: str = "image",
    ) -> None:
        """Runs an accepted delete (or clean-up) plan; then rescans, selects ``select`` and says
        what moved, with Undo beside it when the files went to the Trash."""
        if plan is None or plan.refused:
            return
        paths, size = plan_paths(plan, fallback), plan_bytes(plan)
        session = self.ops.session
        session.hold()

        def done(outcome: Outcome, payload: object) -> None:
            session.release()  # rescans: the cards go
            if outcome == Outcome.DONE:
                self.ops.select_after_scan = select
                text = moved_message(payload, paths, size, permanent, noun)
                undoable = isinstance(payload, DeleteResult) and bool(payload.trashed)
                self._say_after_rescan(text, undoable)
                if isinstance(payload, DeleteResult) and payload.errors:
                    errors = "\n".join(payload.errors)
                    self.ops.last_box = failure_box(self.ops.window, title, errors)
            elif outcome == Outcome.FAILED:
                self.ops.last_box = failure_box(self.ops.window, title, payload)
            else:
                self.message.emit(display_path(str(payload)), False)

        self.ops.jobs.start(Job(title, plan.run), done)

    # -- restore

    def restore(self, target: UndoTarget) -> None:
        """Undo of a delete: every file of the last delete still in the Trash goes back (the
        plan refuses, naming why, one whose name is taken again or that left the Trash)."""
        last = target.entry
        if not isinstance(last, DeleteEntry):
            return
        # The file Undo names first (the last one moved: a base after its overlays).
        batch = target.batch or (last,)
        self.restore_entries([last, *(e for e in batch if e.id != last.id)])

    def restore_entries(self, entries: list[DeleteEntry]) -> None:
        """Puts ``entries`` (the files of one delete) back, through the plan and its preview."""
        if not entries:
            return
        dialog = RestoreDialog(entries, self.ops.window)
        session = self.ops.session

        def accepted(d: RestoreDialog) -> None:
            plan = d.plan
            if plan is None or plan.refused:
                return
            session.hold()

            def done(outcome: Outcome, payload: object) -> None:
                session.release()
                if outcome == Outcome.DONE:
                    back = payload.restored if isinstance(payload, RestoreResult) else []
                    self.ops.select_after_scan = back[0] if back else None
                    self._say_after_rescan(restored_message(payload), False)
                    if isinstance(payload, RestoreResult) and payload.errors:
                        errors = "\n".join(payload.errors)
                        self.ops.last_box = failure_box(self.ops.window, d.windowTitle(), errors)
                elif outcome == Outcome.FAILED:
                    self.ops.last_box = failure_box(self.ops.window, d.windowTitle(), payload)
                else:
                    self.message.emit(display_path(str(payload)), False)

            self.ops.jobs.start(Job(d.windowTitle(), plan.run), done)

        self.ops._open(dialog, accepted)

    # -- clean up

    def clean_up(self) -> None:
        """File ▸ Clean Up…: what can go is found on the dialog's worker, the plan for what is
        ticked shown below it; the kinds ticked and the age are remembered when it runs."""
        snap = self.ops.session.snapshot
        if snap is None or snap.remote_uri is not None:
            return
        settings = self.ops.settings
        dialog = CleanUpDialog(
            reclaimable_finder(snap.graph, self.ops.qemu_img),
            clean_planner(self.ops.domains(), snap.root),
            self.ops.window,
            root=snap.root,
            days=settings.cleanup_days(),
            unticked=settings.cleanup_unticked(),
            domains=self.ops.domains(),
        )

        def accepted(d: CleanUpDialog) -> None:
            settings.set_cleanup_days(d.days.value())
            settings.set_cleanup_unticked(sorted(d.unticked))
            chosen = [i.path for i in d.chosen()]
            self.run_removal(d.plan, "Clean up", chosen, permanent=False, noun="file")

        self.ops._open(dialog, accepted)


def reclaimable_finder(graph: ChainGraph, qemu_img: str = "") -> Finder:
    """What can go in ``graph``'s folder for an age limit, as ``imagegui clean`` finds it (the
    space accounting's reclaimable files, ``clean.select``: an empty overlay too only once that
    old), run on the dialog's worker. The allocation maps (the slow part, needed to tell an
    empty overlay) are read once per dialog, with progress and Cancel; a new age only redoes the
    arithmetic."""
    maps: list[Maps] = []

    def find(days: int, progress: ProgressFn, cancel: CancelToken) -> Found:
        if not maps:
            reader = lambda info, c: read_layer_map(info, c, qemu_img=qemu_img)  # noqa: E731
            maps.append(read_maps(graph, reader, progress, cancel))
        report = space_report(graph, maps[0], older_than_days=float(days))
        items = select(report, categories(nova=True), float(days))
        return Found(items, [m for p, m in report.notes if p == report.root])

    return find


def clean_planner(domains: DomainSource, root: str) -> Planner:
    """The plan for the files ticked, as ``imagegui clean`` makes it: one delete with the same
    guards as Move to Trash, where a file a guard keeps (it gained an overlay, a VM started
    using it, a leftover is open again) keeps only itself; the notes become its warnings."""

    def make(items: Sequence, notes: Sequence[str]) -> Plan:
        return plan_clean(items, root, domains, notes=notes)

    return make
