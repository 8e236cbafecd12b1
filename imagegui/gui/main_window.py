"""The main window: composition and wiring only; the logic lives in the parts it connects.

    chains list | chain graph or Space   details (right dock)
                                         problems / operations / VMs (bottom docks)

One :class:`Selection` is the current image for all of them. ``ready`` is emitted when a scan's
graph is completely drawn (the screenshot mode and the benchmark wait for it).
"""

from __future__ import annotations

import linecache
import os
from collections.abc import Callable

from PySide6.QtCore import QPoint, QPointF, Qt, QThreadPool, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QMainWindow,
    QMenu,
    QMessageBox,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

import imagegui
from imagegui.core.chains.diagnose import FixAction
from imagegui.core.ops.journal import DELETE_OP
from imagegui.core.units import counted, display_path
from imagegui.gui import a11y, dnd, resources
from imagegui.gui.actions import (
    REMOTE_ONLY_SHOWN,
    create_actions,
    disabled_reasons,
    update_enabled,
)
from imagegui.gui.afterpaint import AfterPaint
from imagegui.gui.dialogs.connect_dialog import ConnectDialog
from imagegui.gui.dialogs.messages import info_box
from imagegui.gui.dialogs.preferences_dialog import PreferencesDialog
from imagegui.gui.graph.scene import ChainScene
from imagegui.gui.graph.view import ChainView
from imagegui.gui.menus import build_menus, build_toolbar, fill_image_menu
from imagegui.gui.move_ops import MoveOps
from imagegui.gui.ops import Ops
from imagegui.gui.panels.chains import ChainsPanel
from imagegui.gui.panels.details import DetailsPanel
from imagegui.gui.panels.folders import FoldersPanel
from imagegui.gui.panels.hosts import HostsPanel
from imagegui.gui.panels.jobs import JobsPanel
from imagegui.gui.panels.layerbar import LayerBarPanel
from imagegui.gui.panels.problems import ProblemsPanel
from imagegui.gui.panels.space import SpacePanel
from imagegui.gui.panels.status import StatusBar
from imagegui.gui.panels.vms import VmsPanel, vm_label
from imagegui.gui.panels.welcome import WelcomePage
from imagegui.gui.session import Selection, Session
from imagegui.gui.settings import Settings
from imagegui.gui.snapshot import Snapshot
from imagegui.gui.trash_ops import TrashOps

APP_NAME = "imagegui"


class MainWindow(QMainWindow):
    #: The graph of the latest scan is completely drawn.
    ready = Signal()
    #: The user asked for the demo directory (app.py builds it on the worker).
    demoRequested = Signal()

    def __init__(self, settings: Settings, parent=None):
        super().__init__(parent)
        a11y.install()
        self.settings = settings
        self.setWindowTitle(APP_NAME)
        self.setWindowIcon(resources.app_icon())
        self.setAcceptDrops(True)
        self.session = Session(settings, self)
        self.selection = Selection(self)
        self.scene = ChainScene(self)
        self.view = ChainView(self.scene)
        #: The space report and the Folders listing start once the new graph is painted.
        self.after_paint = AfterPaint(
            lambda: self.scene.building, lambda: self.view.isVisible(), self
        )
        self.welcome = WelcomePage()
        self.space = SpacePanel()
        #: The two pictures of the directory: the chain graph, and where the space goes (View ▸
        #: Graph / Space, and the toolbar's Space button). No tab bar: it would cost the graph
        #: a row of its height.
        self.views = QStackedWidget()
        self.views.setObjectName("views")
        self.views.addWidget(self.view)
        self.views.addWidget(self.space)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.welcome)
        self.stack.addWidget(self.views)
        self.chains = ChainsPanel()
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("mainSplitter")
        self.splitter.addWidget(self.chains)
        self.splitter.addWidget(self.stack)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([470, 640])
        self.setCentralWidget(self.splitter)
        self.details = DetailsPanel()
        #: What each layer of the selected image's chain provides, above its details.
        self.layers = LayerBarPanel()
        details_box = QWidget()
        box = QVBoxLayout(details_box)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(0)
        box.addWidget(self.layers)
        box.addWidget(self.details, 1)
        self.problems = ProblemsPanel()
        self.jobs = JobsPanel()
        self.vms = VmsPanel(self.jobs)
        #: "Power off" was chosen on quit: the window closes once the VMs are off.
        self._close_when_vms_off = False
        self.details_dock = self._dock(
            "Details", "detailsDock", details_box, Qt.DockWidgetArea.RightDockWidgetArea
        )
        self.problems_dock = self._dock(
            "Problems", "problemsDock", self.problems, Qt.DockWidgetArea.BottomDockWidgetArea
        )
        self.jobs_dock = self._dock(
            "Operations", "jobsDock", self.jobs, Qt.DockWidgetArea.BottomDockWidgetArea
        )
        self.vms_dock = self._dock(
            "Virtual Machines", "vmsDock", self.vms, Qt.DockWidgetArea.BottomDockWidgetArea
        )
        self.tabifyDockWidget(self.problems_dock, self.jobs_dock)
        self.tabifyDockWidget(self.jobs_dock, self.vms_dock)
        self.problems_dock.raise_()
        self.actions = create_actions(self)
        self.hosts = HostsPanel(
            self.session.hosts, self.actions.connect_libvirt, self.actions.refresh_vms
        )
        self.hosts_dock = self._dock(
            "libvirt Hosts", "hostsDock", self.hosts, Qt.DockWidgetArea.BottomDockWidgetArea
        )
        self.tabifyDockWidget(self.vms_dock, self.hosts_dock)
        self.problems_dock.raise_()
        #: The scanned folder's tree: where images are dragged to move them. A tab beside
        #: Details (the graph keeps its width), raised while images are dragged.
        self.folders = FoldersPanel()
        self.folders_dock = self._dock(
            "Folders", "foldersDock", self.folders, Qt.DockWidgetArea.RightDockWidgetArea
        )
        self.tabifyDockWidget(self.details_dock, self.folders_dock)
        self.details_dock.raise_()
        #: The dock raised before a drag raised Folders (raised again when the drag ends).
        self._raised_before_drag: QDockWidget | None = None
        docks = [
            self.details_dock, self.problems_dock, self.jobs_dock, self.vms_dock, self.hosts_dock
        ]  # fmt: skip
        self.toolbar = build_toolbar(self, self.actions)
        self.status = StatusBar(self)
        self.setStatusBar(self.status)
        self.ops = Ops(self, self.session, self.selection, self.jobs, self.vms, settings)
        self.trash_ops = TrashOps(self.ops, self.chains.selected_nodes)
        self.move_ops = MoveOps(self.ops, self.chains.selected_nodes)
        self.recent_menu = build_menus(self, self.actions, docks, self.trash_ops.restore_menu)
        self.show_folders = self._folders_action()
        self._first_of_root: str | None = None
        self._fit_on_build = False
        #: The graph point to keep in the middle once the scene of a live update is built.
        self._keep_view: QPointF | None = None
        #: Tests and --screenshot close without questions.
        self.ask_before_closing = True
        #: Directories removed again on exit (the demo): never offered as recent.
        self.transient_dirs: set[str] = set()
        self._connect()
        self.actions.problems_only.setChecked(settings.problems_only())
        self.show_view(self.space if settings.view() == "space" else self.view)
        self._apply_graph_settings()
        self.vms.discover()  # VMs kept running by an earlier session, or left by a crash
        self.session.refresh_hosts()  # libvirt: the remembered connections, or the defaults
        self._restore()
        self._refresh_recent()
        update_enabled(self.actions, None, None)

    def _dock(self, title: str, name: str, widget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        a11y.name_dock_buttons(dock, title)
        return dock

    # -- wiring

    def _connect(self) -> None:
        a = self.actions
        a.open.triggered.connect(self.choose_directory)
        a.open_demo.triggered.connect(self.demoRequested)
        a.rescan.triggered.connect(self.rescan)
        a.stop_scan.setEnabled(False)
        a.stop_scan.triggered.connect(self.session.cancel_scan)
        self.welcome.stopRequested.connect(a.stop_scan.trigger)
        self.status.stop.setDefaultAction(a.stop_scan)
        a.connect_libvirt.triggered.connect(self.show_connect_dialog)
        a.refresh_vms.triggered.connect(self.session.refresh_hosts)
        a.preferences.triggered.connect(self.show_preferences)
        a.quit.triggered.connect(self.close)
        a.copy_path.triggered.connect(self.ops.copy_path)
        a.find.triggered.connect(self.chains.focus_filter)
        a.undo_rebase.triggered.connect(self._on_undo)
        a.zoom_in.triggered.connect(self.view.zoom_in)
        a.zoom_out.triggered.connect(self.view.zoom_out)
        a.zoom_fit.triggered.connect(self.view.fit_all)
        a.zoom_reset.triggered.connect(self.view.zoom_reset)
        a.show_selected.triggered.connect(self._on_show_selected)
        a.problems_only.toggled.connect(self._on_problems_only)
        a.show_graph.triggered.connect(lambda: self.show_view(self.view))
        a.show_space.toggled.connect(lambda on: self.show_view(self.space if on else self.view))
        a.overlay.triggered.connect(self.ops.create_overlay)
        a.clone_vm.triggered.connect(self.ops.clone_vm)
        a.rebase.triggered.connect(lambda: self.ops.rebase())
        a.commit.triggered.connect(self.ops.commit)
        a.flatten.triggered.connect(self.ops.flatten)
        a.convert.triggered.connect(self.ops.convert)
        a.new_image.triggered.connect(self.ops.new_image)
        a.resize.triggered.connect(self.ops.resize)
        a.take_snapshot.triggered.connect(lambda: self.ops.snapshot("create"))
        a.check.triggered.connect(self.ops.check)
        a.launch.triggered.connect(self.ops.launch)
        a.repair.triggered.connect(self.ops.repair)
        a.reveal.triggered.connect(self.ops.reveal)
        a.rename.triggered.connect(self.move_ops.rename)
        a.move_to.triggered.connect(self.move_ops.move_to)
        f = self.folders
        f.moveRequested.connect(self.move_ops.move_into)
        f.moveSelectedRequested.connect(self.move_ops.move_selected_into)
        f.newFolderRequested.connect(self.move_ops.new_folder)
        f.selectRequested.connect(self._on_folder_images)
        f.message.connect(lambda text: self.status.showMessage(text, 8000))
        self.move_ops.folderMade.connect(lambda path: setattr(f, "select_after", path))
        dnd.news().started.connect(self._on_drag_started)
        dnd.news().ended.connect(self._on_drag_ended)
        a.trash.triggered.connect(lambda: self.trash_ops.delete())
        a.trash_with_overlays.triggered.connect(lambda: self.trash_ops.delete(with_overlays=True))
        a.delete_permanently.triggered.connect(lambda: self.trash_ops.delete(permanent=True))
        a.clean_up.triggered.connect(self.trash_ops.clean_up)
        a.about.triggered.connect(self.show_about)
        s = self.session
        s.scanStarted.connect(self._on_scan_started)
        s.scanProgress.connect(self.status.set_files)
        s.scanStage.connect(self.status.set_stage)
        s.snapshotReady.connect(self._on_snapshot_ready)
        s.scanUnchanged.connect(self._on_scan_unchanged)
        s.scanFailed.connect(self._on_scan_failed)
        s.scanCancelled.connect(self._on_scan_cancelled)
        s.spaceReady.connect(self._on_space_ready)
        s.spaceProgress.connect(self.space.set_progress)
        s.watchStatusChanged.connect(self._show_watch)
        self.scene.built.connect(self._on_scene_built)
        self.view.painted.connect(self.after_paint.painted)
        self.selection.changed.connect(self._on_selection_changed)
        self.view.nodeClicked.connect(self.selection.set)
        self.view.nodeToggled.connect(self.chains.toggle)
        self.chains.rowsSelected.connect(self.scene.set_also_selected)
        self.view.nodeActivated.connect(self._on_node_activated)
        self.view.contextMenuRequested.connect(self._on_context_menu_requested)
        self.view.zoomChanged.connect(self.status.set_zoom)
        self.space.nodeClicked.connect(self.selection.set)
        self.space.nodeActivated.connect(self._on_node_activated)
        self.space.contextMenuRequested.connect(self._on_context_menu_requested)
        self.chains.nodeSelected.connect(self._on_list_selected)
        self.chains.nodeActivated.connect(self._on_node_activated)
        self.chains.contextMenuRequested.connect(self._on_context_menu_requested)
        self.chains.filterApplied.connect(self.scene.set_matches)
        self.chains.filterApplied.connect(self.space.map.set_matches)
        self.problems.nodeRequested.connect(self._on_list_selected)
        self.problems.removeLeftoversRequested.connect(self.ops.remove_leftovers)
        self.problems.message.connect(lambda text: self.status.showMessage(text, 8000))
        self.details.nodeRequested.connect(self._on_list_selected)
        self.layers.nodeRequested.connect(self._on_list_selected)
        self.details.actionRequested.connect(self._on_details_action)
        self.welcome.openRequested.connect(self.choose_directory)
        self.welcome.demoRequested.connect(self.demoRequested)
        self.welcome.recentRequested.connect(self.open_directory)
        self.ops.message.connect(lambda text: self.status.showMessage(text, 8000))
        self.ops.undoable.connect(lambda text: self.status.say(text, self.actions.undo_rebase))
        self.trash_ops.message.connect(
            lambda text, undo: self.status.say(text, self.actions.undo_rebase if undo else None)
        )
        self.jobs.activeChanged.connect(self._on_jobs_active_changed)
        self.status.job.watch(self.jobs)
        self.vms.vmsChanged.connect(self._on_vms_changed)
        self.hosts.nodeRequested.connect(self._on_list_selected)
        self.hosts.remoteRequested.connect(self.show_remote)
        self.session.hosts.note.connect(self._on_hosts_note)

    # -- opening

    def choose_directory(self) -> None:
        start = self.session.root or self.settings.last_dir() or os.path.expanduser("~")
        chosen = QFileDialog.getExistingDirectory(self, "Open a directory of disk images", start)
        if chosen:
            self.open_directory(chosen)

    def open_directory(self, path: str) -> None:
        self.session.aspect = self.view.aspect() if self.view.isVisible() else self._aspect_guess()
        self.session.open(path)

    def rescan(self) -> None:
        if self.view.isVisible():
            self.session.aspect = self.view.aspect()
        self.session.rescan()

    def _aspect_guess(self) -> float:
        """The graph area's shape before the view was first shown (the welcome page is)."""
        size = self.stack.size()
        return size.width() / max(1, size.height())

    def _on_scan_started(self, target: str) -> None:
        if not self.session.live_scan:  # a live update leaves what was just said readable
            self.status.clearMessage()
        self.actions.stop_scan.setEnabled(True)
        self.status.scan_started(target)
        name = os.path.basename(os.path.normpath(target)) or target
        if self.session.snapshot is None:
            self.setWindowTitle(f"Scanning {display_path(name)}… — {APP_NAME}")
            self.welcome.show_message(f"Scanning {display_path(target)}…")
            self.welcome.set_scanning(True)

    def _scan_ended(self) -> None:
        self.actions.stop_scan.setEnabled(False)
        self.status.scan_ended()
        self.welcome.set_scanning(False)

    def _on_scan_cancelled(self, target: str) -> None:
        self._scan_ended()
        stopped = f"Stopped scanning {display_path(target)}"
        shown = self.session.snapshot
        if shown is None:
            self.setWindowTitle(APP_NAME)
            self.welcome.show_message(f"{stopped}.")
            self.status.showMessage(f"{stopped}.", 15000)
        elif target in (shown.root, shown.remote_uri):
            # The folder shown: what changed since its last scan is not shown (F5 looks).
            self.status.showMessage(
                f"{stopped}: the graph shows it as it was at the last scan (F5 scans again).",
                30000,
            )
        else:
            where = shown.remote_uri or display_path(shown.root)
            self.status.showMessage(f"{stopped}; showing {where} as before.", 15000)

    def _on_scan_failed(self, target: str, message: str) -> None:
        self._scan_ended()
        self.status.showMessage(message, 15000)
        if self.session.snapshot is None:
            self.setWindowTitle(APP_NAME)
            self.welcome.show_message(message)
        info_box(self, "Cannot open", message, icon=QMessageBox.Icon.Warning)

    def _on_snapshot_ready(self, snapshot: Snapshot) -> None:
        self._scan_ended()
        where = snapshot.remote_uri or snapshot.root
        new_root = where != self._first_of_root
        self._first_of_root = where
        if snapshot.remote_uri is None and snapshot.root not in self.transient_dirs:
            self.settings.add_recent(snapshot.root)
            self._refresh_recent()
        name = snapshot.remote_uri or os.path.basename(snapshot.root) or snapshot.root
        self.setWindowTitle(
            f"{display_path(name)} — {counted(snapshot.image_count, 'image')}, "
            f"{counted(snapshot.problem_count, 'problem')} — {APP_NAME}"
        )
        current = snapshot.select or self.ops.select_after_scan or self.selection.node
        self.ops.select_after_scan = None
        if current not in snapshot.graph.nodes:
            current = None
        self._fit_on_build = new_root
        # A live update (files changed by themselves) keeps the view where the user left it.
        self._keep_view = self._scroll() if self.session.live_update and not new_root else None
        if snapshot.graph.nodes:
            self.stack.setCurrentWidget(self.views)
        else:
            self.stack.setCurrentWidget(self.welcome)
            self.welcome.show_message(
                f"No disk images in {display_path(snapshot.root)} "
                f"({snapshot.graph.scan.files_seen:,} files looked at). Open another directory, "
                "or drop one here."
                if snapshot.remote_uri is None
                else f"No disk images in the storage pools of {snapshot.remote_uri}."
            )
        # A half-built graph is not worth painting (each batch would repaint the view).
        self.view.viewport().setUpdatesEnabled(False)
        self.scene.apply_snapshot(snapshot)  # a rescan keeps the trees that did not change
        self._fit_new_graph()
        self.space.set_snapshot(snapshot)
        self.chains.set_snapshot(snapshot, current)
        self.after_paint.add("folders", lambda: self.folders.set_snapshot(snapshot))
        self.problems.set_snapshot(snapshot)
        self.hosts.set_snapshot(snapshot)
        self.problems_dock.setWindowTitle(f"Problems ({snapshot.problem_count})")
        self.status.set_summary(snapshot)
        if note := snapshot.graph.checks_note:  # kept check results unreadable: say so once
            self.status.showMessage(display_path(note), 15_000)
        self.selection.node = None  # re-announce it: the models are new
        self.selection.set(current)
        if current is None:
            self._on_selection_changed(None)

    def _on_scan_unchanged(self) -> None:
        """A rescan found nothing new: the graph stays as drawn (what an operation asked to
        select is selected all the same)."""
        self._scan_ended()
        snap = self.session.snapshot
        node, self.ops.select_after_scan = self.ops.select_after_scan, None
        if snap is not None and node is not None and node in snap.graph.nodes:
            self.selection.set(node)
        if snap is not None:
            # Folders are not in a scan's result: a new empty one changes nothing else. Listed
            # again on a worker; the tree is redrawn only if it differs.
            self.folders.set_snapshot(snap)
        if not self.scene.building:
            QTimer.singleShot(0, self.ready)

    def _on_space_ready(self, report) -> None:
        """The space report of the current scan (None while it is read, or not available)."""
        self.space.set_report(report, self.session.space_note)
        self.layers.set_report(report)

    def _on_scene_built(self) -> None:
        self.after_paint.add("space", self.session.read_space)
        # PySide6's import hook (``shibokensupport.feature``) reads the whole source of every
        # module imported after PySide6 into linecache, to see whether it uses PySide6: ~12 MB
        # once a scan has imported networkx's 360 modules. A traceback reads its lines again.
        linecache.clearcache()
        self.view.viewport().setUpdatesEnabled(True)
        node = self.selection.node
        self.scene.select(node)
        keep, self._keep_view = self._keep_view, None
        if keep is not None:
            self.view.centerOn(keep)
        elif node is not None:
            self.view.show_node(node)
        QTimer.singleShot(0, self.ready)

    def _scroll(self) -> QPointF:
        """The point of the graph in the middle of the view (kept by a live update: the same
        images stay in sight even when the graph's bounds grow)."""
        return self.view.mapToScene(self.view.viewport().rect().center())

    def _show_watch(self, status=None) -> None:
        """The status bar's word on live updates (also when Preferences turned them on/off)."""
        self.status.set_watch(self.session.live.status, self.settings.auto_rescan())

    def _refresh_recent(self) -> None:
        dirs = self.settings.recent_dirs()
        self.recent_menu.clear()
        for path in dirs:
            action = self.recent_menu.addAction(display_path(path))
            action.setToolTip(path)
            action.triggered.connect(lambda _=False, p=path: self.open_directory(p))
        if dirs:
            self.recent_menu.addSeparator()
            clear = self.recent_menu.addAction("Clear List")
            clear.triggered.connect(self._on_clear_recent)
        self.recent_menu.setEnabled(bool(dirs))
        self.welcome.set_recent(dirs)

    def _on_clear_recent(self) -> None:
        self.settings.clear_recent()
        self._refresh_recent()

    # -- selection

    def _on_list_selected(self, node: str) -> None:
        self.selection.set(node)
        self.view.show_node(node)
        if self.scene.problems_only and not self.scene.building and not self.scene.shown(node):
            self.status.showMessage(
                "Its chain has no problem, so the graph does not show it: turn off "
                "View ▸ Problems Only to see it there.",
                8000,
            )

    def _on_folder_images(self, nodes: list[str]) -> None:
        """A folder's images (Enter on it in the Folders panel): selected in the list and ringed
        in the graph, the first one current."""
        self.chains.select_nodes(nodes)
        if nodes:
            self.view.show_node(nodes[0])

    def _folders_action(self) -> QAction:
        """View ▸ Folders (Ctrl+Shift+E): shows the Folders panel, raised and with the focus
        (the keyboard's way in); again, while it has the focus, hides it."""
        action = QAction("F&olders", self)
        action.setCheckable(True)
        action.setShortcut("Ctrl+Shift+E")
        action.setToolTip(
            "Show the folders of the scanned directory, each with its number of images: drag "
            "images onto one to move them there (Ctrl+Shift+E)"
        )
        action.setChecked(True)
        action.triggered.connect(self._on_folders_action)
        self.folders_dock.visibilityChanged.connect(
            lambda _on: action.setChecked(not self.folders_dock.isHidden())
        )
        view = next(m.menu() for m in self.menuBar().actions() if m.text() == "&View")
        view.addAction(action)
        return action

    def _on_folders_action(self) -> None:
        dock = self.folders_dock
        if dock.isVisible() and not dock.visibleRegion().isEmpty() and self.folders.tree.hasFocus():
            dock.hide()
        else:
            self.show_folders_panel()
            self.folders.focus_tree()
        self.show_folders.setChecked(not dock.isHidden())

    def show_folders_panel(self) -> None:
        self.folders_dock.show()
        self.folders_dock.raise_()

    def _on_drag_started(self, _paths: list) -> None:
        """Images are dragged: the Folders panel comes to the front to drop them on."""
        dock = self.folders_dock
        if dock.isVisible() and not dock.visibleRegion().isEmpty():
            self._raised_before_drag = None
            return
        tabbed = [d for d in self.tabifiedDockWidgets(dock) if not d.visibleRegion().isEmpty()]
        self._raised_before_drag = tabbed[0] if tabbed else None
        self.show_folders_panel()

    def _on_drag_ended(self) -> None:
        before, self._raised_before_drag = self._raised_before_drag, None
        if before is not None:
            before.raise_()

    def _on_selection_changed(self, node: str | None) -> None:
        snap = self.session.snapshot
        self.scene.select(node)
        self.space.select(node)
        self.chains.select(node)
        self.details.show_node(snap, node)
        self.layers.show_node(snap, node)
        described = a11y.selection_description(snap, node)
        a11y.describe(self.view, described)
        a11y.describe(self.space.map, described)
        update_enabled(self.actions, snap, node)
        unavailable = [
            self.actions.label(name)
            for name, why in disabled_reasons(snap, node).items()
            if why is not None and name != "repair"
        ]
        self.status.set_selection(snap, node, unavailable)

    def _apply_graph_settings(self) -> None:
        self.view.wheel_zooms = self.settings.wheel_zooms()

    def _on_problems_only(self, on: bool) -> None:
        """Rebuilds the graph with only the troubled chains (or all again), then fits it."""
        self.settings.set_problems_only(on)
        if self.scene.problems_only == on:
            return
        self._fit_on_build = True
        if self.scene.snapshot is not None:
            self.view.viewport().setUpdatesEnabled(False)  # as for a scan: no half-built paints
        self.scene.set_problems_only(on)
        self._fit_new_graph()

    def _fit_new_graph(self) -> None:
        """Fits a new folder's graph (or the other layout, problems only or not) in the view as
        soon as the scene has its size, before its items are made: a big graph's trees get
        items only where the view then looks."""
        if self._fit_on_build and self.scene.layout is not None:
            self.view.fit_all()
            self._fit_on_build = False

    def show_view(self, widget) -> None:
        """Brings the graph or the Space view to the front (View ▸ Graph / Space); remembered."""
        self.views.setCurrentWidget(widget)
        space = widget is self.space
        self.actions.show_graph.setChecked(not space)
        self.actions.show_space.setChecked(space)
        self.settings.set_view("space" if space else "graph")

    def _on_show_selected(self) -> None:
        if self.selection.node:
            self.view.show_node(self.selection.node)

    def _on_node_activated(self, node: str) -> None:
        self.selection.set(node)
        self.details_dock.show()
        self.details_dock.raise_()

    def _on_context_menu_requested(self, node: str, pos: QPoint) -> None:
        self.selection.set(node)
        menu = QMenu(self)
        menu.setToolTipsVisible(True)
        fill_image_menu(menu, self.actions)
        menu.popup(pos)

    def fix_handlers(self) -> dict[FixAction, Callable[[], object]]:
        """What each fix Details offers (``diagnose.KindInfo.action``) runs."""
        return {
            FixAction.REPAIR: self.ops.repair,
            FixAction.REBASE: self.ops.rebase,
            FixAction.RECORD_FORMAT: self.ops.record_format,
            FixAction.CHECK: self.ops.check,
            FixAction.FLATTEN: self.ops.flatten,
            FixAction.REPAIR_LEAKS: lambda: self.ops.repair_check("leaks"),
            FixAction.REPAIR_ALL: lambda: self.ops.repair_check("all"),
            FixAction.REMOVE_LEFTOVER: lambda: self.ops.remove_leftovers(
                [self.details.node] if self.details.node else []
            ),
        }

    def _on_undo(self) -> None:
        """Undo acts on the journal's last change: a delete is restored, the rest undone."""
        target = self.ops.undo
        if target is not None and target.kind == DELETE_OP:
            self.trash_ops.restore(target)
        else:
            self.ops.undo_rebase()

    def _on_snapshot_link(self, name: str) -> None:
        """``snapshot-create``, or ``snapshot-apply:N`` / ``snapshot-delete:N`` for the N-th
        snapshot Details lists of the selected image."""
        action, _, index = name.removeprefix("snapshot-").partition(":")
        snap, node = self.session.snapshot, self.details.node
        if action == "create":
            self.ops.snapshot("create")
            return
        found = snap.internal.get(node, ()) if snap is not None and node else ()
        if action in ("apply", "delete") and index.isdigit() and int(index) < len(found):
            chosen = found[int(index)]
            # apply matches ids first (unique), delete only names (as qemu-img does)
            self.ops.snapshot(action, chosen.id if action == "apply" else chosen.name)

    def _on_details_action(self, name: str) -> None:
        snap = self.session.snapshot
        if snap is not None and snap.remote_uri is not None:  # the actions say why not
            self.status.showMessage(f"Unavailable: {REMOTE_ONLY_SHOWN.format(uri=snap.remote_uri)}")
            return
        if name in FixAction.__members__.values():
            self.fix_handlers()[FixAction(name)]()
        elif name.startswith("snapshot-"):  # the Details' internal snapshots: take, revert, delete
            self._on_snapshot_link(name)

    def _on_jobs_active_changed(self, count: int) -> None:
        if count:
            self.jobs_dock.show()
            self.jobs_dock.raise_()

    # -- libvirt

    def _on_hosts_note(self, note: str) -> None:
        """A libvirt connection failed: said once in the status bar (its section in the libvirt
        Hosts panel keeps the reason); never a dialog, and the scan goes on without it."""
        self.status.showMessage(display_path(note), 15_000)

    def show_remote(self, uri: str) -> None:
        """Shows the images of the host at ``uri`` in the graph, the list and Details, read
        through libvirt; Open Directory (or a recent one) comes back to this machine's."""
        self.session.aspect = self.view.aspect() if self.view.isVisible() else self._aspect_guess()
        self.session.open_remote(uri)

    def show_connect_dialog(self) -> None:
        dialog = ConnectDialog(self.settings, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.urisChanged.connect(self.session.refresh_hosts)
        self.ops.dialog = dialog
        dialog.open()

    # -- other windows

    def show_preferences(self) -> None:
        dialog = PreferencesDialog(self.settings, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(self._apply_graph_settings)
        dialog.accepted.connect(self._show_watch)
        dialog.accepted.connect(self.session.settings_changed)
        self.ops.dialog = dialog
        dialog.open()

    def show_about(self) -> None:
        QMessageBox.about(
            self,
            "About imagegui",
            f"<h3>imagegui {imagegui.__version__}</h3><p>See QEMU/KVM disk-image backing chains "
            "and work on them safely: clone, rebase, commit, flatten, repair and launch, every "
            "command shown before it runs.</p><p>GPL-2.0-or-later</p>",
        )

    # -- drag and drop

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        for url in event.mimeData().urls():
            if url.isLocalFile():
                event.acceptProposedAction()
                self.open_directory(url.toLocalFile())  # a file: its directory, then selected
                return

    # -- state

    def _restore(self) -> None:
        geometry = self.settings.geometry("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            # Never larger than the screen's free area less a title bar: a 1440x900 window on
            # a 1440x900 screen put the status bar below the edge.
            free = self.screen().availableGeometry()
            self.resize(min(1440, free.width() - 32), min(900, free.height() - 64))
            self.resizeDocks([self.details_dock], [330], Qt.Orientation.Horizontal)
            self.resizeDocks([self.problems_dock], [190], Qt.Orientation.Vertical)
        state = self.settings.geometry("state")
        if state is not None:
            self.restoreState(state)
        splitter = self.settings.geometry("splitter")
        if splitter is not None:
            self.splitter.restoreState(splitter)

    def save_state(self) -> None:
        self.settings.set_geometry("geometry", self.saveGeometry())
        self.settings.set_geometry("state", self.saveState())
        self.settings.set_geometry("splitter", self.splitter.saveState())
        self.settings.sync()

    def vm_quit_box(self, vms: list) -> QMessageBox:
        """ "2 VMs running: Power off / Keep running / Cancel"; Cancel is the default (Enter and
        Esc close nothing and stop nothing)."""
        names = ", ".join(vm_label(r.vm) for r in vms)
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Virtual machines running",
            f"{len(vms)} VM{'s' * (len(vms) != 1)} running: {display_path(names)}",
            parent=self,
        )
        box.setInformativeText(
            "Power off asks each guest to shut down and closes the window once they are off. "
            "VMs kept running are listed here again the next time imagegui starts, with Stop and "
            "Force off."
        )
        box.addButton("Power off", QMessageBox.ButtonRole.AcceptRole).setObjectName("powerOff")
        box.addButton("Keep running", QMessageBox.ButtonRole.DestructiveRole).setObjectName(
            "keepRunning"
        )
        cancel = box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(cancel)
        box.setEscapeButton(cancel)
        return box

    def ask_about_vms(self, vms: list) -> str:
        """``power-off``, ``keep`` or ``cancel``."""
        box = self.vm_quit_box(vms)
        box.exec()
        clicked = box.clickedButton()
        name = clicked.objectName() if clicked is not None else ""
        return {"powerOff": "power-off", "keepRunning": "keep"}.get(name, "cancel")

    def _on_vms_changed(self) -> None:
        self.session.rescan_soon(600)
        if self._close_when_vms_off and not self.vms.running():
            QTimer.singleShot(0, self.close)

    def closeEvent(self, event: QCloseEvent) -> None:
        vms = self.vms.running()
        if vms and self.ask_before_closing and not self._close_when_vms_off:
            choice = self.ask_about_vms(vms)
            if choice == "cancel":
                event.ignore()
                return
            if choice == "power-off":
                event.ignore()
                self._close_when_vms_off = True
                self.vms.power_off_all()
                self.status.showMessage(
                    "Powering the VMs down; the window closes when they are off", 0
                )
                return
        if self._close_when_vms_off and vms:  # closed again while they power down: wait
            event.ignore()
            return
        running = self.jobs.active_count()
        if running and self.ask_before_closing:
            answer = QMessageBox.question(
                self,
                "Operations running",
                f"{running} operation(s) still running. Cancel them and quit? Cancelled "
                "operations leave no half-written files behind.",
                QMessageBox.StandardButton.Cancel | QMessageBox.StandardButton.Yes,
                QMessageBox.StandardButton.Cancel,
            )
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        self.jobs.cancel_all()
        self.save_state()
        self.session.stop()
        # Cancelled jobs stop promptly (qemu-img is signalled); wait for them to clean up.
        QThreadPool.globalInstance().waitForDone(15000)
        super().closeEvent(event)
