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


FAKE_PYTHON = """#!/bin/sh
# python -m venv DIR | python -m pip install -q ... | python -c CODE: records each call; the
# libvirt extra fails to build the way libvirt-python does without libvirt-dev when told to.
echo "$*" >> {d}/python.log
case "$*" in
  "-m venv "*) mkdir -p "$3/bin" && cp "$0" "$3/bin/python" ;;
  *"[test,libvirt]"*)
    if [ -e {d}/libvirt-fails ]; then
      echo "      Package libvirt was not found in the pkg-config search path."
      echo "error: subprocess-exited-with-error"
      exit 1
    fi ;;
esac
exit 0
"""


@pytest.fixture
def installed_system(sandbox):
    """Every system package installed, a stand-in Python that makes venvs and 'installs'."""
    (sandbox / "bin" / "dpkg-query").write_text("#!/bin/sh\nprintf 'install ok installed'\n")
    (sandbox / "bin" / "python3").write_text(FAKE_PYTHON.format(d=sandbox))
    for tool in ("sha1sum", "cut", "cat", "sh", "mkdir", "cp"):
        os.symlink(shutil.which(tool), sandbox / "bin" / tool)
    shutil.copy(ROOT / "pyproject.toml", sandbox / "pyproject.toml")
    for p in (sandbox / "bin" / "dpkg-query", sandbox / "bin" / "python3"):
        p.chmod(0o755)
    (sandbox / "pyproject.toml").chmod(0o644)
    return sandbox


def pip_installs(d: Path) -> list[str]:
    return [
        c for c in (d / "python.log").read_text().splitlines() if c.startswith("-m pip install")
    ]


def test_the_venv_gets_the_test_tools_and_the_libvirt_extra(installed_system):
    proc = run_as_user(installed_system)
    assert proc.returncode == 0, proc.stderr
    assert pip_installs(installed_system) == [
        "-m pip install -q --upgrade pip",
        "-m pip install -q -e .[test,libvirt]",
    ]
    assert "libvirt" not in proc.stderr


def test_without_the_libvirt_extra_the_set_up_still_finishes_and_says_why(installed_system):
    (installed_system / "libvirt-fails").touch()
    proc = run_as_user(installed_system)
    assert proc.returncode == 0, proc.stderr
    assert pip_installs(installed_system)[1:] == [
        "-m pip install -q -e .[test,libvirt]",
        "-m pip install -q -e .[test]",
    ]
    (line,) = [line for line in proc.stderr.splitlines() if "libvirt" in line]
    assert line == (
        "imagegui: .venv has no libvirt extra (its tests will be skipped): Package libvirt was "
        "not found in the pkg-config search path. (see .venv/install.log)"
    )
    # Installed once: the next run does not try again until pyproject.toml changes.
    again = run_as_user(installed_system)
    assert again.returncode == 0 and "libvirt" not in again.stderr
    assert len(pip_installs(installed_system)) == 3


def apt_packages() -> list[str]:
    """bootstrap.sh's apt_packages, as bash reads the array."""
    script = (ROOT / "scripts" / "bootstrap.sh").read_text()
    array = script[script.index("\napt_packages=(") : script.index("\n)\n") + 3]
    proc = subprocess.run(
        ["bash", "-c", array + 'printf "%s\\n" "${apt_packages[@]}"'],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return proc.stdout.split()


def test_the_set_up_installs_libvirt_and_what_its_extra_and_tests_need():
    packages = apt_packages()
    assert len(packages) == len(set(packages))
    # libvirtd, virtlogd and the QEMU driver the tests start; virsh; virt-install --print-xml
    for pkg in ("libvirt-daemon", "libvirt-daemon-driver-qemu", "libvirt-clients", "virtinst"):
        assert pkg in packages
    # what building libvirt-python needs, and the sshd behind the tests' qemu+ssh:// URI
    for pkg in ("libvirt-dev", "pkg-config", "gcc", "python3-dev", "openssh-server"):
        assert pkg in packages
    assert "qemu-utils" in packages and "libxcb-cursor0" in packages  # the rest is still there
