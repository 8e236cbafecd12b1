"""Names from disk never reach the terminal raw: a backing name or file name carrying ESC ]
(window title), ESC [2J (clear screen), CR, LF or BEL is printed escaped by every text output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from imagegui.core.units import printable

EVIL = "\x1b]0;pwned\x07\x1b[2J\rverdict: ok to run\n\u202egpj.exe\x9b"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "imagegui", *args], capture_output=True, text=True, timeout=60,
        errors="surrogateescape",
    )  # fmt: skip


def assert_safe(text: str) -> None:
    for bad in ("\x1b", "\x07", "\r", "\u202e", "\x9b"):
        assert bad not in text, repr(text)


@pytest.fixture
def evil(tmp_path: Path) -> Path:
    """An overlay whose backing name is EVIL, and a base whose own file name contains it."""
    base = tmp_path / f"base{EVIL}.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), "16M"], check=True)
    top = tmp_path / "top.qcow2"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", EVIL, "-F", "qcow2", str(top),
         "16M"], check=True,
    )  # fmt: skip
    return top


def test_printable_escapes_control_characters():
    assert printable("plain name.qcow2") == "plain name.qcow2"
    assert printable("a\x1b[2Jb\r\nc\x07") == "a\\x1b[2Jb\\r\\nc\\x07"
    assert printable("x\u202ey\x9b") == "x\\u202ey\\x9b"
    assert printable("caf\udce9") == "caf\\xe9"  # undecodable byte, as display_path did
    assert printable("ünïcode ✓") == "ünïcode ✓"


def test_scan_and_check_escape_names(evil: Path):
    root = str(evil.parent)
    for args in (("scan", root), ("check", root)):
        proc = run(*args)
        assert proc.returncode in (0, 1), proc.stderr
        assert_safe(proc.stdout + proc.stderr)
        assert "\\x1b]0;pwned\\x07\\x1b[2J\\rverdict: ok to run\\n" in proc.stdout


def test_dry_runs_and_refusals_escape_names(evil: Path, tmp_path: Path):
    base = next(p for p in tmp_path.iterdir() if p.name.startswith("base"))
    new = tmp_path / f"new{EVIL}.qcow2"
    for args in (
        ("overlay", str(base), str(new), "--dry-run"),
        ("rebase", str(evil), str(base), "--unsafe", "--dry-run"),
        ("rebase", str(evil), str(base), "--unsafe"),
        ("commit", str(evil), "--dry-run"),
        ("commit", str(evil)),
        ("flatten", str(evil), str(new), "--dry-run"),
        ("check-image", str(base)),
    ):
        proc = run(*args)
        assert_safe(proc.stdout + proc.stderr)
        lines = (proc.stdout + proc.stderr).splitlines()
        assert not any(line.startswith("verdict: ok to run") for line in lines[1:-1]), args
    assert not os.path.lexists(new)


def test_argument_errors_escape_what_was_typed(tmp_path):
    """argparse repeats unknown arguments in its error: they are escaped like any output."""
    for argv in (
        ["scan", str(tmp_path), "--bogus", "\x1b]0;pwned\x07"],
        ["--theme", "\x1b[2J"],  # an invalid choice is quoted back
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "imagegui", *argv], capture_output=True, text=True
        )
        assert proc.returncode == 2
        assert "\x1b" not in proc.stderr and "\x07" not in proc.stderr, proc.stderr
        assert "\\x1b" in proc.stderr
