"""A big walk shares its reads with a second process (``core.read.reader_process``): the scan is
exactly the one a single process makes, on hostile trees and random ones, when the process dies
midway, and after a cancel no process is left running."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from scantrees import (
    RANDOM_FILES,
    assert_same,
    make_hostile_tree,
    make_random_tree,
    overlay_bytes,
    qcow2_template,
)

from imagegui.core.read import reader_process, scan
from imagegui.core.read.reader_process import (
    ReaderProcess,
    SentFlags,
    SharedReads,
    decode,
    encode,
)
from imagegui.core.read.rescan import ScanState, _Rescan
from imagegui.core.read.scan import ScanResult, read_file, scan_directory


@pytest.fixture(autouse=True)
def shared_at_once(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The process starts at the first directory with four files to read, is waited for, and
    takes chunks of two: every fixture is read by both processes. Returns, as the walks go,
    how many files the process answered for."""
    monkeypatch.setattr(reader_process, "START_AFTER", 0)
    monkeypatch.setattr(reader_process, "CHUNK", 2)
    monkeypatch.setattr(reader_process, "MIN_CHUNK", 1)
    monkeypatch.setattr(reader_process, "POLL", 1)
    real_init = ReaderProcess.__init__

    def init(self):  # ready before the walk goes on: a small tree is read sooner than it starts
        real_init(self)
        assert self.receive() == ([], [])
        self.ready = True

    monkeypatch.setattr(ReaderProcess, "__init__", init)
    answered = [0]
    real_take = SharedReads.take

    def take(self, path):
        got = real_take(self, path)
        answered[0] += got is not None
        return got

    monkeypatch.setattr(SharedReads, "take", take)
    return answered


def one_process(root: Path) -> ScanResult:
    """The scan as one process makes it: the reference every shared scan must equal."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(reader_process, "START_AFTER", 10**12)
        return scan_directory(str(root), reads="serial")


def _fill(directory: Path, count: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    base = qcow2_template(None)
    for i in range(count):
        data = base if i % 3 == 0 else overlay_bytes(f"f{i - 1:03}.qcow2")
        (directory / f"f{i:03}.qcow2").write_bytes(data)


def test_a_plain_read_comes_back_as_the_same_record(tmp_path):
    _fill(tmp_path, 2)
    path = str(tmp_path / "f001.qcow2")
    read = read_file(path, False)
    sent = SentFlags()
    new: list[dict] = []
    got = encode(read, sent, new)
    assert got is not None and new == [read.info.flags]
    assert decode(path, got, new) == read.info
    again: list[dict] = []
    assert encode(read_file(str(tmp_path / "f000.qcow2"), False), sent, again) is not None
    # Anything but the plain case is read by the walk itself: a bad header, flags marshal
    # cannot send.
    (tmp_path / "junk.qcow2").write_bytes(b"QFI\xfb")
    assert encode(read_file(str(tmp_path / "junk.qcow2"), False), sent, []) is None
    read.info.flags = {"odd": object()}
    assert encode(read, sent, []) is None


def test_hostile_tree_reads_the_same_with_the_second_process(make, tmp_path, shared_at_once):
    root = tmp_path / "in"
    _fill(root / "many", 40)
    _good, weird = make_hostile_tree(make, root)
    make.create("in/c/plain.vmdk", "vmdk")
    make.create("in/c/old.qcow", "qcow")
    make.create("in/c/disk.vhdx", "vhdx")
    state = ScanState.from_full(str(root))
    assert shared_at_once[0] > 0  # chunks handed out are always answered by the process
    alone = one_process(root)
    assert_same(state.result, alone)
    shared_at_once[0] = 0
    assert_same(scan_directory(str(root), reads="serial"), alone)  # the command line's walk
    assert shared_at_once[0] > 0
    assert weird in state.result.images
    # A rescan after a change reads only what changed, and still agrees.
    _fill(root / "more", 12)
    assert_same(state.rescan(), one_process(root))


def test_a_process_that_dies_midway_leaves_its_files_to_the_walk(tmp_path, monkeypatch, caplog):
    _fill(tmp_path / "d1", 60)
    _fill(tmp_path / "d2", 60)  # handed out after the death, whatever d1 left unanswered
    real_receive = ReaderProcess.receive
    killed: list[ReaderProcess] = []

    def receive(self):
        got = real_receive(self)
        if self.ready and not killed:  # after its first answer
            killed.append(self)
            self.proc.kill()
            self.proc.wait()
        return got

    monkeypatch.setattr(ReaderProcess, "receive", receive)
    state = ScanState.from_full(str(tmp_path))
    assert killed
    assert "the reader process failed" in caplog.text
    assert_same(state.result, one_process(tmp_path))


@pytest.mark.parametrize("walker", ["rescan", "full scan"])
def test_a_cancelled_walk_leaves_no_process(tmp_path, monkeypatch, walker):
    _fill(tmp_path / "d", 60)
    started: list[ReaderProcess] = []
    real_init = ReaderProcess.__init__

    def init(self):
        real_init(self)
        started.append(self)

    monkeypatch.setattr(ReaderProcess, "__init__", init)

    class Cancelled(Exception):
        pass

    kind = _Rescan if walker == "rescan" else scan._Walker
    real_count = kind._count

    def count(self):  # as a cancel does: progress() raises midway through the walk
        real_count(self)
        if self.result.files_seen == 30:
            raise Cancelled

    monkeypatch.setattr(kind, "_count", count)
    with pytest.raises(Cancelled):
        if walker == "rescan":
            ScanState(str(tmp_path)).rescan()
        else:
            scan_directory(str(tmp_path), reads="serial")
    assert started
    assert all(p.proc.returncode is not None for p in started)


def test_waiting_for_the_process_is_not_waiting_for_the_disk(tmp_path, monkeypatch):
    """The walk moves its reads to threads when it sees itself blocked (on storage); time spent
    waiting for the reader process's answers is left out of what it sees."""
    monkeypatch.setattr(scan, "_thread_clocks", lambda: (10.0, 2.0, 1.0))
    walker = scan._Walker(str(tmp_path), None)
    walker.shared.waited = 3.0
    assert walker._clocks() == (7.0, 2.0, 1.0)


def test_a_process_that_cannot_start_leaves_every_file_to_the_walk(tmp_path, monkeypatch):
    _fill(tmp_path / "d", 30)

    def fail(self):
        raise OSError(2, "No such file or directory", "python")

    monkeypatch.setattr(ReaderProcess, "__init__", fail)
    state = ScanState.from_full(str(tmp_path))
    assert_same(state.result, one_process(tmp_path))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(files=RANDOM_FILES)
def test_random_trees_read_the_same_with_the_second_process(tmp_path_factory, files):
    root = tmp_path_factory.mktemp("tree")
    make_random_tree(root, files)
    alone = one_process(root)
    assert_same(ScanState.from_full(str(root)).result, alone)
    assert_same(scan_directory(str(root)), alone)


def test_ctrl_c_in_the_terminal_leaves_the_process_to_the_walk(tmp_path):
    """SIGINT reaches the whole process group: the reader process ignores it (the walk ends it)
    and still answers, without a traceback of its own."""
    _fill(tmp_path, 2)
    proc = ReaderProcess()  # ready: the fixture took its first answer
    try:
        assert proc.ready
        os.kill(proc.proc.pid, signal.SIGINT)
        proc.send([str(tmp_path / "f000.qcow2")])
        new, answer = proc.receive()
        assert len(answer) == 1 and answer[0] is not None
    finally:
        proc.close()
    assert proc.proc.returncode == -signal.SIGKILL or proc.proc.returncode == 0
