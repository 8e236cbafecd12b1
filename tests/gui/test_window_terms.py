"""The window speaks in window terms: no command lines or flags in anything it shows on the demo.

Only the plan preview's "Will run" block shows a command line (that is what it is for). Problem
messages and guard findings are shared with the command line, which adds its ``fix_cli``.
"""

from __future__ import annotations

import re

from PySide6.QtWidgets import QAbstractButton, QLabel, QWidget

from imagegui.core.chains.graph import IMAGE
from imagegui.core.demo import build_demo

_SUBCOMMANDS = "scan|check|check-image|overlay|rebase|commit|flatten|launch|vms|stop"
_QEMU_IMG = "create|rebase|commit|convert|check|info|measure|amend|resize|map|snapshot"
#: A command line or a flag: ``--root``, `` -u ``, ``imagegui rebase``, ``qemu-img check``, ``.
CLI_TEXT = re.compile(
    rf"(?<![\w/.-])--?[A-Za-z][\w-]*(?=[\s,.;:)]|$)"
    rf"|\bimagegui (?:{_SUBCOMMANDS})\b"
    rf"|\bqemu-img (?:{_QEMU_IMG})\b"
    r"|`"
)


def cli_bits(text: str) -> list[str]:
    return [m.group(0) for m in CLI_TEXT.finditer(text or "")]


def test_the_pattern_finds_command_lines_and_only_them():
    assert cli_bits("add --root DIR") == ["--root"]
    assert cli_bits("(undo with --undo)") == ["--undo"]
    assert cli_bits("imagegui rebase --unsafe a b") == ["imagegui rebase", "--unsafe"]
    assert cli_bits("Record it: qemu-img rebase -u -b x a") == ["qemu-img rebase", "-u", "-b"]
    assert cli_bits("run `qemu-img check -r all`") == ["`", "qemu-img check", "-r", "`"]
    assert cli_bits("check-image --repair all") == ["--repair"]
    assert not cli_bits("ubuntu-dev.qcow2 — a clone; x-y -> z; /tmp/a/-b.qcow2; 64 MiB")


def _preview_without_will_run(dialog) -> str:
    text = dialog.preview.toPlainText()
    if dialog.plan is None:
        return text
    start, end = text.find("Will run"), text.find("What changes")
    assert start >= 0 and end > start, text
    return text[:start] + text[end:]


def _widget_texts(root: QWidget) -> list[str]:
    out = [root.toolTip(), root.statusTip()]
    for w in root.findChildren(QWidget):
        out += [w.toolTip(), w.statusTip(), w.whatsThis()]
        if isinstance(w, (QLabel, QAbstractButton)):
            out.append(w.text())
    return out


def test_every_text_the_window_shows_on_the_demo(
    qtbot, window, open_dir, wait_plan, tmp_path, trash_home
):
    root = build_demo(str(tmp_path / "demo"))
    open_dir(root)
    snap = window.session.snapshot
    shown: list[tuple[str, str]] = []

    def see(where: str, *texts: str) -> None:
        shown.extend((where, t) for t in texts if t)

    for action in window.actions.all():
        see(f"action {action.text()}", action.toolTip(), action.statusTip())
    see("window", *_widget_texts(window))
    problems = window.problems.model
    for g in range(problems.rowCount()):
        group = problems.index(g, 0)
        see("problems group", problems.data(group), problems.data(problems.index(g, 1)))
        see("problems group tip", problems.data(group, 3))
        for r in range(problems.rowCount(group)):
            for col in (0, 1):
                index = problems.index(r, col, group)
                see("problem", problems.data(index), problems.data(index, 3))
    chains = window.chains.model
    for node in snap.graph.nodes:
        window.selection.set(node)
        see(f"details of {node}", window.details.toPlainText())
        index = chains.index_of(node)
        see(f"list tooltip of {node}", chains.data(index, 3))
        for action in window.actions.image_menu():
            if action is not None:
                see(f"action {action.text()} on {node}", action.toolTip(), action.statusTip())

    # The plan dialogs, on every image with a problem and a healthy overlay.
    troubled = {p.path for p in snap.graph.problems if snap.graph.kind(p.path) == IMAGE}
    healthy = next(
        n
        for n in snap.graph.nodes
        if snap.graph.kind(n) == IMAGE
        and n not in troubled
        and snap.graph.backing_of(n)
        and not snap.status[n].unusable
    )
    acts = window.actions
    for node in sorted(troubled) + [healthy]:
        for action in (acts.overlay, acts.rebase, acts.commit, acts.flatten, acts.repair):
            window.selection.set(node)
            if not action.isEnabled():
                continue
            action.trigger()
            dialog = window.ops.dialog
            if dialog.planning or dialog._debounce.isActive():
                wait_plan(dialog)
            where = f"{dialog.windowTitle()} on {node}"
            see(where, *_widget_texts(dialog), _preview_without_will_run(dialog))
            dialog.reject()

    # Check's result box, and a journalled rebase: its status message, then the Undo's texts.
    window.selection.set(healthy)
    assert window.actions.check.isEnabled()
    # The check ends, then the rescan it starts (its findings become problems).
    with qtbot.waitSignals([window.jobs.jobFinished, window.ready], timeout=30_000):
        window.actions.check.trigger()
    box = window.ops.last_box
    see("check result", box.text(), box.informativeText(), box.detailedText())
    box.close()
    clone = next(p.path for p in snap.graph.problems if p.kind == "missing-backing")
    window.selection.set(clone)
    window.actions.repair.trigger()
    dialog = window.ops.dialog
    wait_plan(dialog)
    see("repair", *_widget_texts(dialog), _preview_without_will_run(dialog))
    with qtbot.waitSignals([window.jobs.jobFinished, window.ready], timeout=30_000):
        dialog.accept()
    see("status after the repair", window.status.currentMessage())
    undo = window.actions.undo_rebase
    assert undo.isEnabled()
    see("undo action", undo.text(), undo.toolTip(), undo.statusTip())
    undo.trigger()
    dialog = window.ops.dialog
    wait_plan(dialog)
    see("undo", *_widget_texts(dialog), _preview_without_will_run(dialog))
    with qtbot.waitSignal(window.ready, timeout=30_000):
        dialog.accept()
    see("status after the undo", window.status.currentMessage())
    see("undo action after", undo.text(), undo.toolTip(), undo.statusTip())

    # Delete: refused on a base with overlays (the core's refusal carries a flag for the
    # command line), then to the Trash, restored; Clean Up's list and plan.
    base = next(
        n for n in snap.graph.nodes if snap.graph.kind(n) == IMAGE and snap.graph.children(n)
    )
    for action in (acts.trash, acts.trash_with_overlays, acts.delete_permanently):
        window.selection.set(base)
        action.trigger()
        dialog = window.ops.dialog
        wait_plan(dialog)
        see(dialog.windowTitle(), *_widget_texts(dialog), dialog.preview.toPlainText())
        dialog.reject()
    window.selection.set(healthy)
    acts.trash.trigger()
    dialog = window.ops.dialog
    wait_plan(dialog)
    see("move to trash", *_widget_texts(dialog), dialog.preview.toPlainText())
    with qtbot.waitSignal(window.ready, timeout=30_000):
        dialog.accept()
    see("status after the delete", window.status.currentMessage(), window.status.undo.toolTip())
    qtbot.waitUntil(lambda: "Restore" in undo.text(), timeout=10_000)
    see("restore action", undo.text(), undo.toolTip(), undo.statusTip())
    undo.trigger()
    dialog = window.ops.dialog
    wait_plan(dialog)
    see("restore", *_widget_texts(dialog), dialog.preview.toPlainText())
    with qtbot.waitSignal(window.ready, timeout=30_000):
        dialog.accept()
    see("status after the restore", window.status.currentMessage())
    acts.clean_up.trigger()
    dialog = window.ops.dialog
    qtbot.waitUntil(lambda: dialog.items is not None, timeout=30_000)
    wait_plan(dialog)
    tree = dialog.tree
    for g in range(tree.topLevelItemCount()):
        group = tree.topLevelItem(g)
        rows = [group] + [group.child(r) for r in range(group.childCount())]
        for row in rows:
            see("clean up row", *(row.text(c) for c in range(3)), row.toolTip(0), row.toolTip(2))
    see("clean up", *_widget_texts(dialog), dialog.preview.toPlainText())
    dialog.reject()

    found = [(where, text, cli_bits(text)) for where, text in shown if cli_bits(text)]
    assert not found, "\n".join(f"{w}: {b} in {t!r}" for w, t, b in found)
    assert len(shown) > 200  # the scan above really looked at the window
