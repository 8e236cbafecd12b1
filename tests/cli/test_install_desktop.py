"""``imagegui install-desktop`` as a user runs it: a real process into a temporary
XDG_DATA_HOME (and a temporary prefix for --system); the installed files are judged by the
desktop's own validators, and --uninstall must leave nothing behind."""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

APP_ID = "io.github.imagegui.ImageGui"
REPO = Path(__file__).resolve().parents[2]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "imagegui", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run scripts/bootstrap.sh setup")
    return path


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def check_installed(data: Path) -> None:
    desktop = data / "applications" / f"{APP_ID}.desktop"
    proc = subprocess.run([tool("desktop-file-validate"), desktop], capture_output=True, text=True)
    assert proc.returncode == 0 and "error" not in proc.stdout, proc.stdout
    text = desktop.read_text()
    assert "Version=1.5" not in text and "inode/directory" not in text
    [exec_line] = [line for line in text.splitlines() if line.startswith("Exec=")]
    program = exec_line.removeprefix("Exec=").split()[0]
    assert os.path.isabs(program) and os.access(program, os.X_OK)
    assert f"Icon={APP_ID}\n" in text
    metainfo = data / "metainfo" / f"{APP_ID}.metainfo.xml"
    proc = subprocess.run(
        [tool("appstreamcli"), "validate", "--no-net", metainfo], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    hicolor = data / "icons" / "hicolor"
    assert (hicolor / "scalable" / "apps" / f"{APP_ID}.svg").is_file()
    for size in (16, 24, 32, 48, 64, 128, 256):
        png = (hicolor / f"{size}x{size}" / "apps" / f"{APP_ID}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert struct.unpack(">II", png[16:24]) == (size, size)
    assert (data / "man" / "man1" / "imagegui.1").is_file()
    bash = data / "bash-completion" / "completions" / "imagegui"
    assert subprocess.run(["bash", "-n", bash]).returncode == 0
    assert (data / "zsh" / "site-functions" / "_imagegui").is_file()


def test_user_install_validates_and_uninstall_leaves_nothing(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "applications").mkdir()
    (data / "applications" / "other.desktop").write_text("someone else's\n")
    before = files_under(data)
    env = {"XDG_DATA_HOME": str(data)}
    proc = run("install-desktop", env=env)
    assert proc.returncode == 0, proc.stderr
    check_installed(data)
    again = run("install-desktop", "--user", env=env)  # idempotent: a second run replaces
    assert again.returncode == 0, again.stderr
    proc = run("install-desktop", "--uninstall", env=env)
    assert proc.returncode == 0, proc.stderr
    left = files_under(data) - before - {"applications/mimeinfo.cache"}
    assert left == set()
    assert (data / "applications" / "other.desktop").read_text() == "someone else's\n"
    assert "nothing to remove" in run("install-desktop", "--uninstall", env=env).stdout


def test_system_install_goes_under_the_prefix(tmp_path):
    prefix = tmp_path / "usr-local"
    proc = run("install-desktop", "--system", "--prefix", str(prefix))
    assert proc.returncode == 0, proc.stderr
    check_installed(prefix / "share")
    proc = run("install-desktop", "--system", "--uninstall", env={"IMAGEGUI_PREFIX": str(prefix)})
    assert proc.returncode == 0, proc.stderr
    assert files_under(prefix) == {"share"}


def test_prefix_without_system_is_refused(tmp_path):
    proc = run("install-desktop", "--prefix", str(tmp_path))
    assert proc.returncode == 2 and "--prefix goes with --system" in proc.stderr
    assert files_under(tmp_path) == set()


def test_exec_quotes_a_path_with_spaces_per_the_desktop_spec():
    from imagegui.cli.install_desktop import desktop_exec

    line = desktop_exec(["/opt/my apps/bin/python3", "-m", "imagegui", "50%"])
    assert line == '"/opt/my apps/bin/python3" -m imagegui 50%%'


def test_committed_icon_pngs_were_rendered_from_the_current_svg():
    """scripts/render_icons.sh records the SVG it rendered; a changed SVG needs a re-render."""
    svg = (REPO / "resources" / "imagegui.svg").read_bytes()
    recorded = (REPO / "resources" / "icons" / "hicolor" / "SOURCE.sha256").read_text().strip()
    assert hashlib.sha256(svg).hexdigest() == recorded


def test_metainfo_release_is_this_version():
    import xml.etree.ElementTree as ET

    import imagegui

    root = ET.parse(REPO / "resources" / f"{APP_ID}.metainfo.xml").getroot()
    assert root.findtext("id") == APP_ID
    assert root.find("releases/release").get("version") == imagegui.__version__
