"""What the window remembers (QSettings in a scratch directory, never the user's)."""

from __future__ import annotations

from PySide6.QtCore import QSettings

from imagegui.gui.dialogs.preferences_dialog import PreferencesDialog
from imagegui.gui.main_window import MainWindow
from imagegui.gui.settings import MAX_RECENT, OverlayDefaults, Settings


def test_tests_never_touch_the_users_settings(isolated_settings):
    assert QSettings().fileName().startswith(str(isolated_settings))


def test_recent_directories(settings):
    for i in range(MAX_RECENT + 3):
        settings.add_recent(f"/srv/{i}")
    settings.add_recent("/srv/5")
    dirs = settings.recent_dirs()
    assert dirs[0] == "/srv/5" and len(dirs) == MAX_RECENT and dirs.count("/srv/5") == 1
    assert settings.last_dir() == "/srv/5"


def test_geometry_splitter_and_docks_survive_a_restart(qtbot, settings):
    first = MainWindow(settings)
    qtbot.addWidget(first)
    first.resize(760, 560)
    first.show()
    first.splitter.setSizes([200, 400])
    sizes = first.splitter.sizes()
    first.problems_dock.hide()
    first.close()
    second = MainWindow(Settings(QSettings(settings.q.fileName(), QSettings.Format.IniFormat)))
    qtbot.addWidget(second)
    second.show()
    assert second.size().width() == first.size().width() == 760
    assert second.splitter.sizes() == sizes
    assert not second.problems_dock.isVisible()


def test_a_first_start_opens_inside_the_screen(qtbot, settings):
    """With nothing remembered the window opens smaller than the screen's free area, leaving
    room for the window manager's title bar: on a 1440x900 laptop a 1440x900 window put its
    status bar (summary, selection, Cancel of a running job) below the screen's edge."""
    window = MainWindow(settings)
    qtbot.addWidget(window)
    free = window.screen().availableGeometry()
    assert window.width() < free.width() and window.height() < free.height(), (
        window.size(),
        free,
    )
    assert free.height() - window.height() >= 48  # a title bar and a panel still fit


def test_preferences_are_saved(qtbot, settings, monkeypatch):
    monkeypatch.delenv("IMAGEGUI_QEMU_IMG", raising=False)
    dialog = PreferencesDialog(settings)
    qtbot.addWidget(dialog)
    dialog.qemu_img.set_path("/opt/qemu/bin/qemu-img")
    dialog.memory.setValue(2048)
    dialog.backing.set_value("absolute")
    dialog.pattern.setText("{stem}-clone{ext}")
    dialog.auto.setChecked(False)
    dialog.accept()
    assert settings.qemu_img() == "/opt/qemu/bin/qemu-img"
    import os

    # A setting of the window, passed to each plan (the window's operation tests run a fake
    # qemu-img chosen this way), never written into the process's environment.
    assert "IMAGEGUI_QEMU_IMG" not in os.environ
    assert settings.memory_mib() == 2048
    assert settings.overlay_defaults() == OverlayDefaults(True, "{stem}-clone{ext}")
    assert not settings.auto_rescan()


def test_recent_menu_opens(qtbot, window, make, tmp_path):
    make.create("a.qcow2", "qcow2", "1M")
    window.settings.add_recent(str(tmp_path))
    window._refresh_recent()
    action = window.recent_menu.actions()[0]
    assert action.text() == str(tmp_path)
    with qtbot.waitSignal(window.ready, timeout=30_000):
        action.trigger()
    assert window.session.root == str(tmp_path)
