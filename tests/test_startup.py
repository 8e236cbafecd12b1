"""A start reads ahead, when they are not cached, the files the same kind of start loaded last
time (``imagegui.startup``), and remembers them only when its modules change.

The page cache is real here: a file is pushed out of it with ``posix_fadvise(DONTNEED)`` after
``fsync`` (clean pages of one file, nothing else of the machine's), and whether it is back is
read with ``RWF_NOWAIT``, as the module itself judges.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

from imagegui import startup


@pytest.fixture
def lists(tmp_path, monkeypatch):
    where = tmp_path / "startup"
    monkeypatch.setenv(startup.DIR_ENV, str(where))
    return where


def resident(path) -> int:
    """Bytes of ``path`` in the page cache, by ``fincore`` (mincore(2): looking does not read,
    unlike a probe, which starts the kernel's readahead)."""
    out = subprocess.run(
        ["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return int(out.split()[0])


def evicted(path) -> bool:
    """Pushes ``path`` out of the page cache (retried: pages still being written back stay);
    False when this filesystem keeps files in memory (tmpfs) or fincore is missing."""
    if shutil.which("fincore") is None:
        return False
    for _ in range(50):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
        if resident(path) == 0:
            return True
        time.sleep(0.02)
    return False


def write_list(lists, kind, entries, header=startup.HEADER):
    lists.mkdir(parents=True, exist_ok=True)
    lines = [header, *(f"m\t{origin}\t{cached}" for origin, cached in entries)]
    (lists / f"{kind}.list").write_text("\n".join(lines) + "\n", errors="surrogateescape")


def test_remember_lists_the_loaded_modules_and_then_leaves_the_list_alone(lists):
    import json.decoder  # noqa: F401  (a module surely loaded from a file)

    started = startup.warm("scan")
    assert started.modules is None and not started.prefetched  # no list yet
    assert startup.remember(started)
    text = (lists / "scan.list").read_text().splitlines()
    assert text[0] == startup.HEADER
    modules = {m for _, m, cached in (line.split("\t") for line in text[1:]) if cached}
    assert json.decoder.__file__ in modules and startup.__file__ in modules
    assert not startup.remember(started)  # once per start
    again = startup.warm("scan")
    assert again.modules == frozenset(modules)
    stamp = (lists / "scan.list").stat().st_mtime_ns
    assert not startup.remember(again)  # the same modules: not rewritten
    assert (lists / "scan.list").stat().st_mtime_ns == stamp


def test_a_cold_list_is_read_ahead(lists, tmp_path):
    """Several cold files, because a probe can be fooled: an ``RWF_NOWAIT`` read of a page that
    is not cached starts the kernel's readahead, and when the probing thread is preempted long
    enough for the disk to answer, the read finds the page there and succeeds (seen once in CI,
    with one file). Each of the files probed would have to be fooled in turn."""
    entries = []
    for n in range(8):
        source = tmp_path / f"mod{n}.py"
        source.write_text("x = 1\n")
        cached = tmp_path / f"mod{n}.cpython.pyc"
        cached.write_bytes(os.urandom(256 * 1024))
        entries.append((str(source), str(cached)))
    if not all(evicted(cached) for _, cached in entries):
        pytest.skip("cannot push a file out of the page cache here (tmpfs, or no fincore)")
    write_list(lists, "check", entries)
    started = startup.warm("check")
    assert started.prefetched
    deadline = time.monotonic() + 30
    for _, cached in entries:  # every file whole, the kernel reading in the background
        while resident(cached) < 256 * 1024:
            assert time.monotonic() < deadline, f"{cached} was never read ahead"
            time.sleep(0.01)


def test_a_warm_list_starts_nothing(lists, tmp_path):
    cached = tmp_path / "mod.cpython.pyc"
    cached.write_bytes(b"x" * 4096)
    os.read(fd := os.open(cached, os.O_RDONLY), 4096)
    os.close(fd)
    write_list(lists, "check", [(str(tmp_path / "mod.py"), str(cached))])
    started = startup.warm("check")
    assert started.modules == frozenset({str(tmp_path / "mod.py")})
    assert not started.prefetched


@pytest.mark.parametrize(
    "header", ["imagegui-startup 0 cpython-311 /elsewhere", "garbage", "\udcff"]
)
def test_a_list_of_another_interpreter_or_damaged_is_ignored(lists, tmp_path, header):
    missing = tmp_path / "gone.pyc"
    write_list(lists, "scan", [("/nonexistent/mod.py", str(missing))], header=header)
    started = startup.warm("scan")
    assert started.modules is None and not started.prefetched
    assert startup.remember(started)  # replaced by a good one
    assert startup.read_list("scan") is not None


def test_missing_files_in_a_list_are_harmless(lists):
    write_list(lists, "scan", [("/nonexistent/a.py", "/nonexistent/a.pyc")] * 3)
    started = startup.warm("scan")
    assert not started.prefetched  # nothing there to read: taken as cached
    startup._fetch(startup.Entry("/nonexistent/a.py", "/nonexistent/a.pyc"))  # no exception


def test_turned_off_by_an_empty_directory_variable(monkeypatch):
    monkeypatch.setenv(startup.DIR_ENV, "")
    assert startup.directory() is None
    started = startup.warm("scan")
    assert started.modules is None and not startup.remember(started)


def test_default_directory_is_the_users_cache(monkeypatch, tmp_path):
    monkeypatch.delenv(startup.DIR_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert startup.directory() == str(tmp_path / "imagegui" / "startup")
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/not/allowed")
    assert startup.directory() == os.path.expanduser("~/.cache/imagegui/startup")


def run(lists, *args) -> subprocess.CompletedProcess:
    env = dict(os.environ, **{startup.DIR_ENV: str(lists), "IMAGEGUI_LIBVIRT_URIS": ""})
    return subprocess.run(
        [sys.executable, "-m", "imagegui", *map(str, args)],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip


def test_a_command_remembers_its_modules_and_help_remembers_nothing(lists, make, tmp_path):
    make.create("images/base.qcow2", "qcow2", "1M")
    assert run(lists, "--help").returncode == 0
    assert run(lists, "scan", "--help").returncode == 0
    assert not lists.exists()
    proc = run(lists, "scan", "--json", tmp_path / "images")
    assert proc.returncode == 0, proc.stderr
    found = startup.read_list("scan")
    assert found is not None
    entries, modules = found
    assert any(m.endswith("/networkx/__init__.py") for m in modules)
    assert any(m.endswith("/imagegui/core/read/scan.py") for m in modules)
    assert not any("PySide6" in e.origin for e in entries)
    assert os.listdir(lists) == ["scan.list"]


def test_big_libraries_are_left_out(lists, tmp_path, monkeypatch):
    """A start touches only part of a big library: reading it whole cost a cold window more
    than it saved. Extension modules (no bytecode) are judged by size like mapped files."""
    import importlib.machinery
    import types

    big, small = tmp_path / "big.so", tmp_path / "small.so"
    with open(big, "wb") as f:
        f.truncate(startup.MAX_LIBRARY + 1)
    small.write_bytes(b"\0" * 1024)
    for name, path in (("_fake_big_ext", big), ("_fake_small_ext", small)):
        module = types.ModuleType(name)
        module.__spec__ = importlib.machinery.ModuleSpec(name, None, origin=str(path))
        module.__spec__.has_location = True
        monkeypatch.setitem(sys.modules, name, module)
    assert startup.remember(startup.Started("window", None))
    entries, modules = startup.read_list("window")
    listed = {e.origin for e in entries}
    assert str(small) in listed and str(big) not in listed
    assert all(os.path.getsize(e.origin) <= startup.MAX_LIBRARY for e in entries if not e.cached)
