"""Commit…: the overlays that share the base are listed and the commit is refused."""

from __future__ import annotations

from conftest import qemu_info
from PySide6.QtCore import QCoreApplication, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QAbstractButton, QLabel, QListWidget, QTextBrowser


def shared_base(make, tmp_path):
    """base.qcow2 with top.qcow2 (to commit) and three other users: two overlays and one built
    on one of them."""
    base = make.create("base.qcow2", "qcow2", "1G")
    top = str(make.overlay("top.qcow2", "base.qcow2"))
    make.overlay("web01.qcow2", "base.qcow2")
    make.overlay("web02.qcow2", "base.qcow2")
    make.overlay("web01-snap.qcow2", "web01.qcow2")
    return base, top


def open_commit(window, open_dir, tmp_path, top):
    open_dir(tmp_path)
    window.selection.set(top)
    window.actions.commit.trigger()
    return window.ops.dialog


def visible_texts(dialog) -> list[str]:
    """Every text a user can read in the dialog: labels, buttons, list rows, the preview."""
    texts = []
    for w in dialog.findChildren(QLabel) + dialog.findChildren(QAbstractButton):
        if w.isVisible():
            texts.append(w.text())
    for lst in dialog.findChildren(QListWidget):
        if lst.isVisible():
            texts += [lst.item(i).text() for i in range(lst.count())]
    for browser in dialog.findChildren(QTextBrowser):
        if browser.isVisible():
            texts.append(browser.toPlainText())
    return texts


def test_commit_dialog_lists_the_siblings_and_refuses(
    qtbot, window, open_dir, wait_plan, make, tmp_path
):
    base = make.create("base.qcow2", "qcow2", "1G")
    top = str(make.overlay("top.qcow2", "base.qcow2"))
    make.overlay("sibling.qcow2", "base.qcow2")
    make.overlay("nested.qcow2", "sibling.qcow2")
    before = base.read_bytes()[:4096]
    open_dir(tmp_path)
    window.selection.set(top)
    window.actions.commit.trigger()
    dialog = window.ops.dialog

    listed = [dialog.others.item(i).text() for i in range(dialog.others.count())]
    assert listed == ["nested.qcow2", "sibling.qcow2"]  # the sibling and what is built on it
    plan = wait_plan(dialog)
    assert plan.refused
    assert any(f.code == "shared-base" for f in plan.blocking())
    assert not dialog.ok_button.isEnabled()
    assert "Refused" in dialog.verdict.text()
    dialog.accept()  # refused: nothing runs
    assert window.jobs.records == []
    assert base.read_bytes()[:4096] == before

    dialog.force.setChecked(True)  # the explicit override lifts the refusal ...
    plan = wait_plan(dialog)
    assert not plan.refused
    assert not dialog.ok_button.isEnabled()  # ... but only the typed base name enables the run
    dialog.confirm.setText("base.qcow2")
    assert dialog.ok_button.isEnabled()
    assert dialog.ok_button.text() == "Commit into base.qcow2 and corrupt 2 images"
    dialog.reject()


def test_commit_into_an_unshared_base_runs(qtbot, window, open_dir, wait_plan, make, tmp_path):
    make.create("base.qcow2", "qcow2", "1G")
    top = str(make.overlay("top.qcow2", "base.qcow2"))
    open_dir(tmp_path)
    window.selection.set(top)
    window.actions.commit.trigger()
    dialog = window.ops.dialog
    assert dialog.others.count() == 0
    assert not wait_plan(dialog).refused
    assert "qemu-img commit -p -f qcow2" in dialog.preview.toPlainText()
    with qtbot.waitSignal(window.ready, timeout=30_000):
        dialog.accept()
    assert window.jobs.records[-1].state == "done"
    assert qemu_info(top)["backing-filename"] == "base.qcow2"


def test_enter_never_runs_a_forced_commit(qtbot, window, open_dir, wait_plan, make, tmp_path):
    base, top = shared_base(make, tmp_path)
    before = base.read_bytes()
    dialog = open_commit(window, open_dir, tmp_path, top)
    qtbot.waitExposed(dialog)
    wait_plan(dialog)
    assert dialog.cancel_button.isDefault()  # from the start: a commit rewrites its base
    assert not dialog.ok_button.isDefault() and not dialog.ok_button.autoDefault()
    dialog.force.setChecked(True)
    plan = wait_plan(dialog)
    assert not plan.refused
    # Forced: red, never "ok"/green, and counting the victims.
    assert dialog.verdict.property("verdict") == "forced"
    assert dialog.verdict.text() == "Forced: 3 images will be corrupted (listed above)."
    assert "Ready" not in dialog.verdict.text()
    # The run button stays disabled until the base's name is typed, and says what it does.
    assert not dialog.ok_button.isEnabled()
    dialog.accept()  # as a test (or a stray signal) would: nothing without the typed name
    assert dialog.isVisible()
    dialog.done(dialog.DialogCode.Accepted)  # nor by going round accept()
    assert dialog.isVisible()
    dialog.confirm.setText("base")
    assert not dialog.ok_button.isEnabled()
    QTest.keyClick(dialog.confirm, Qt.Key.Key_Return)  # Enter in the name field: nothing
    assert dialog.isVisible()
    dialog.confirm.setText("base.qcow2")
    assert dialog.ok_button.isEnabled()
    assert dialog.ok_button.text() == "Commit into base.qcow2 and corrupt 3 images"
    assert dialog.cancel_button.isDefault() and not dialog.ok_button.isDefault()
    # A hurried Enter on the dialog presses Cancel: nothing runs, the base is untouched.
    dialog.force.setFocus()
    QTest.keyClick(dialog, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not dialog.isVisible())
    assert dialog.result() == dialog.DialogCode.Rejected
    assert window.jobs.records == []
    assert base.read_bytes() == before


def test_a_commit_refusal_names_each_victim_once(
    qtbot, window, open_dir, wait_plan, make, tmp_path
):
    base, top = shared_base(make, tmp_path)
    dialog = open_commit(window, open_dir, tmp_path, top)
    qtbot.waitExposed(dialog)
    plan = wait_plan(dialog)
    assert plan.refused
    assert dialog.verdict.property("verdict") == "refused"
    assert dialog.verdict.text() == "Refused: committing would corrupt the 3 images listed above."
    QCoreApplication.sendPostedEvents()
    assert dialog.others.verticalScrollBar().maximum() == 0  # every victim in view, no scrolling
    for forced in (False, True):
        dialog.force.setChecked(forced)
        wait_plan(dialog)
        texts = visible_texts(dialog)
        for victim in ("web01.qcow2", "web02.qcow2", "web01-snap.qcow2"):
            count = sum(t.count(victim) for t in texts)
            assert count == 1, (victim, forced, [t for t in texts if victim in t])
        assert "3 images listed above" in dialog.preview.toPlainText()
    dialog.reject()


def test_enter_commits_nothing_even_into_an_unshared_base(
    qtbot, window, open_dir, wait_plan, make, tmp_path
):
    base = make.create("base.qcow2", "qcow2", "1G")
    top = str(make.overlay("top.qcow2", "base.qcow2"))
    before = base.read_bytes()
    dialog = open_commit(window, open_dir, tmp_path, top)
    qtbot.waitExposed(dialog)
    assert not wait_plan(dialog).refused
    assert dialog.ok_button.isEnabled()
    assert dialog.ok_button.text() == "Commit into base.qcow2"
    assert dialog.verdict.property("verdict") == "ok"
    assert dialog.cancel_button.isDefault()
    QTest.keyClick(dialog, Qt.Key.Key_Enter)
    qtbot.waitUntil(lambda: not dialog.isVisible())
    assert window.jobs.records == []
    assert base.read_bytes() == before


def test_a_long_base_name_is_elided_on_the_run_button(
    qtbot, window, open_dir, wait_plan, make, tmp_path
):
    name = "5c3dacc3ffb35db736514b4f08656bf25f877352"  # a Nova _base file
    make.create(name, "raw", "64M")
    top = str(make.overlay("top.qcow2", name, "raw"))
    dialog = open_commit(window, open_dir, tmp_path, top)
    assert not wait_plan(dialog).refused
    assert dialog.ok_button.text() == "Commit into 5c3dacc3ffb35…56bf25f877352"
    dialog.reject()
