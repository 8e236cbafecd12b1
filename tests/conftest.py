"""Fixtures that make real images with the real qemu-img in a temporary directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import settings

# The test run is deterministic: the same examples every run, so CI never fails on a new random
# draw. To explore with fresh random examples: IMAGEGUI_HYPOTHESIS=explore pytest ...
settings.register_profile("deterministic", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", print_blob=True)
settings.load_profile(os.environ.get("IMAGEGUI_HYPOTHESIS", "deterministic"))

# libvirt_uri, libvirt_conn, define_domain, define_pool, ssh_libvirt_uri: a real libvirtd and sshd.
pytest_plugins = ["libvirt_fixtures"]

QEMU_IMG = shutil.which("qemu-img")


@contextmanager
def _session_env(name: str, value: str) -> Iterator[None]:
    """``name`` set to ``value`` for the whole test run (and every imagegui it starts), then
    put back: monkeypatch is per test, these hold for session fixtures and hypothesis too."""
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


@pytest.fixture(scope="session", autouse=True)
def _isolated_log(tmp_path_factory: pytest.TempPathFactory):
    """The log of this test run (and of every imagegui it starts) goes to a file of its own,
    never to the user's ``$XDG_STATE_HOME/imagegui/imagegui.log``; ``log_file`` gives a test
    a fresh one."""
    path = tmp_path_factory.mktemp("log") / "imagegui.log"
    with _session_env("IMAGEGUI_LOG", str(path)):
        yield path


@pytest.fixture
def log_file(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, not yet existing log file for this test (``IMAGEGUI_LOG``)."""
    path = tmp_path_factory.mktemp("log") / "imagegui.log"
    monkeypatch.setenv("IMAGEGUI_LOG", str(path))
    return path


@pytest.fixture(scope="session", autouse=True)
def _isolated_check_store(tmp_path_factory: pytest.TempPathFactory):
    """Check results never go to the user's real store (session-wide, so hypothesis tests are
    covered too; ``check_store`` gives a test a fresh one of its own)."""
    path = tmp_path_factory.mktemp("state") / "checks.json"
    with _session_env("IMAGEGUI_CHECKS", str(path)):
        yield path


@pytest.fixture(scope="session", autouse=True)
def _isolated_journal(tmp_path_factory: pytest.TempPathFactory):
    """Operations journal what they do (new, convert, resize and snapshot too, for their
    undo): never into the user's journal. Tests of the journal set a fresh one of their own."""
    path = tmp_path_factory.mktemp("journal") / "journal.jsonl"
    with _session_env("IMAGEGUI_JOURNAL", str(path)):
        yield path


@pytest.fixture
def check_store(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty check-results store for this test (``IMAGEGUI_CHECKS``)."""
    path = tmp_path_factory.mktemp("checks") / "checks.json"
    monkeypatch.setenv("IMAGEGUI_CHECKS", str(path))
    return path


@pytest.fixture(scope="session", autouse=True)
def _no_startup_lists():
    """No test (nor any imagegui it starts) writes the lists of files a start loaded into the
    user's cache (``imagegui.startup``): off for the run; tests of it set a directory."""
    with _session_env("IMAGEGUI_STARTUP_DIR", ""):
        yield


@pytest.fixture(scope="session", autouse=True)
def _isolated_trash(tmp_path_factory: pytest.TempPathFactory):
    """No test (nor any imagegui it starts) moves a file into the user's Trash: the home Trash
    is ``$XDG_DATA_HOME/Trash``, pointed at a directory of this run; ``trash_home`` gives a
    test a fresh, empty one."""
    path = tmp_path_factory.mktemp("data")
    with _session_env("XDG_DATA_HOME", str(path)):
        yield path


@pytest.fixture
def trash_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh ``$XDG_DATA_HOME`` for this test; its home Trash is ``trash_home / "Trash"``."""
    path = tmp_path_factory.mktemp("data")
    monkeypatch.setenv("XDG_DATA_HOME", str(path))
    return path


def _require_qemu() -> str:
    if QEMU_IMG is None:
        pytest.fail("qemu-img is not installed: run the README's set-up command (qemu-utils)")
    return QEMU_IMG


def qemu_img(*args: str | os.PathLike, check: bool = True) -> subprocess.CompletedProcess:
    """Run the real qemu-img with an argv list; fail the test with its message on error."""
    argv = [_require_qemu(), *map(str, args)]
    for _ in range(5):
        proc = subprocess.run(argv, capture_output=True, text=True)
        # LUKS key setup times itself with getrusage and gives up on a busy machine: transient.
        if "Unable to get accurate CPU usage" not in proc.stderr:
            break
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def qemu_info(path: str | os.PathLike, fmt: str | None = None) -> dict:
    """What qemu itself says about one file: the oracle every probed field is compared with."""
    args = ["info", "-U", "--output=json"]
    if fmt:
        args += ["-f", fmt]
    return json.loads(qemu_img(*args, path).stdout)


class ImageMaker:
    """Makes real images in one directory: ``make.qcow2("base")``, ``make.overlay(...)``."""

    def __init__(self, root: Path):
        self.root = root

    def create(self, name: str, fmt: str = "qcow2", size: str = "64M", *opts: str) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        args = ["create", "-q", "-f", fmt]
        for o in opts:
            args += ["-o", o]
        qemu_img(*args, path, size)
        return path

    def overlay(
        self, name: str, backing: str, backing_fmt: str | None = "qcow2", fmt: str = "qcow2"
    ) -> Path:
        """An overlay whose backing name is stored exactly as ``backing`` (``-u``: not opened)."""
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        args = ["create", "-q", "-f", fmt, "-b", backing]
        if backing_fmt:
            args += ["-F", backing_fmt]
        args += ["-u", path, "64M"]
        qemu_img(*args)
        return path


@pytest.fixture(scope="session", autouse=True)
def _no_default_libvirt():
    """No test asks the machine's libvirtd unless it names a connection (``--connect``, a
    ``DomainSource`` with URIs): the domains other test sessions define there come and go, and
    a quiet default connection in every scan would see them."""
    with _session_env("IMAGEGUI_LIBVIRT_URIS", ""):
        yield


@pytest.fixture
def make(tmp_path: Path) -> ImageMaker:
    return ImageMaker(tmp_path)


@pytest.fixture(autouse=True, scope="session")
def private_runtime_dir() -> Iterator[str]:
    """VM sockets of this test run go to a directory of its own: tests never see (or list in the
    window) VMs of another run. Short, since a socket path has at most 107 bytes."""
    import tempfile

    path = tempfile.mkdtemp(prefix="ig-rt-")
    with _session_env("XDG_RUNTIME_DIR", path):
        yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def other_fs(tmp_path: Path) -> Iterator[Path]:
    """A folder on another file system: a tmpfs mounted for the test (root), else /dev/shm when
    it is one; skipped, saying why, when neither is possible."""
    mnt = tmp_path / "otherfs"
    mnt.mkdir()
    mounted = False
    if os.geteuid() == 0 and shutil.which("mount"):
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", str(mnt)],
            capture_output=True,
            text=True,
        )
        mounted = proc.returncode == 0
    if mounted:
        try:
            yield mnt
        finally:
            subprocess.run(["umount", "-l", str(mnt)], check=False)
        return
    shm = Path("/dev/shm")
    if shm.is_dir() and os.stat(shm).st_dev != os.stat(tmp_path).st_dev and os.access(shm, os.W_OK):
        import tempfile

        path = Path(tempfile.mkdtemp(prefix="imagegui-move-", dir=shm))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)
        return
    pytest.skip("no second file system: cannot mount a tmpfs (not root) and /dev/shm is absent")
