"""The problems panel's model: ``graph.problems`` grouped by kind, wrapped, not copied."""

from __future__ import annotations

from html import escape

from PySide6.QtCore import QAbstractItemModel, QModelIndex, Qt
from PySide6.QtGui import QFont

from imagegui.core.chains.diagnose import KINDS, Kind, Level, Problem
from imagegui.core.chains.nodestate import short_name
from imagegui.core.units import display_path
from imagegui.gui import resources
from imagegui.gui.panels.chains_model import LEVEL_ICON, NO_PARENT, PATH_ROLE
from imagegui.gui.snapshot import Snapshot


class ProblemsModel(QAbstractItemModel):
    """``graph.problems`` grouped by kind (errors first). A group row's internal id is 0; a
    problem row's is its group's index + 1, so ``parent()`` needs no lookup table."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.snapshot: Snapshot | None = None
        self._groups: list[tuple[Kind, list[Problem]]] = []

    def set_snapshot(self, snapshot: Snapshot | None) -> None:
        self.beginResetModel()
        self.snapshot = snapshot
        groups: dict[Kind, list[Problem]] = {}
        for p in snapshot.graph.problems if snapshot else ():
            groups.setdefault(p.kind, []).append(p)
        worst = {k: min(0 if p.level == Level.ERROR else 1 for p in v) for k, v in groups.items()}
        self._groups = sorted(groups.items(), key=lambda kv: (worst[kv[0]], str(kv[0])))
        self.endResetModel()

    def problem_count(self) -> int:
        return sum(len(v) for _, v in self._groups)

    def index(self, row: int, column: int, parent: QModelIndex = NO_PARENT) -> QModelIndex:
        if not 0 <= column < 2:
            return QModelIndex()
        if not parent.isValid():
            return (
                self.createIndex(row, column, 0) if 0 <= row < len(self._groups) else QModelIndex()
            )
        if parent.internalId() != 0:
            return QModelIndex()
        group = parent.row()
        if not 0 <= row < len(self._groups[group][1]):
            return QModelIndex()
        return self.createIndex(row, column, group + 1)

    def parent(self, index: QModelIndex = NO_PARENT) -> QModelIndex:  # type: ignore[override]
        if not index.isValid() or index.internalId() == 0:
            return QModelIndex()
        return self.createIndex(index.internalId() - 1, 0, 0)

    def rowCount(self, parent: QModelIndex = NO_PARENT) -> int:
        if not parent.isValid():
            return len(self._groups)
        if parent.internalId() == 0 and parent.column() == 0:
            return len(self._groups[parent.row()][1])
        return 0

    def columnCount(self, parent: QModelIndex = NO_PARENT) -> int:
        return 2

    def headerData(self, section: int, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return ("Problem", "What it means")[section]
        return None

    def problem_at(self, index: QModelIndex) -> Problem | None:
        if not index.isValid() or index.internalId() == 0:
            return None
        return self._groups[index.internalId() - 1][1][index.row()]

    def group_kind(self, index: QModelIndex) -> Kind | None:
        """The kind of a group row (None for a problem row)."""
        if not index.isValid() or index.internalId() != 0:
            return None
        return self._groups[index.row()][0]

    def group_paths(self, index: QModelIndex) -> list[str]:
        """The paths of a group row's problems."""
        if not index.isValid() or index.internalId() != 0:
            return []
        return [p.path for p in self._groups[index.row()][1]]

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        if index.internalId() == 0:
            kind, problems = self._groups[index.row()]
            if role == Qt.ItemDataRole.DisplayRole:
                if index.column() == 0:
                    return f"{KINDS[kind].title} ({len(problems)})"
                return KINDS[kind].explanation.split(". ")[0] + "."
            if role == Qt.ItemDataRole.DecorationRole and index.column() == 0:
                return resources.icon(LEVEL_ICON[problems[0].level])
            if role == Qt.ItemDataRole.ToolTipRole:
                return KINDS[kind].explanation
            if role == Qt.ItemDataRole.FontRole:
                bold = QFont()
                bold.setBold(True)
                return bold
            return None
        p = self._groups[index.internalId() - 1][1][index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return display_path(short_name(p.path) if index.column() == 0 else p.message)
        if role == PATH_ROLE:
            return p.path
        if role == Qt.ItemDataRole.DecorationRole and index.column() == 0:
            return resources.icon(LEVEL_ICON[p.level])
        if role == Qt.ItemDataRole.ToolTipRole:
            return (
                f"<p><b>{escape(display_path(p.path))}</b></p><p>{escape(p.message)}</p>"
                f"<p><i>{escape(p.explanation)}</i></p>"
            )
        return None
