"""The window as a native tool: shortcuts, drag and drop, context menu, Check, empty dirs."""

from __future__ import annotations

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QKeySequence
from PySide6.QtWidgets import QMenu, QMessageBox


def keys(action) -> str:
    return action.shortcut().toString(QKeySequence.SequenceFormat.PortableText)


def test_shortcuts_and_tooltips(window):
    a = window.actions
    assert keys(a.open) == "Ctrl+O"
    assert "F5" in [s.toString() for s in a.rescan.shortcuts()]
    assert keys(a.zoom_fit) == "Ctrl+0"
    assert keys(a.zoom_in) == "Ctrl++"
    assert keys(a.find) == "Ctrl+F"
    for action in a.all():
        assert action.toolTip(), action.text()
    assert "(Ctrl+N)" in a.overlay.toolTip()
    # Nothing is selected yet: no image action can run.
    assert not any(x.isEnabled() for x in (a.overlay, a.commit, a.flatten, a.launch, a.repair))


def test_dropping_a_folder_opens_it(qtbot, window, make, tmp_path):
    make.create("base.qcow2", "qcow2", "1G")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path))])
    event = QDropEvent(
        QPointF(100, 100), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )  # fmt: skip
    with qtbot.waitSignal(window.ready, timeout=30_000):
        window.dropEvent(event)
    assert window.session.root == str(tmp_path)


def test_context_menu_offers_the_image_actions(
    qtbot, window, open_dir, make, tmp_path, monkeypatch
):
    make.create("base.qcow2", "qcow2", "1G")
    top = str(make.overlay("top.qcow2", "base.qcow2"))
    open_dir(tmp_path)
    shown: list[QMenu] = []
    monkeypatch.setattr(QMenu, "popup", lambda menu, pos: shown.append(menu))
    window.chains.contextMenuRequested.emit(top, QPoint(10, 10))
    (menu,) = shown
    texts = [a.text() for a in menu.actions() if not a.isSeparator()]
    assert texts[:5] == [
        "Create &Overlay…",
        "&New Linked-Clone VM…",
        "Re&base…",
        "Co&mmit…",
        "&Flatten…",
    ]
    assert window.selection.node == top
    assert window.actions.commit.isEnabled()


def test_check_shows_its_result(qtbot, window, open_dir, make, tmp_path):
    base = str(make.create("base.qcow2", "qcow2", "1G"))
    open_dir(tmp_path)
    window.selection.set(base)
    with qtbot.waitSignal(window.jobs.jobFinished, timeout=30_000):
        window.actions.check.trigger()  # read-only: runs at once, no dialog
    box = window.ops.last_box
    assert isinstance(box, QMessageBox) and box.isVisible()
    assert "no problems" in box.text()
    box.close()


def test_an_empty_directory_says_so(qtbot, window, open_dir, tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    open_dir(tmp_path)
    assert window.stack.currentWidget() is window.welcome
    assert "No disk images" in window.welcome.status.text()
    assert window.windowTitle() == f"{tmp_path.name} — 0 images, 0 problems — imagegui"


def test_copy_path(qtbot, window, open_dir, make, tmp_path):
    from PySide6.QtGui import QGuiApplication

    base = str(make.create("base.qcow2", "qcow2", "1G"))
    open_dir(tmp_path)
    window.selection.set(base)
    window.actions.copy_path.trigger()
    assert QGuiApplication.clipboard().text() == base


def test_a_failed_operation_shows_qemus_message(
    qtbot, window, open_dir, wait_plan, make, tmp_path, tmp_path_factory, monkeypatch
):
    from opshelpers import fake_qemu_img

    base = str(make.create("base.qcow2", "qcow2", "1G"))
    open_dir(tmp_path)
    fake = fake_qemu_img(
        tmp_path_factory.mktemp("bin"), 'echo "qemu-img: Could not create: I/O error" >&2; exit 1'
    )
    window.settings.set_qemu_img(str(fake))  # Preferences ▸ qemu-img
    window.selection.set(base)
    window.actions.overlay.trigger()
    dialog = window.ops.dialog
    wait_plan(dialog)
    with qtbot.waitSignal(window.jobs.jobFailed, timeout=30_000):
        dialog.accept()
    box = window.ops.last_box
    assert box.isVisible() and "failed" in box.text()
    assert "I/O error" in box.informativeText()
    assert "qemu-img create -f qcow2 -b base.qcow2 -F qcow2" in box.detailedText()
    assert window.jobs.records[-1].state == "failed"
    assert not (tmp_path / "base-overlay.qcow2").exists()  # the half-made file is removed
    box.close()


def test_last_directory_reopens_or_the_demo_opens(qtbot, window, make, tmp_path, monkeypatch):
    import argparse

    from imagegui.gui import app as app_module

    built: list[bool] = []
    make.create("base.qcow2", "qcow2", "1G")
    window.settings.add_recent(str(tmp_path))
    args = argparse.Namespace(directory=None, demo=False, screenshot=None)
    launcher = app_module.Launcher(qtbot_app(), window, args)
    monkeypatch.setattr(launcher, "open_demo", lambda: built.append(True))
    with qtbot.waitSignal(window.ready, timeout=30_000):
        launcher.start()
    assert window.session.root == str(tmp_path) and not built

    window.settings.add_recent(str(tmp_path / "gone"))
    with qtbot.waitSignal(window.session.scanFailed, timeout=30_000):
        launcher.start()
    assert built == [True]
    window.ops.last_box = None


def qtbot_app():
    from PySide6.QtWidgets import QApplication

    return QApplication.instance()
