"""The window shows every kind of problem ``core/chains/diagnose`` knows, in diagnose's words:
Problems groups each under its title with its explanation, Details explains it and offers its fix
(an action the window runs). The rest of the one-place rule: tests/core/chains/test_one_place.py.
"""

from __future__ import annotations

from html import escape
from types import SimpleNamespace

from PySide6.QtCore import Qt

from imagegui.core.chains.diagnose import KINDS, FixAction, Kind, Problem, fix_cli, problem
from imagegui.gui.panels.problems_model import ProblemsModel


def one_of_each() -> list[Problem]:
    path = "/srv/vms/web 1.qcow2"
    return [
        problem(kind, path, f"Something about {kind}.", fix_cli(kind, path, "/srv/vms/base.qcow2"))
        for kind in Kind
    ]


def test_problems_panel_groups_each_kind_under_its_title(qtbot):
    model = ProblemsModel()
    # Only ``graph.problems`` is read: a stand-in snapshot holding one problem of each kind.
    model.set_snapshot(SimpleNamespace(graph=SimpleNamespace(problems=one_of_each())))
    shown = {}
    for row in range(model.rowCount()):
        index = model.index(row, 0)
        kind = model.group_kind(index)
        shown[kind] = (
            model.data(index, Qt.ItemDataRole.DisplayRole),
            model.data(index, Qt.ItemDataRole.ToolTipRole),
        )
    assert set(shown) == set(Kind)
    for kind, (title, tooltip) in shown.items():
        assert title == f"{KINDS[kind].title} (1)"
        assert tooltip == KINDS[kind].explanation


def test_details_explains_each_kind_and_offers_its_fix(window):
    handlers = window.fix_handlers()
    assert set(handlers) == set(FixAction), "a fix action the window does not run"
    for p in one_of_each():
        html = window.details._problem(p)
        info = KINDS[p.kind]
        assert escape(info.explanation) in html and escape(info.fix) in html, p.kind
        # named by its title, in bold; its code (as the command line writes it) in the tooltip
        assert f"<b title='{p.kind}'>{escape(info.title)}</b>" in html, p.kind
        if info.action is not None:
            assert f"href='action:{info.action}'" in html
        else:
            assert "action:" not in html
