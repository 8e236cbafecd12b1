"""Headers read on the reading threads (``reads="parallel"``) give exactly the scan that reading
them one by one gives (``"serial"``): the same images in the same order, the same aliases, the
same errors in the same order, the same raw bases adopted. ``"auto"`` moves to the threads only
once the walk waits on storage. Real files made with qemu-img throughout; batches are made tiny
so a handful of files crosses many of them."""

from __future__ import annotations

import itertools
import os
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from scantrees import RANDOM_FILES, make_hostile_tree, make_random_tree

import imagegui.core.read.fileread as fileread
import imagegui.core.read.scan as scan
from imagegui.core.read.scan import ScanResult, parallel_reads_pay, scan_directory


@pytest.fixture(autouse=True)
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two files a batch, three batches ahead: every fixture crosses batch boundaries, and the
    walk waits for the oldest batch as it does on a big tree."""
    monkeypatch.setattr(scan, "READ_BATCH", 2)
    monkeypatch.setattr(scan, "READ_AHEAD", 3)


def everything(result: ScanResult) -> tuple:
    """All a scan found, orders included (dict order is what the graph and the JSON follow)."""
    return (
        list(result.images.items()),
        list(result.aliases.items()),
        list(result.external.items()),
        result.errors,
        result.files_seen,
    )


def both(root: Path) -> ScanResult:
    """Scan ``root`` serially and in parallel, assert the two are the same (and that the
    parallel scan read its files on the reading threads), return one."""
    serial = scan_directory(str(root), reads="serial")
    where: list[str] = []
    real_read = scan.read_file

    def read_file(*args):
        where.append(threading.current_thread().name)
        return real_read(*args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scan, "read_file", read_file)
        parallel = scan_directory(str(root), reads="parallel")
    assert everything(parallel) == everything(serial)
    # Only the raw bases adopted after the walk are read by the walk's own thread.
    walked = parallel.files_seen - where.count("MainThread")
    assert all(name.startswith("imagegui-read") for name in where[:walked])
    return parallel


def reading_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("imagegui-read")]


@pytest.mark.parametrize("batch", [2, 1000])
def test_hostile_tree_is_the_same_either_way(make, tmp_path, monkeypatch, batch):
    """With batches of 1,000 every file is still being read when the walk ends: whatever the
    walk found itself must still come after the files listed before it."""
    monkeypatch.setattr(scan, "READ_BATCH", batch)
    root = tmp_path / "in"
    good, weird = make_hostile_tree(make, root)
    secret = make.create("in/c/secret.qcow2")
    real_open = os.open

    def fake_open(path, *args, **kw):  # root reads everything: refuse one file
        if os.fspath(path) == str(secret):
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, *args, **kw)

    monkeypatch.setattr(os, "open", fake_open)
    result = both(root)
    errors = {os.path.basename(e.path): e for e in result.errors}
    assert "FIFO" in errors["pipe.img"].message
    assert "loop" in errors["loop-a.qcow2"].message
    assert "broken symbolic link" in errors["dangling.qcow2"].message
    assert "already scanned" in errors["up"].message
    assert "truncated" in errors["trunc.qcow2"].message
    assert "permission denied" in errors["secret.qcow2"].message
    assert "not valid UTF-8" in errors[os.path.basename(weird)].message
    assert errors[".flat.qcow2.0123abcd.partial"].leftover
    assert errors[".moved.0123abcd.partial"].leftover
    assert weird in result.images
    good_path = str(good)
    assert result.aliases == {
        str(root / "a" / "a-link.qcow2"): good_path,
        str(root / "a" / "hard.qcow2"): good_path,
    }
    assert result.images[str(root / "b" / "named-base")].format == "raw"
    assert list(result.external) == [str(tmp_path / "outside-base.qcow2")]
    assert str(root / "c" / "split.vmdk") in result.images
    assert str(root / "c" / "split-s001.vmdk") not in result.images


def test_files_that_vanish_or_change_while_listed_are_the_same_either_way(
    make, tmp_path, monkeypatch
):
    """A file deleted between the listing and its read, and one that grows while it is read."""
    for i in range(6):
        make.create(f"f{i}.qcow2")
    grows = tmp_path / "f1.qcow2"
    vanishes = tmp_path / "f4.qcow2"
    real_scandir, real_probe = os.scandir, fileread.probe_fd
    data = vanishes.read_bytes()

    def listing_then_delete(path):
        if path != str(tmp_path):  # not the scan's (a fixture cleaning up, say)
            return real_scandir(path)
        entries = Listing(real_scandir(path))
        vanishes.unlink(missing_ok=True)
        return entries

    def probe_while_growing(fd, path, st, *args):
        info = real_probe(fd, path, st, *args)
        if path == str(grows):
            with open(grows, "ab") as f:
                f.write(b"\0" * 512)
        return info

    monkeypatch.setattr(os, "scandir", listing_then_delete)
    monkeypatch.setattr(fileread, "probe_fd", probe_while_growing)
    serial = scan_directory(str(tmp_path), reads="serial")
    vanishes.write_bytes(data)
    parallel = scan_directory(str(tmp_path), reads="parallel")
    assert everything(parallel) == everything(serial)
    assert [(os.path.basename(e.path), e.message.split(";")[0]) for e in serial.errors] == [
        ("f1.qcow2", "changed while it was being read"),
        ("f4.qcow2", "vanished during the scan"),
    ]


def test_backing_files_after_the_walk_read_ahead_on_threads_are_the_same(
    make, tmp_path, monkeypatch
):
    """The backing files looked at after the walk (outside the root, two levels of them, broken
    ones, a raw base the walk set aside, a leftover's name) read ahead on the reading threads
    give exactly what reading each in turn gives; a level with too few stays on the walk's
    thread, and a second look at a file that failed reads it again, as serially."""
    monkeypatch.setattr(scan, "BACKING_AHEAD_MIN", 2)
    shared, root = tmp_path / "shared", tmp_path / "in"
    make.create("shared/deep.qcow2")
    make.overlay("shared/mid.qcow2", "deep.qcow2")  # the second level: one file, serial
    for i in range(4):
        make.create(f"shared/b{i}.qcow2")
        make.overlay(f"in/o{i}.qcow2", str(shared / f"b{i}.qcow2"))
    (shared / "junk.qcow2").write_bytes(b"QFI\xfb" + bytes(8))
    os.mkfifo(shared / "pipe.qcow2")
    (shared / "rawbase").write_bytes(b"\0" * 8192)
    make.overlay("in/m1.qcow2", str(shared / "mid.qcow2"))
    make.overlay("in/m2.qcow2", "../shared/mid.qcow2")  # the same file, named again
    make.overlay("in/j1.qcow2", str(shared / "junk.qcow2"))
    make.overlay("in/j2.qcow2", str(shared / "junk.qcow2"))
    make.overlay("in/p.qcow2", str(shared / "pipe.qcow2"))
    make.overlay("in/gone.qcow2", str(shared / "gone.qcow2"))
    make.overlay("in/r.qcow2", str(shared / "rawbase"), "raw")
    (root / "setaside").write_bytes(b"\0" * 8192)
    make.overlay("in/s.qcow2", "setaside", "raw")
    make.create("in/.flat.qcow2.0123abcd.partial")
    make.overlay("in/l.qcow2", ".flat.qcow2.0123abcd.partial")
    os.symlink(shared / "b0.qcow2", tmp_path / "link-b0.qcow2")
    make.overlay("in/k.qcow2", str(tmp_path / "link-b0.qcow2"))  # b0 by another name
    serial = scan_directory(str(root), reads="serial")
    where: list[tuple[str, str]] = []
    real_probe, real_read = scan._probe_outcome, scan.read_file

    def probe(path):
        where.append((os.path.basename(path), threading.current_thread().name))
        return real_probe(path)

    def read_file(path, *args):
        where.append((os.path.basename(path), threading.current_thread().name))
        return real_read(path, *args)

    monkeypatch.setattr(scan, "_probe_outcome", probe)
    monkeypatch.setattr(scan, "read_file", read_file)
    parallel = scan_directory(str(root), reads="parallel")
    assert everything(parallel) == everything(serial)
    assert sorted(os.path.basename(p) for p in serial.external) == [
        "b1.qcow2", "b2.qcow2", "b3.qcow2", "deep.qcow2", "link-b0.qcow2", "mid.qcow2", "rawbase"
    ]  # fmt: skip
    assert serial.images[str(root / "setaside")].format == "raw"
    assert str(root / ".flat.qcow2.0123abcd.partial") in serial.images
    messages = [(os.path.basename(e.path), e.message) for e in serial.errors]
    # Read twice (once per overlay): a failed probe is not remembered, serially either. A FIFO
    # and a missing file are never opened (the graph shows them as missing).
    assert [name for name, _ in messages] == ["junk.qcow2", "junk.qcow2"]
    on_threads = sorted(name for name, thread in where if thread.startswith("imagegui-read"))
    on_walk = sorted(name for name, thread in where if thread == "MainThread")
    # The walk reads every file it lists (setaside and the leftover among them); after it, the
    # first level is read ahead (b0 too, though k's name for it wins), the second is not, and
    # the second look at junk reads it again.
    assert on_walk == ["deep.qcow2", "junk.qcow2"]
    assert [n for n in on_threads if n in _AFTER_WALK] == [
        ".flat.qcow2.0123abcd.partial", ".flat.qcow2.0123abcd.partial", "b0.qcow2", "b1.qcow2",
        "b2.qcow2", "b3.qcow2", "junk.qcow2", "link-b0.qcow2", "mid.qcow2", "rawbase",
        "setaside", "setaside",
    ]  # fmt: skip


_AFTER_WALK = {
    "b0.qcow2", "b1.qcow2", "b2.qcow2", "b3.qcow2", "link-b0.qcow2", "mid.qcow2", "deep.qcow2",
    "junk.qcow2", "pipe.qcow2", "rawbase", "setaside", ".flat.qcow2.0123abcd.partial",
}  # fmt: skip


class Listing(list):
    """A directory's entries, read before the fake ``os.scandir`` returns them."""

    def __enter__(self) -> Listing:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


@pytest.mark.parametrize("reads", ["serial", "parallel"])
def test_progress_counts_the_same(tmp_path, reads):
    for i in range(600):
        (tmp_path / f"f{i:03d}.txt").write_bytes(b"x")
    seen: list[int] = []
    result = scan_directory(str(tmp_path), seen.append, reads)
    assert seen == [256, 512] and result.files_seen == 600


class Cancelled(Exception):
    pass


def test_cancel_from_progress_stops_the_reading_threads_and_closes_every_file(tmp_path):
    for i in range(600):
        (tmp_path / f"f{i:03d}.txt").write_bytes(b"x")
    fds = len(os.listdir("/proc/self/fd"))

    def cancel(count: int) -> None:
        raise Cancelled(count)

    with pytest.raises(Cancelled, match="256"):
        scan_directory(str(tmp_path), cancel, reads="parallel")
    assert reading_threads() == []
    assert len(os.listdir("/proc/self/fd")) == fds


def test_parallel_reads_pay_only_when_the_walk_is_blocked():
    """The choice, from the walk thread's clocks over its last files: wall, on a CPU, queued
    for a CPU (figures like those measured with a warm and a dropped page cache)."""
    pay = parallel_reads_pay
    assert not pay(0.100, 0.098, 0.000)  # warm cache: running all the time
    assert not pay(0.100, 0.110, 0.000)  # the CPU clock lags: more than the wall time
    assert not pay(0.300, 0.050, 0.250)  # warm, busy machine: running or queued
    assert not pay(0.100, 0.085, 0.000)  # blocked 15 %: page faults, a slow directory
    assert pay(0.100, 0.060, 0.000)  # blocked 40 %: cold cache on a quiet machine
    assert pay(0.300, 0.030, 0.230)  # cold on a busy machine: mostly queued, 57 % of the rest
    assert pay(1.600, 0.300, 0.000)  # network storage: blocked most of the time
    assert not pay(0.008, 0.002, 0.000)  # too short to tell (the clock lags by a tick)


@pytest.mark.parametrize(("blocked", "threaded"), [(False, 0), (True, 600 - 256)])
def test_auto_reads_in_parallel_once_the_walk_is_seen_waiting(
    tmp_path, monkeypatch, blocked, threaded
):
    """The walk's clocks are the one faked thing: its thread blocked (neither running nor
    queued for a CPU) or running all the time. It looks every 256 files."""
    for i in range(600):
        (tmp_path / f"f{i:03d}.txt").write_bytes(b"x")
    ticks = itertools.count(1.0)

    def clocks() -> tuple[float, float, float]:
        wall = next(ticks)
        return wall, 0.0 if blocked else wall, 0.0

    monkeypatch.setattr(scan, "_thread_clocks", clocks)
    prefetched: list[bool] = []
    monkeypatch.setattr(scan, "prefetch_networkx", lambda: prefetched.append(True))
    where: list[str] = []
    real_read = scan._Walker._read_file

    def read(self, path, is_symlink, raw_ok=None):
        where.append(threading.current_thread().name)
        return real_read(self, path, is_symlink, raw_ok)

    monkeypatch.setattr(scan._Walker, "_read_file", read)
    result = scan_directory(str(tmp_path))
    assert result.files_seen == len(where) == 600
    assert where[:256] == ["MainThread"] * 256
    assert sum(name.startswith("imagegui-read") for name in where) == threaded
    assert prefetched == ([True] if blocked else [])  # networkx imported in the same waits


@pytest.mark.parametrize(
    ("blocked", "switched_at"),
    [
        ({4}, None),  # a blip of 256 files half blocked, after warm ones: stays serial
        ({4, 5, 6}, 1536),  # the rest not cached: threads once the window (512-1536) sees it
        ({0}, 256),  # blocked from the start
    ],
)
def test_auto_judges_windows_of_many_files(tmp_path, monkeypatch, blocked, switched_at):
    """Windows of 512 files here (READS_WINDOW): the choice never rests on the last 256 alone.
    The walk's clocks are faked from the files it has seen: each 256 files take 1 s, all of it
    running, or half of it blocked in the stretches listed in ``blocked``."""
    for i in range(1800):
        (tmp_path / f"f{i:04d}.txt").write_bytes(b"x")
    monkeypatch.setattr(scan, "READS_WINDOW", 512)
    monkeypatch.setattr(scan, "prefetch_networkx", lambda: None)
    seen = [0]
    real_count, real_start = scan._Walker._count, scan._Walker._start_pool
    started: list[int] = []

    def count(self):
        seen[0] = self.result.files_seen + 1
        real_count(self)

    def start_pool(self):
        started.append(self.result.files_seen)
        real_start(self)

    def clocks() -> tuple[float, float, float]:
        stretches = range(seen[0] // 256)
        return len(stretches), sum(0.5 if k in blocked else 1.0 for k in stretches), 0.0

    monkeypatch.setattr(scan._Walker, "_count", count)
    monkeypatch.setattr(scan._Walker, "_start_pool", start_pool)
    monkeypatch.setattr(scan, "_thread_clocks", clocks)
    assert scan_directory(str(tmp_path)).files_seen == 1800
    assert started == ([switched_at] if switched_at else [])


def test_only_the_walk_moves_reads_to_threads(tmp_path, monkeypatch):
    """A walker driven by other code (an incremental rescan's own walk calling ``_file``) stays
    serial however blocked it looks: nothing would take reads or findings back from threads."""
    for i in range(600):
        (tmp_path / f"f{i:03d}.txt").write_bytes(b"x")
    ticks = itertools.count(1.0)
    monkeypatch.setattr(scan, "_thread_clocks", lambda: (next(ticks), 0.0, 0.0))
    monkeypatch.setattr(scan, "prefetch_networkx", lambda: None)
    walker = scan._Walker(str(tmp_path), None)
    for path in sorted(tmp_path.iterdir()):
        walker._file(str(path), False)
    walker.error(str(tmp_path / "x"), "found by the walk", False)
    assert walker.pool is None and walker.result.files_seen == 600
    assert [e.message for e in walker.result.errors] == ["found by the walk"]


@settings(max_examples=30, deadline=None)
@given(files=RANDOM_FILES)
def test_random_trees_are_the_same_either_way(tmp_path_factory, files):
    root = tmp_path_factory.mktemp("tree")
    make_random_tree(root, files)
    both(root)
