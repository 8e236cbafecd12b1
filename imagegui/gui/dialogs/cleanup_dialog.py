"""File ▸ Clean Up…: what can go, by kind, each with its size; tick what to move to the Trash.

The list (leftover files of interrupted operations, empty overlays, images nothing uses that are
older than N days, cache bases Nova no longer uses) is found on a worker when the dialog opens and
again when the age changes; every tick plans again (debounced, on the worker as every plan), so
the preview below always shows what the run button will do, with the same guards as Move to
Trash. Cancel is the default button. The kinds ticked and the age are remembered.

Nova's cache bases are shared by every compute host that mounts the same ``_base`` folder; this
machine sees only its own instances, which the group's note says.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSpinBox,
    QStyle,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from imagegui.core.jobs import CancelToken, Job, ProgressFn
from imagegui.core.ops.plan import Plan
from imagegui.core.units import counted, display_path, human_size
from imagegui.core.virt.inventory import DomainSource
from imagegui.gui.dialogs.delete_dialog import plan_bytes, plan_paths
from imagegui.gui.dialogs.plan_dialog import PlanDialog
from imagegui.gui.workers import TaskSlot

NAME, SIZE, REASON = range(3)
PATH_ROLE = Qt.ItemDataRole.UserRole
CATEGORY_ROLE = Qt.ItemDataRole.UserRole + 1
AGE_DEBOUNCE_MS = 300


@dataclass(frozen=True)
class CleanItem:
    """One file that can go: its kind (``CATEGORIES``), its bytes on disk, and why, in words
    (the fields of ``core.chains.space.Reclaimable``, which the window passes as they are)."""

    category: str
    path: str
    bytes: int
    reason: str = ""


@dataclass(frozen=True)
class Category:
    key: str
    #: Short, for the group's row; ``{days}`` is the age chosen.
    title: str
    #: What makes a file one of these, beside the title.
    detail: str


NOVA_NOTE = (
    "Other compute hosts that share this _base folder (over NFS, say) are not visible here: "
    "make sure none of their instances uses these bases before removing them."
)

#: The kinds in the order they are shown (``space.Category``).
CATEGORIES: tuple[Category, ...] = (
    Category("leftover", "Leftover files", "temporary files of interrupted operations"),
    Category(
        "nova-unused-base",
        "Unused Nova cache bases",
        "no instance on this host uses them and they are past Nova's age limit",
    ),
    Category(
        "empty-overlay",
        "Empty overlays older than {days}",
        "overlays with no data of their own that nothing backs onto",
    ),
    Category(
        "orphan",
        "Unused images older than {days}",
        "nothing backs onto them, no program has them open and no VM uses them",
    ),
)


def category_title(category: Category, days: int) -> str:
    return category.title.format(days=counted(days, "day"))


@dataclass(frozen=True)
class Found:
    """What a search found: the files, and sentences about what it could not tell (libvirt was
    not reachable: a shut-off VM's disk looks unused), which the plan carries as warnings."""

    items: Sequence[CleanItem]
    notes: Sequence[str] = ()


#: Finds what can go, given the age in days (runs on a worker, with progress and cancel).
Finder = Callable[[int, ProgressFn, CancelToken], Found]
#: Makes the plan for the items ticked (runs on a worker).
Planner = Callable[[Sequence[CleanItem], Sequence[str]], Plan]


class CleanUpDialog(PlanDialog):
    MIN_WIDTH = 720

    def __init__(
        self,
        find: Finder,
        make_plan: Planner,
        parent: QWidget | None = None,
        *,
        root: str = "",
        days: int = 30,
        unticked: Sequence[str] = (),
        domains: DomainSource | None = None,
    ):
        super().__init__("Clean Up", "Move to Trash", parent, domains=domains)
        self.copy_button.hide()  # no program runs: there is no command to copy
        self.root = root
        self._find = find
        self._make_plan = make_plan
        #: The kinds the user left unticked (remembered between runs), and the files (kept
        #: unticked while the dialog is open, when a new age lists them again).
        self.unticked: set[str] = set(unticked)
        self.unticked_paths: set[str] = set()
        #: What the last search found (None while it runs), and what it could not tell.
        self.items: list[CleanItem] | None = None
        self.notes: list[str] = []
        self._finding = TaskSlot(
            self,
            on_done=self._on_found,
            on_failed=self._on_find_failed,
            on_progress=self._on_find_progress,
        )
        self.intro.setText(
            "What can go from <b>" + escape(display_path(root or "this folder")) + "</b>, by kind. "
            "Tick what to move to the Trash; the plan below lists it with the same checks as "
            "Move to Trash, and Edit ▸ Restore puts it back while it is in the Trash."
        )
        self.days = QSpinBox()
        self.days.setRange(0, 3650)
        self.days.setValue(max(0, min(3650, days)))
        self.days.setSuffix(" days")
        self.days.setAccessibleName("Unused images and empty overlays: older than, in days")
        self.days.setToolTip(
            "An image nothing uses, or an overlay with no data of its own, is listed only once "
            "it has not been written for this long (an overlay made a minute ago is empty "
            "because its VM has not started yet)"
        )
        days_label = QLabel("Unused images and empty overlays, older than:")
        days_label.setBuddy(self.days)
        row = QHBoxLayout()
        row.addWidget(days_label)
        row.addWidget(self.days)
        row.addStretch(1)
        self.form.addRow(row)
        self.tree = QTreeWidget()
        self.tree.setObjectName("cleanUpItems")
        self.tree.setColumnCount(3)
        self.tree.setHeaderLabels(["What", "Size", "Why"])
        self.tree.setAccessibleName("What can go")
        self.tree.setAccessibleDescription(
            "Each kind of file that can go, and the files of that kind: tick what to move to "
            "the Trash (Space ticks the current row)"
        )
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setUniformRowHeights(False)
        self.tree.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        header = self.tree.header()
        header.setStretchLastSection(True)
        header.setSectionResizeMode(NAME, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(SIZE, QHeaderView.ResizeMode.ResizeToContents)
        header.resizeSection(NAME, 300)
        self.nova_note = QLabel(NOVA_NOTE)
        self.nova_note.setObjectName("novaNote")
        self.nova_note.setWordWrap(True)
        self.nova_note.hide()
        self.total = QLabel("Looking for what can go…")
        self.total.setObjectName("cleanUpTotal")
        self.total.setWordWrap(True)
        # The list above, the plan below; both shrink in a small window (each scrolls), the
        # wrapped texts between them never do (a splitter would let them overlap the list).
        layout = self.layout()
        assert isinstance(layout, QVBoxLayout)
        index = layout.indexOf(self.preview)
        layout.setStretchFactor(self.preview, 2)
        layout.insertWidget(index, self.tree, 3)
        layout.insertWidget(index + 1, self.nova_note)
        layout.insertWidget(index + 2, self.total)
        self.tree.setMinimumHeight(110)
        self.preview.setMinimumHeight(110)
        self._age_debounce = QTimer(self)
        self._age_debounce.setSingleShot(True)
        self._age_debounce.setInterval(AGE_DEBOUNCE_MS)
        self._age_debounce.timeout.connect(self.find)
        self.days.valueChanged.connect(lambda _v: self._on_days_changed())
        self.tree.itemChanged.connect(self._on_item_changed)
        self._filling = False
        self.find()

    # -- finding what can go

    def find(self) -> None:
        """Looks again (on a worker) for what can go, for the age chosen."""
        self._age_debounce.stop()
        self.items = None
        self.tree.setEnabled(False)
        self.total.setText("Looking for what can go…")
        self.fields_changed()
        self._debounce.stop()  # the plan waits for the list
        find, days = self._find, self.days.value()
        self._finding.start(Job("find what can go", lambda p, c: find(days, p, c)))

    def _on_find_progress(self, fraction: float) -> None:
        if self.items is None:
            self.total.setText(f"Reading what each image holds… {fraction * 100:.0f} %")

    def _on_days_changed(self) -> None:
        self.items = None
        self.fields_changed()
        self._debounce.stop()
        self._age_debounce.start()

    def _on_found(self, found: Found) -> None:
        items = list(found.items)
        self.items = items
        self.notes = list(found.notes)
        self._fill(items)
        self.tree.setEnabled(True)
        self._update_total()
        self.replan()

    def _on_find_failed(self, exc: object) -> None:
        self.items = []
        self.tree.clear()
        self.total.setText(f"Could not look for what can go: {exc}")
        self._set_verdict("refused", f"Could not look for what can go: {exc}")
        self.planReady.emit(None)

    def _fill(self, items: Sequence[CleanItem]) -> None:
        self._filling = True
        try:
            self.tree.clear()
            days = self.days.value()
            for category in CATEGORIES:
                mine = [i for i in items if i.category == category.key]
                self._add_group(category, days, mine)
            self.tree.expandAll()
            nova = any(i.category == "nova-unused-base" for i in items)
            self.nova_note.setText(f"<b>Nova cache bases:</b> {escape(NOVA_NOTE)}")
            self.nova_note.setVisible(nova)
        finally:
            self._filling = False

    def _add_group(self, category: Category, days: int, items: list[CleanItem]) -> None:
        title = category_title(category, days)
        group = QTreeWidgetItem(self.tree)
        group.setData(NAME, CATEGORY_ROLE, category.key)
        group.setText(NAME, f"{title} ({len(items)})" if items else title)
        group.setText(SIZE, human_size(sum(i.bytes for i in items)) if items else "")
        group.setText(REASON, category.detail if items else f"none found: {category.detail}")
        group.setToolTip(NAME, f"{title}: {category.detail}")
        group.setToolTip(REASON, category.detail)
        font = group.font(NAME)
        font.setBold(True)
        group.setFont(NAME, font)
        if not items:
            group.setFlags(Qt.ItemFlag.ItemIsEnabled)
            group.setDisabled(True)
            # As tall as a row with a tick box (a row without one is shorter, and looks cut).
            style = self.tree.style()
            box = style.pixelMetric(QStyle.PixelMetric.PM_IndicatorHeight)
            height = max(box, self.tree.fontMetrics().height()) + 4
            group.setSizeHint(NAME, QSize(0, height))
            return
        group.setFlags(
            Qt.ItemFlag.ItemIsEnabled
            | Qt.ItemFlag.ItemIsSelectable
            | Qt.ItemFlag.ItemIsUserCheckable
            | Qt.ItemFlag.ItemIsAutoTristate
        )
        ticked = category.key not in self.unticked
        for item in sorted(items, key=lambda i: (-i.bytes, i.path)):
            row = QTreeWidgetItem(group)
            row.setFlags(
                Qt.ItemFlag.ItemIsEnabled
                | Qt.ItemFlag.ItemIsSelectable
                | Qt.ItemFlag.ItemIsUserCheckable
            )
            row.setData(NAME, PATH_ROLE, item.path)
            row.setText(NAME, self._shown_path(item.path))
            row.setToolTip(NAME, display_path(item.path))
            row.setText(SIZE, human_size(item.bytes))
            row.setTextAlignment(SIZE, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            row.setText(REASON, display_path(item.reason))
            row.setToolTip(REASON, display_path(item.reason))
            on = ticked and item.path not in self.unticked_paths
            row.setCheckState(NAME, Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)

    def _shown_path(self, path: str) -> str:
        """Relative to the folder scanned when it is inside it (the list is narrow)."""
        if self.root and path.startswith(self.root.rstrip("/") + "/"):
            return display_path(os.path.relpath(path, self.root))
        return display_path(path)

    # -- what is ticked

    def chosen(self) -> list[CleanItem]:
        """The items ticked, in the list's order."""
        if self.items is None:
            return []
        by_path = {i.path: i for i in self.items}
        out = []
        for g in range(self.tree.topLevelItemCount()):
            group = self.tree.topLevelItem(g)
            for r in range(group.childCount()):
                row = group.child(r)
                if row.checkState(NAME) == Qt.CheckState.Checked:
                    path = row.data(NAME, PATH_ROLE)
                    if path in by_path:
                        out.append(by_path[path])
        return out

    def group_item(self, key: str) -> QTreeWidgetItem | None:
        for g in range(self.tree.topLevelItemCount()):
            group = self.tree.topLevelItem(g)
            if group.data(NAME, CATEGORY_ROLE) == key:
                return group
        return None

    def _on_item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if self._filling or column != NAME:
            return
        if item.parent() is None:  # a group: remember whether the kind is wanted at all
            key = item.data(NAME, CATEGORY_ROLE)
            if item.checkState(NAME) == Qt.CheckState.Unchecked:
                self.unticked.add(key)
            elif item.checkState(NAME) == Qt.CheckState.Checked:
                self.unticked.discard(key)
            return
        path = item.data(NAME, PATH_ROLE)
        if item.checkState(NAME) == Qt.CheckState.Unchecked:
            self.unticked_paths.add(path)
        else:
            self.unticked_paths.discard(path)
        self._update_total()
        self.fields_changed()

    def _update_total(self) -> None:
        if self.items is None:
            return
        chosen = self.chosen()
        everything = sum(i.bytes for i in self.items)
        if not self.items:
            self.total.setText("Nothing to clean up: nothing of these kinds was found.")
        else:
            self.total.setText(
                f"Selected: {counted(len(chosen), 'file')}, "
                f"{human_size(sum(i.bytes for i in chosen))} "
                f"(of {human_size(everything)} that could go)"
            )

    # -- the plan

    def replan(self) -> None:
        if self.items is None:  # the list is still being found: no plan yet
            self._no_plan("Looking for what can go…", emit=False)
        elif not self.chosen():  # not a refusal: a question
            self._no_plan(
                "Nothing to clean up." if not self.items else "Tick what to move to the Trash."
            )
        else:
            super().replan()

    def _no_plan(self, text: str, emit: bool = True) -> None:
        self._debounce.stop()
        self._planning.discard()
        self.planning = False
        self.plan = None
        self.preview.clear()
        self._set_verdict("pending", text)
        self._update_run_button()
        if emit:
            self.planReady.emit(None)

    def planner(self) -> Callable[[], Plan] | str:
        chosen, notes = self.chosen(), list(self.notes)
        make = self._make_plan
        return lambda: make(chosen, notes)

    def destructive_fields(self) -> bool:
        return True  # it removes files: Enter must not

    def run_text(self, plan: Plan | None) -> str:
        count = len(plan_paths(plan, [i.path for i in self.chosen()]))
        return "Move to Trash" if count == 1 else f"Move {count} Files to Trash"

    def ready_text(self, plan: Plan) -> str:
        count = len(plan_paths(plan, [i.path for i in self.chosen()]))
        freed = plan_bytes(plan)
        size = f" ({human_size(freed)})" if freed is not None else ""
        text = f"Ready: {counted(count, 'file')}{size} will be moved to the Trash."
        if plan.warnings:
            text += f" Read the {counted(len(plan.warnings), 'warning')} below."
        return text

    def done(self, result: int) -> None:
        if result == QDialog.DialogCode.Accepted and not self.runnable():
            return
        self._finding.discard()  # a search still on its way is for nothing now
        self._age_debounce.stop()
        super().done(result)
