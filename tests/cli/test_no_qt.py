"""The command line never imports Qt: with PySide6 unimportable (a server without Qt's libraries)
``--help``, ``--version``, every subcommand and a mistyped one still work; only the window fails,
with a sentence instead of a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from imagegui import __version__
from imagegui.cli import SUBCOMMANDS


@pytest.fixture
def no_qt(tmp_path):
    """An environment whose ``import PySide6`` raises ImportError, as on a machine without the
    GL libraries Qt's widget modules need."""
    fake = tmp_path / "fake-site" / "PySide6"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        "raise ImportError('libEGL.so.1: cannot open shared object file (test)')\n"
    )
    path = [str(fake.parent), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    env.pop("QT_QPA_PLATFORM", None)
    return env


def run(env, *args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "imagegui", *map(str, args)],
        capture_output=True, text=True, timeout=60, env=env, cwd=cwd,
    )  # fmt: skip


def test_the_fake_really_breaks_pyside6(no_qt):
    proc = subprocess.run(
        [sys.executable, "-c", "import PySide6"], capture_output=True, text=True, env=no_qt
    )
    assert proc.returncode == 1 and "libEGL" in proc.stderr


def test_version_and_help_without_qt(no_qt):
    proc = run(no_qt, "--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"imagegui {__version__}"
    proc = run(no_qt, "--help")
    assert proc.returncode == 0, proc.stderr
    assert "--screenshot" in proc.stdout
    assert all(command in proc.stdout for command in SUBCOMMANDS)


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_help_without_qt(no_qt, command):
    proc = run(no_qt, command, "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: imagegui {command}")


def test_scan_json_without_qt(no_qt, make, tmp_path):
    make.create("images/base.qcow2", "qcow2", "1G")
    make.overlay("images/top.qcow2", "base.qcow2")
    proc = run(no_qt, "scan", tmp_path / "images", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert {os.path.basename(i["path"]) for i in out["images"]} == {"base.qcow2", "top.qcow2"}


def test_mistyped_subcommand_is_named(no_qt, tmp_path):
    proc = run(no_qt, "scna", ".", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "imagegui: unknown command 'scna'; did you mean 'scan'?"
    proc = run(no_qt, "chek-image", "x.qcow2", cwd=tmp_path)
    assert proc.returncode == 2 and "did you mean 'check-image'?" in proc.stderr
    proc = run(no_qt, "frobnicate", cwd=tmp_path)
    assert proc.returncode == 2
    assert "unknown command 'frobnicate'" in proc.stderr and "scan" in proc.stderr


def test_bad_window_argument_is_a_usage_error(no_qt):
    proc = run(no_qt, "--theme", "purple")
    assert proc.returncode == 2 and "invalid choice: 'purple'" in proc.stderr


def test_a_directory_named_like_a_command_is_opened_not_corrected(no_qt, tmp_path):
    (tmp_path / "scna").mkdir()
    proc = run(no_qt, "scna", cwd=tmp_path)
    # Taken as the directory to open: the window is what fails here, saying why in one line.
    assert proc.returncode == 1
    assert "the window cannot start" in proc.stderr and "libEGL" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_window_appearances_match_the_theme():
    from imagegui.cli.window_args import APPEARANCES

    theme = pytest.importorskip("imagegui.gui.theme")
    assert theme.APPEARANCES == APPEARANCES
