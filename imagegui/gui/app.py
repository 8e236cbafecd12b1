"""``imagegui [DIR] [--demo] [--screenshot PATH]``: the QApplication, and what to open first.

- ``imagegui DIR`` opens DIR (a file: its directory, with the file selected);
- ``imagegui`` reopens the last directory, or the demo when there is none;
- ``imagegui --demo`` builds the demo directory with qemu-img in a temporary folder (on the worker
  pool, removed again on exit) and opens it;
- ``--screenshot PATH`` renders the window once the scan is done and the graph drawn, saves a PNG
  and exits 0 (offscreen when there is no display; the user's settings are not touched);
- ``--theme system|light|dark`` (or ``IMAGEGUI_THEME``) overrides the Appearance preference for
  this run, without saving it (screenshots and tests of both palettes).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

from PySide6.QtCore import QSettings, QThreadPool, QTimer
from PySide6.QtWidgets import QApplication

import imagegui
from imagegui import startup
from imagegui.appid import APP_ID
from imagegui.cli.window_args import parse_args
from imagegui.core.jobs import Job
from imagegui.gui import resources, theme
from imagegui.gui.settings import Settings
from imagegui.gui.workers import TaskSlot

#: Seconds --screenshot waits for the graph before giving up.
SCREENSHOT_TIMEOUT = 120


def has_display() -> bool:
    return bool(
        os.environ.get("DISPLAY")
        or os.environ.get("WAYLAND_DISPLAY")
        or os.environ.get("QT_QPA_PLATFORM")
    )


def make_app(argv: list[str] | None = None) -> QApplication:
    app = QApplication.instance() or QApplication(argv or [sys.argv[0]])
    app.setOrganizationName("imagegui")
    app.setApplicationName("imagegui")
    app.setApplicationVersion(imagegui.__version__)
    app.setDesktopFileName(APP_ID)  # Wayland matches the window to the desktop file by it
    app.setWindowIcon(resources.app_icon())
    theme.install(app, resources.stylesheet())
    return app


class Launcher:
    """Decides what the window opens first and, for --screenshot, when to take the picture."""

    def __init__(self, app: QApplication, window, args: argparse.Namespace):
        self.app = app
        self.window = window
        self.args = args
        self.demo_dirs: list[str] = []
        self.exit_code = 0
        #: Builds the demo directory (asked again while it builds: that build serves).
        self._demo = TaskSlot(window, on_done=self._on_demo_built, on_failed=self._on_demo_failed)
        window.demoRequested.connect(self.open_demo)
        app.aboutToQuit.connect(self._on_about_to_quit)

    def start(self) -> None:
        args = self.args
        if args.demo:
            self.open_demo()
            return
        target = args.directory
        if target is not None:
            self.window.open_directory(target)
            return
        last = self.window.settings.last_dir()
        if last is None:
            self.open_demo()
            return
        # The last directory may be gone: then the demo instead (the scan finds out, on the
        # worker, rather than a stat here).
        self.window.session.scanFailed.connect(self._on_last_dir_failed)
        self.window.session.snapshotReady.connect(self._forget_last_dir_check)
        self.window.open_directory(last)

    def _on_last_dir_failed(self, _target: str, _message: str) -> None:
        self._forget_last_dir_check()
        self.open_demo()

    def _forget_last_dir_check(self, *_: object) -> None:
        self.window.session.scanFailed.disconnect(self._on_last_dir_failed)
        self.window.session.snapshotReady.disconnect(self._forget_last_dir_check)

    def open_demo(self) -> None:
        if self._demo.running:
            return
        self.window.welcome.show_message("Building the demo directory with qemu-img…")
        self.window.status.showMessage("Building the demo directory with qemu-img…")
        qemu_img = self.window.settings.qemu_img()
        from imagegui.core.demo import build_demo  # only now: most starts open a directory

        self._demo.start(
            Job("Build demo", lambda p, c: build_demo(progress=p, cancel=c, qemu_img=qemu_img))
        )

    def _on_demo_built(self, path: str) -> None:
        self.demo_dirs.append(path)
        self.window.transient_dirs.add(path)
        self.window.open_directory(path)

    def _on_demo_failed(self, exc: object) -> None:
        message = f"Could not build the demo directory: {exc}"
        self.window.welcome.show_message(message)
        self.window.status.showMessage(message)
        if self.args.screenshot:
            print(f"imagegui: {message}", file=sys.stderr)
            self.exit_code = 1
            self.app.quit()

    def _on_about_to_quit(self) -> None:
        QThreadPool.globalInstance().waitForDone(15000)
        for path in self.demo_dirs:
            shutil.rmtree(path, ignore_errors=True)

    # -- screenshot mode

    def arm_screenshot(self, path: str) -> None:
        self.window.ready.connect(lambda: QTimer.singleShot(300, lambda: self._shoot(path)))
        self.window.session.scanFailed.connect(lambda _t, m: self._fail(m))
        QTimer.singleShot(SCREENSHOT_TIMEOUT * 1000, lambda: self._fail("timed out"))

    def _shoot(self, path: str) -> None:
        if self.window.jobs.active_count() or self.window.session.scanning:
            QTimer.singleShot(100, lambda: self._shoot(path))
            return
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        if not self.window.grab().save(path, "PNG"):
            self._fail(f"cannot write {path}")
            return
        print(path)
        self.app.quit()

    def _fail(self, message: str) -> None:
        print(f"imagegui: screenshot failed: {message}", file=sys.stderr)
        self.exit_code = 1
        self.app.quit()


def main(argv: list[str] | argparse.Namespace) -> int:
    """Opens the window; ``argv`` already parsed by ``imagegui.__main__`` (or a list to parse)."""
    args = argv if isinstance(argv, argparse.Namespace) else parse_args(argv)
    from imagegui import logsetup

    logsetup.setup(getattr(args, "verbose", 0), "imagegui window")
    if args.screenshot and not has_display():
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    elif not has_display():
        print(
            "imagegui: no display (DISPLAY is not set). Run it on a desktop, under xvfb-run, or "
            "use --screenshot PATH; the command line works anywhere (imagegui scan DIR).",
            file=sys.stderr,
        )
        return 2
    app = make_app([sys.argv[0]])
    from imagegui.gui.main_window import MainWindow

    if args.screenshot:
        # A throw-away settings file: a screenshot neither reads nor changes the user's.
        scratch = tempfile.NamedTemporaryFile(prefix="imagegui-", suffix=".ini", delete=False)  # noqa: SIM115
        scratch.close()
        settings = Settings(QSettings(scratch.name, QSettings.Format.IniFormat))
    else:
        settings = Settings()
    appearance = theme.resolve_appearance(
        args.theme, os.environ.get("IMAGEGUI_THEME"), settings.appearance()
    )
    if appearance != theme.SYSTEM:
        theme.apply_appearance(app, appearance)
    window = MainWindow(settings)
    launcher = Launcher(app, window, args)
    if args.screenshot:
        w, _, h = args.size.partition("x")
        window.resize(int(w), int(h))
        launcher.arm_screenshot(args.screenshot)
    # What this start loaded up to its first drawn graph is what the next one reads ahead when
    # its files are not cached (imagegui.startup): remembered once, after that first draw.
    window.ready.connect(startup.remember)
    window.show()
    QTimer.singleShot(0, launcher.start)
    code = app.exec()
    if args.screenshot:
        os.unlink(scratch.name)
    return launcher.exit_code or code
