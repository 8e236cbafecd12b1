"""scripts/bootstrap.sh as a normal user with a system package missing: through sudo when there is
one, otherwise the exact ``apt-get install`` line for root and exit 2 (not "sudo: command not
found", exit 127).

The script runs for real (bash, as user ``nobody`` when the tests run as root) on a PATH that holds
only what it needs before installing: ``dirname``, ``grep``, ``id`` and a stand-in ``dpkg-query``
that reports ``qemu-utils`` and ``xvfb`` as not installed (and, in the second test, a stand-in
``sudo`` that records what it was asked to run)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

import imagegui

ROOT = Path(imagegui.__file__).resolve().parents[1]
NOBODY = 65534
MISSING = ("qemu-utils", "xvfb")

FAKE_DPKG_QUERY = f"""#!/bin/sh
# dpkg-query -W -f='${{Status}}' PACKAGE
case "$3" in
  {"|".join(MISSING)}) exit 1 ;;
  *) printf 'install ok installed' ;;
esac
"""

FAKE_SUDO = """#!/bin/sh
echo "$*" >> "$(dirname "$0")/../sudo.log"
"""


@pytest.fixture
def sandbox():
    """A copy of the script in a directory ``nobody`` can read, and a bare PATH."""
    d = Path(tempfile.mkdtemp(prefix="imagegui-bootstrap-", dir="/tmp"))
    try:
        (d / "scripts").mkdir()
        shutil.copy(ROOT / "scripts" / "bootstrap.sh", d / "scripts" / "bootstrap.sh")
        (d / "bin").mkdir()
        for tool in ("dirname", "grep", "id"):
            os.symlink(shutil.which(tool), d / "bin" / tool)
        (d / "bin" / "dpkg-query").write_text(FAKE_DPKG_QUERY)
        for p in [d, *d.rglob("*")]:
            if not p.is_symlink():
                p.chmod(0o777 if p.is_dir() else 0o755)
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def run_as_user(d: Path) -> subprocess.CompletedProcess:
    as_nobody = {"user": NOBODY, "group": NOBODY, "extra_groups": []} if os.getuid() == 0 else {}
    return subprocess.run(
        [shutil.which("bash"), str(d / "scripts" / "bootstrap.sh"), "setup"],
        env={"PATH": str(d / "bin"), "HOME": str(d), "LANG": "C.UTF-8"},
        capture_output=True, text=True, timeout=60, cwd=d, **as_nobody,
    )  # fmt: skip


def test_without_root_and_without_sudo_it_prints_the_apt_get_line(sandbox):
    proc = run_as_user(sandbox)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert f"    apt-get update && apt-get install -y {' '.join(MISSING)}" in lines
    assert "sudo is not installed" in proc.stderr
    assert "command not found" not in proc.stderr


def test_without_root_it_installs_through_sudo(sandbox):
    (sandbox / "bin" / "sudo").write_text(FAKE_SUDO)
    (sandbox / "bin" / "sudo").chmod(0o755)
    os.symlink(shutil.which("env"), sandbox / "bin" / "env")
    run_as_user(sandbox)  # goes on to make .venv, which the bare PATH cannot: not checked here
    calls = (sandbox / "sudo.log").read_text().splitlines()
    assert calls == [
        "apt-get update -qq",
        f"env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {' '.join(MISSING)}",
    ]
