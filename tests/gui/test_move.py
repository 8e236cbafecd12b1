"""Moving and renaming in the window: Undo after a move offers the move as one change and puts
back names and pointers."""

from __future__ import annotations

from conftest import qemu_img, qemu_info

from imagegui.core.chains.graph import ChainGraph
from imagegui.core.read.scan import scan_directory


def _plain(action) -> str:
    return action.text().replace("&", "").rstrip("…")


def problems(root) -> list[str]:
    return [f"{p.kind} {p.path}" for p in ChainGraph(scan_directory(str(root))).problems]


def test_undo_after_a_move_restores_names_and_pointers(
    qtbot, window, open_dir, wait_plan, make, tmp_path
):
    from imagegui.core.ops.move import plan_move

    base = make.create("base.qcow2")
    web = make.overlay("web.qcow2", "base.qcow2")
    (tmp_path / "store").mkdir()
    plan_move([str(base)], str(tmp_path / "store")).run()
    assert qemu_info(web)["backing-filename"] == "store/base.qcow2"
    open_dir(tmp_path)
    undo = window.actions.undo_rebase
    qtbot.waitUntil(lambda: undo.isEnabled(), timeout=10_000)
    assert _plain(undo) == "Undo move of base.qcow2"  # not "Undo rebase of web.qcow2"
    undo.trigger()
    dialog = window.ops.dialog
    assert dialog.windowTitle() == "Undo move of base.qcow2"
    plan = wait_plan(dialog)
    assert not plan.refused, plan.describe()
    assert dialog.ok_button.isDefault()  # nothing is overwritten: Undo is the default
    with qtbot.waitSignal(window.ready, timeout=30_000):
        dialog.accept()
    assert base.exists() and not (tmp_path / "store" / "base.qcow2").exists()
    assert qemu_info(web)["backing-filename"] == "base.qcow2"
    assert problems(tmp_path) == []
    assert qemu_img("check", str(web)).returncode == 0
    qtbot.waitUntil(lambda: window.selection.node == str(base), timeout=10_000)
    assert not undo.isEnabled() and "the last move (base.qcow2) was already undone" in (
        undo.toolTip()
    )
