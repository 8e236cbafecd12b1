"""A failure in the window offers the log: the box's Show Log button opens the end of it."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QMessageBox, QPlainTextEdit

from imagegui import logsetup
from imagegui.gui.dialogs import messages


def test_a_failed_operation_box_has_show_log_with_the_command_in_it(
    qtbot, window, open_dir, wait_plan, make, tmp_path, tmp_path_factory, monkeypatch, log_file
):
    from opshelpers import fake_qemu_img

    assert logsetup.setup(0) == log_file
    try:
        base = str(make.create("base.qcow2", "qcow2", "1G"))
        open_dir(tmp_path)
        fake = fake_qemu_img(
            tmp_path_factory.mktemp("bin"),
            'echo "qemu-img: Could not create: I/O error" >&2; exit 1',
        )
        window.settings.set_qemu_img(str(fake))  # Preferences ▸ qemu-img
        window.selection.set(base)
        window.actions.overlay.trigger()
        dialog = window.ops.dialog
        wait_plan(dialog)
        with qtbot.waitSignal(window.jobs.jobFailed, timeout=30_000):
            dialog.accept()
        box = window.ops.last_box
        assert isinstance(box, QMessageBox) and box.isVisible()
        [show] = [b for b in box.buttons() if b.text() == messages.SHOW_LOG]
        assert box.buttonRole(show) == QMessageBox.ButtonRole.ActionRole
        before = set(window.findChildren(QDialog))
        show.click()
        [log_view] = [d for d in window.findChildren(QDialog) if d not in before and d.isVisible()]
        text = log_view.findChild(QPlainTextEdit, "logText").toPlainText()
        from gui.test_a11y import unnamed_controls

        assert unnamed_controls(box) == [] and unnamed_controls(log_view) == []
        assert "create -f qcow2 -b base.qcow2 -F qcow2" in text
        assert "exit status 1" in text and "I/O error" in text
        assert "failed" in text  # the job's failure, with its traceback
        assert "Traceback" in text
        log_view.close()
    finally:
        logsetup.close()


def test_the_log_view_says_when_nothing_was_logged(qtbot, log_file):
    dialog = messages.log_dialog(None)
    qtbot.addWidget(dialog)
    assert "Nothing has been logged yet" in dialog.findChild(QPlainTextEdit).toPlainText()
    dialog.close()
