"""The window tells the truth about broken chains: every image above a break says so, and the
actions that need an openable chain are disabled with the reason."""

from __future__ import annotations

from imagegui.core.chains.nodestate import State
from imagegui.gui.panels.chains_model import STATE


def test_images_above_a_hole_are_unusable_everywhere(qtbot, window, open_dir, make, tmp_path):
    make.create("c0.qcow2", "qcow2", "64M")
    for i in range(1, 10):
        make.overlay(f"c{i}.qcow2", f"c{i - 1}.qcow2")
    make.create("healthy.qcow2", "qcow2", "64M")
    (tmp_path / "c3.qcow2").unlink()
    open_dir(tmp_path)
    top = str(tmp_path / "c9.qcow2")
    snap = window.session.snapshot
    assert snap.status[top].state is State.UNUSABLE
    assert snap.status[str(tmp_path / "c2.qcow2")].state is State.OK
    # the list's State column
    model = window.chains.model
    state_text = model.index_of(top).siblingAtColumn(STATE).data()
    assert state_text.startswith("unusable")
    assert "missing backing file" in state_text
    assert "chain broken below: c3.qcow2" in model.index_of(top).data(3)  # ToolTipRole
    # selecting it: actions disabled with the reason, status bar and details say why
    window.selection.set(top)
    for action in (window.actions.launch, window.actions.commit, window.actions.flatten,
                   window.actions.overlay):  # fmt: skip
        assert not action.isEnabled(), action.text()
        assert "chain broken below: c3.qcow2" in action.toolTip()
        assert "Unavailable" in action.statusTip()
    assert window.actions.rebase.isEnabled()  # pointing it elsewhere is the way out
    assert window.actions.check.isEnabled()  # a check reads the image alone, not its chain
    status = window.status.selection.text()
    assert "qemu cannot open it" in status and "c3.qcow2" in status and "Launch" in status
    details = window.details.toPlainText()
    assert "Cannot be opened" in details and "chain broken below: c3.qcow2" in details
    assert "6 unusable" in window.status.summary.text()  # c4 (its own error) .. c9, not c0-c2
    # a healthy image: everything available again, tooltips without a reason
    window.selection.set(str(tmp_path / "healthy.qcow2"))
    assert window.actions.launch.isEnabled()
    assert "Unavailable" not in window.actions.launch.toolTip()
    assert "qemu cannot open" not in window.status.selection.text()


def test_no_selection_says_why_actions_are_off(window):
    window.selection.set(None)
    assert not window.actions.launch.isEnabled()
    assert "open a directory first" in window.actions.launch.toolTip()


def test_details_point_at_the_image_to_fix(qtbot, window, open_dir, make, tmp_path):
    """Above the break: a link to where it breaks; at the break: the image's own problem."""
    make.create("base.qcow2", "qcow2", "64M")
    make.overlay("mid.qcow2", "base.qcow2")
    make.overlay("top.qcow2", "mid.qcow2")
    (tmp_path / "base.qcow2").unlink()
    open_dir(tmp_path)
    window.selection.set(str(tmp_path / "top.qcow2"))
    text = window.details.toPlainText()
    assert "The chain breaks at base.qcow2" in text
    window.selection.set(str(tmp_path / "mid.qcow2"))
    text = window.details.toPlainText()
    assert "this image's own" in text and "The chain breaks at" not in text


def test_check_is_off_only_where_the_image_itself_cannot_be_read(window, open_dir, make, tmp_path):
    """A missing extent stops a check of the image (diagnose: ``stops_check``); a broken chain
    below does not, since a check reads the image alone."""
    disk = make.create("disk.vmdk", "vmdk", "8M", "subformat=monolithicFlat")
    (tmp_path / "disk-flat.vmdk").unlink()
    make.create("base.qcow2", "qcow2", "64M")
    top = make.overlay("top.qcow2", "base.qcow2")
    (tmp_path / "base.qcow2").unlink()
    open_dir(tmp_path)
    window.selection.set(str(disk))
    assert not window.actions.check.isEnabled()
    assert "missing data file" in window.actions.check.toolTip()
    window.selection.set(str(top))
    assert window.actions.check.isEnabled()
