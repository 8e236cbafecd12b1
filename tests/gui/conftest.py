"""Fixtures for the window tests: settings and journal in a scratch directory, no thread left.

QSettings is pointed at a temporary directory for every GUI test, so no test reads or writes the
user's configuration; the rebase journal and the check results likewise (``IMAGEGUI_JOURNAL``,
``IMAGEGUI_CHECKS``).
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
from PySide6.QtCore import QSettings, QThreadPool  # noqa: E402

from imagegui.gui.settings import Settings  # noqa: E402


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    conf = tmp_path_factory.mktemp("conf")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(conf))
    monkeypatch.setenv("IMAGEGUI_JOURNAL", str(conf / "journal.jsonl"))
    monkeypatch.setenv("IMAGEGUI_CHECKS", str(conf / "checks.json"))
    monkeypatch.delenv("IMAGEGUI_QEMU_IMG", raising=False)
    yield conf
    assert QThreadPool.globalInstance().waitForDone(30_000), "a worker thread is still running"
    assert QThreadPool.globalInstance().activeThreadCount() == 0


@pytest.fixture
def settings(isolated_settings: Path) -> Settings:
    return Settings(QSettings(str(isolated_settings / "imagegui.ini"), QSettings.Format.IniFormat))


@pytest.fixture
def window(qtbot, settings: Settings):
    from imagegui.gui.main_window import MainWindow

    w = MainWindow(settings)
    w.ask_before_closing = False
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    yield w
    w.jobs.cancel_all()
    w.session.stop()


@pytest.fixture
def open_dir(qtbot, window):
    """``open_dir(path)``: opens ``path`` in the window and waits until its graph is drawn."""

    def run(path, timeout: int = 30_000) -> None:
        with qtbot.waitSignal(window.ready, timeout=timeout):
            window.open_directory(str(path))

    return run


@pytest.fixture
def wait_plan(qtbot):
    """``wait_plan(dialog)``: the dialog's plan for its current fields (planned on a worker)."""

    def run(dialog, timeout: int = 30_000):
        if dialog.plan is None or dialog.planning or dialog._debounce.isActive():
            with qtbot.waitSignal(dialog.planReady, timeout=timeout):
                pass
        return dialog.plan

    return run
