"""Screenshots of the real window (xcb under Xvfb) from the demo directory, for the README.

    .venv/bin/python scripts/screenshots.py [--out resources/screenshots] [--big 10000]

Without a display it re-runs itself under ``xvfb-run``. Writes, each on a light palette and
again on a dark one (``-dark`` before the extension; ``--theme`` for only one of them):
  main.png      the demo: graph, chains list, details of the clone whose base moved, problems
  commit.png    Commit… on a clone whose base is shared: the siblings listed, refused
  repair.png    Repair missing backing…: the moved base found by name, the exact command
  launch.png    Launch in QEMU… on a base with overlays: snapshot only
  overview.png  (with --big N) N images zoomed out: each tree one block (gui/graph/overview.py);
                every 97th chain has a file deleted in its middle, so some trees are broken
  overview-zoom.png  the same closer (8 %): the blocks labelled with base and count
  overview-problems.png  the same with Problems Only: just the broken chains
  space.png     the Space view: the treemap of the demo's disk use, the totals above it
  layers.png    the details of a five-layer snapshot chain: what each layer gives its guest
  snapshots.png the details of a disk with internal snapshots: the list, Take, Revert, Delete
  drag-move.png a card dragged onto a folder of the Folders panel: a real drag (xdotool moves
                the pointer and holds the button), the folder under it highlighted
  drop-preview.png  the Move preview that drop opens: the overlays re-pointed (then cancelled)
(``--only space.png,layers.png`` shoots only those.)
The dark set is shot in the same window after switching the palette, as a user would.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCREEN = (1600, 1000)
WINDOW = (1440, 900)


def reexec_under_xvfb() -> None:
    if os.environ.get("DISPLAY") or os.environ.get("IMAGEGUI_SHOTS_XVFB"):
        return
    if shutil.which("xvfb-run") is None:
        sys.exit("screenshots: no display and no xvfb-run (Debian: apt install xvfb xauth)")
    env = dict(os.environ, IMAGEGUI_SHOTS_XVFB="1")
    env.pop("QT_QPA_PLATFORM", None)
    argv = ["xvfb-run", "-a", "-s", f"-screen 0 {SCREEN[0]}x{SCREEN[1]}x24"]
    os.execvpe(argv[0], [*argv, sys.executable, __file__, *sys.argv[1:]], env)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / "resources" / "screenshots"))
    ap.add_argument("--big", type=int, default=0, help="also shoot N images zoomed out")
    ap.add_argument(
        "--theme", choices=("light", "dark", "both"), default="both", help="palettes to shoot"
    )
    ap.add_argument("--only", default="", help="comma-separated names: shoot only these")
    args = ap.parse_args()
    reexec_under_xvfb()

    from PySide6.QtCore import QEventLoop, QSettings, Qt, QTimer
    from PySide6.QtGui import QGuiApplication

    import imagegui.gui  # noqa: F401  (the PySide6 guard first)
    from imagegui.core.demo import build_demo
    from imagegui.gui import theme
    from imagegui.gui.app import make_app
    from imagegui.gui.main_window import MainWindow
    from imagegui.gui.settings import Settings

    app = make_app()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="imagegui-shots-"))
    os.environ["IMAGEGUI_JOURNAL"] = str(scratch / "journal.jsonl")
    settings = Settings(QSettings(str(scratch / "settings.ini"), QSettings.Format.IniFormat))

    def wait(signal=None, ms: int = 300, timeout: int = 60_000) -> None:
        loop = QEventLoop()
        if signal is not None:
            signal.connect(loop.quit)
            QTimer.singleShot(timeout, loop.quit)
        else:
            QTimer.singleShot(ms, loop.quit)
        loop.exec()

    def until(check, timeout: float = 60.0) -> None:
        end = time.monotonic() + timeout
        while not check() and time.monotonic() < end:
            wait(ms=50)

    suffix = ""
    only = {n.strip() for n in args.only.split(",") if n.strip()}

    def wanted(name: str) -> bool:
        return not only or name in only

    def named(name: str) -> Path:
        stem, dot, ext = name.rpartition(".")
        return out / f"{stem}{suffix}{dot}{ext}"

    def shoot_window(name: str) -> None:
        if not wanted(name):
            return
        wait(ms=400)
        path = named(name)
        window.grab().save(str(path))
        print(path)

    def shoot_widget(name: str, widget, height: int = 0) -> None:
        """``widget`` alone, its top ``height`` pixels when given."""
        if not wanted(name):
            return
        wait(ms=400)
        path = named(name)
        rect = widget.rect()
        if height:
            rect.setHeight(min(rect.height(), height))
        widget.grab(rect).save(str(path))
        print(path)

    def shoot_screen(name: str) -> None:
        """The window with its dialog on top, as a user sees them (no window manager here)."""
        if not wanted(name):
            return
        wait(ms=600)
        geo = window.frameGeometry()
        screen = QGuiApplication.primaryScreen()
        pixmap = screen.grabWindow(0, geo.x(), geo.y(), geo.width(), geo.height())
        path = named(name)
        pixmap.save(str(path))
        print(path)

    def drag_and_drop(image: str, folder: str) -> None:
        """A real drag of ``image``'s card onto ``folder`` in the Folders panel: xdotool presses
        on the card and moves the pointer (the X server delivers it, as a hand would); the shot
        is taken while the button is held over the highlighted folder, then the button is let go
        and the Move preview the drop opens is shot and cancelled (nothing is moved)."""
        import subprocess

        from PySide6.QtCore import QTimer as Timer

        from imagegui.gui.dialogs.move_dialog import MoveDialog

        if shutil.which("xdotool") is None:
            print("screenshots: no xdotool (Debian: apt install xdotool); no drag shots")
            return
        window.selection.set(image)
        window.view.show_node(image)
        window.show_folders_panel()  # (a drag raises it too, but the pointer's path is set now)
        tree = window.folders.tree
        index = window.folders.index_of(folder)
        tree.scrollTo(index)
        wait(ms=300)
        view = window.view
        card = window.scene.node_rect(image)
        start = view.viewport().mapToGlobal(view.mapFromScene(card.center()))
        end = tree.viewport().mapToGlobal(tree.visualRect(index).center())
        steps = []
        for i in range(1, 9):  # a hand's path: several moves, so the drag starts and follows
            x = start.x() + (end.x() - start.x()) * i // 8
            y = start.y() + (end.y() - start.y()) * i // 8
            steps += ["mousemove", str(x), str(y), "sleep", "0.08"]
        shot = {"taken": False}

        def over_folder() -> None:
            if shot["taken"] or not tree.drop_target.isValid():
                return
            shot["taken"] = True
            poll.stop()
            shoot_screen("drag-move.png")  # inside the drag's own event loop: button held
            subprocess.run(["xdotool", "mouseup", "1"], check=False)

        poll = Timer()
        poll.timeout.connect(over_folder)
        poll.start(50)
        mover = subprocess.Popen(
            ["xdotool", "mousemove", str(start.x()), str(start.y()), "sleep", "0.2",
             "mousedown", "1", "sleep", "0.2", *steps,
             "mousemove", str(end.x() + 3), str(end.y()), "sleep", "0.3",
             "mousemove", str(end.x() + 6), str(end.y())]
        )  # fmt: skip
        until(lambda: isinstance(window.ops.dialog, MoveDialog) and window.ops.dialog.isVisible())
        mover.wait()
        poll.stop()
        dialog = window.ops.dialog
        if not shot["taken"] or not isinstance(dialog, MoveDialog):
            subprocess.run(["xdotool", "mouseup", "1"], check=False)
            print("screenshots: the drag did not reach the folder; no drag shots")
            return
        until(lambda: dialog.plan is not None)
        shoot_screen("drop-preview.png")
        dialog.reject()
        window.ops.dialog = None
        window.details_dock.raise_()
        wait(ms=200)

    themes = ["light", "dark"] if args.theme == "both" else [args.theme]
    theme.apply_appearance(app, themes[0])
    demo = build_demo(str(scratch / "demo"))
    window = MainWindow(settings)
    window.ask_before_closing = False
    window.resize(*WINDOW)
    window.move(0, 0)
    window.show()
    wait(ms=200)
    window.open_directory(demo)
    wait(window.ready)

    clone = f"{demo}/clones/ubuntu-dev.qcow2"
    for mode in themes:
        suffix = "" if mode == "light" else "-dark"
        theme.apply_appearance(app, mode)  # the open window recolours itself
        window.selection.set(clone)
        window.chains.tree.expandAll()
        window.view.show_node(clone)
        shoot_window("main.png")

        if wanted("space.png") or wanted("layers.png"):
            until(lambda: window.session.space_report is not None)
            window.show_view(window.space)
            snapshots = f"{demo}/templates/snapshots"
            window.selection.set(f"{snapshots}/web-2024-03.qcow2")
            picture = window.space.map
            until(lambda picture=picture: picture.picture is not None)
            shoot_window("space.png")
            bar = window.layers  # the bar, its legend and the top of the details below it
            below = bar.mapTo(window.details_dock, bar.rect().bottomLeft()).y()
            shoot_widget("layers.png", window.details_dock, below + 190)
            window.show_view(window.view)
            window.selection.set(clone)

        if wanted("snapshots.png"):
            window.selection.set(f"{demo}/vms/fedora-40.qcow2")
            dock, details = window.details_dock, window.details
            width = dock.width()
            window.resizeDocks([dock], [560], Qt.Orientation.Horizontal)  # the table unwrapped
            wait(ms=200)
            cursor = details.document().find("Internal snapshots")
            if not cursor.isNull():  # the list at the top of the text
                top = details.cursorRect(cursor).top()
                bar = details.verticalScrollBar()
                bar.setValue(bar.value() + top - 6)
            shoot_widget("snapshots.png", dock, 520)
            window.resizeDocks([dock], [width], Qt.Orientation.Horizontal)
            window.selection.set(clone)

        if wanted("drag-move.png") or wanted("drop-preview.png"):
            drag_and_drop(f"{demo}/templates/debian-12.qcow2", f"{demo}/vms")
            window.selection.set(clone)

        if not (wanted("commit.png") or wanted("repair.png") or wanted("launch.png")):
            continue
        window.selection.set(f"{demo}/templates/debian-12-web.qcow2")
        window.actions.commit.trigger()
        dialog = window.ops.dialog
        until(lambda dialog=dialog: dialog.plan is not None)
        shoot_screen("commit.png")
        dialog.reject()

        window.selection.set(clone)
        window.actions.repair.trigger()
        dialog = window.ops.dialog
        until(lambda dialog=dialog: dialog.plan is not None)
        shoot_screen("repair.png")
        dialog.reject()

        window.selection.set(f"{demo}/templates/debian-12.qcow2")
        window.actions.launch.trigger()
        dialog = window.ops.dialog
        until(lambda dialog=dialog: dialog.plan is not None)
        shoot_screen("launch.png")
        dialog.reject()

    big_shots = ("overview.png", "overview-zoom.png", "overview-problems.png")
    if args.big and any(wanted(name) for name in big_shots):
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from scan_bench import CHAIN_NAME, make_tree

        big = scratch / "big"
        big.mkdir()
        make_tree(str(big), args.big, 10)
        for c in range(3, args.big // 10, 97):  # a hole in the middle of a few chains
            (big / f"dir{c * 10 // 1000:04d}" / CHAIN_NAME.format(chain=c, depth=4)).unlink()
        window.open_directory(str(big))
        wait(window.ready, timeout=120_000)
        window.selection.set(None)
        window.view.fit_all()
        for mode in themes:
            suffix = "" if mode == "light" else "-dark"
            theme.apply_appearance(app, mode)
            shoot_window("overview.png")
        if wanted("overview-zoom.png"):  # closer: the blocks labelled, a broken tree in view
            overview = window.view.overview
            data = overview.current()
            broken = next((t for t in data.trees if t.broken), None) if data else None
            window.view.set_scale(0.08)
            if broken is not None:
                window.view.centerOn(broken.x + broken.w / 2, broken.y + broken.h / 2)
            for mode in themes:
                suffix = "" if mode == "light" else "-dark"
                theme.apply_appearance(app, mode)
                shoot_window("overview-zoom.png")
            window.view.fit_all()
        window.actions.problems_only.setChecked(True)
        wait(window.scene.built, timeout=120_000)
        wait(ms=300)
        for mode in themes:
            suffix = "" if mode == "light" else "-dark"
            theme.apply_appearance(app, mode)
            shoot_window("overview-problems.png")
        window.actions.problems_only.setChecked(False)

    window.close()
    app.processEvents()
    shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
