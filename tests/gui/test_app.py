"""The entry point: --screenshot renders the real window to a PNG and exits 0."""

from __future__ import annotations

import os
import subprocess
import sys

from imagegui.gui.app import parse_args


def test_screenshot_writes_a_png(make, tmp_path):
    make.create("images/base.qcow2", "qcow2", "1G")
    make.overlay("images/top.qcow2", "base.qcow2")
    out = tmp_path / "shots" / "window.png"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run(
        [sys.executable, "-m", "imagegui", str(tmp_path / "images"), "--screenshot", str(out),
         "--size", "1000x700"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1000, 700)


def test_screenshot_of_a_missing_directory_fails(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run(
        [sys.executable, "-m", "imagegui", str(tmp_path / "nope"), "--screenshot",
         str(tmp_path / "x.png")],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert proc.returncode == 1
    assert not (tmp_path / "x.png").exists()


def test_arguments():
    args = parse_args(["/srv/images", "--screenshot", "a.png"])
    assert args.directory == "/srv/images" and args.screenshot == "a.png" and not args.demo
    assert parse_args(["--demo"]).demo
