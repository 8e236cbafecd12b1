"""Background work held back until the graph is painted (``gui.afterpaint``)."""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication

from imagegui.gui import afterpaint
from imagegui.gui.afterpaint import AfterPaint


def test_waits_for_a_paint_and_runs_the_newest_of_a_name_once(qtbot):
    busy, ran = [False], []
    after = AfterPaint(lambda: busy[0], lambda: True)
    after.add("folders", lambda: ran.append("old folders"))
    after.add("folders", lambda: ran.append("folders"))
    after.add("space", lambda: ran.append("space"))
    busy[0] = True
    after.painted()  # a paint while the scene is still built: nothing yet
    QCoreApplication.processEvents()  # a run queued by the paint would happen here
    assert ran == [] and after.waiting == ("folders", "space")
    busy[0] = False
    after.painted()
    qtbot.waitUntil(lambda: ran == ["folders", "space"])
    after.painted()
    QCoreApplication.processEvents()
    assert ran == ["folders", "space"]  # once


def test_runs_at_once_when_the_view_is_not_shown(qtbot):
    ran = []
    after = AfterPaint(lambda: False, lambda: False)
    after.add("space", lambda: ran.append("space"))
    qtbot.waitUntil(lambda: ran == ["space"], timeout=afterpaint.FALLBACK_MS // 2)


def test_runs_late_when_a_shown_view_never_paints(qtbot, monkeypatch):
    monkeypatch.setattr(afterpaint, "FALLBACK_MS", 50)
    busy, ran = [True], []
    after = AfterPaint(lambda: busy[0], lambda: True)
    after.add("space", lambda: ran.append("space"))
    with qtbot.waitSignal(after._fallback.timeout, timeout=2000):
        pass
    assert ran == []  # still busy: it waits again
    busy[0] = False
    qtbot.waitUntil(lambda: ran == ["space"], timeout=2000)
