"""A second process that reads image headers beside a big walk, so a scan uses two cores.

A warm scan is Python work (each header's checks, the record), and one process runs Python on
one core at a time: reading threads only take turns (``scan.READ_THREADS`` pay on a cold or
remote disk, where the walk waits). At 100,000 images the window's first scan spent ~3 s that
way while the machine's second core idled. So a walk that has many files to read hands a
directory's files from its far end to a reader process, a chunk at a time, while it reads from
the near end itself; both meet in the middle (:class:`SharedReads`).

What comes back is only ever the plain case (an image read without error, not through a
symlink, no extent files), as a tuple of primitives (``marshal``: pickling ``FileRead`` objects
cost as much as reading the files). Anything else (an error, a file without magic, a child
that died or never started) is read again by the walk itself, exactly as it would have been: a
scan's result never depends on which process read a file.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import marshal
import os
import select
import signal
import struct
import subprocess
import sys
import time
from collections import deque

from imagegui.core.read.fileid import make_id
from imagegui.core.read.fileread import FileRead, read_file
from imagegui.core.read.formats.base import shared_flags, shared_name, shared_size
from imagegui.core.read.model import ImageInfo

log = logging.getLogger(__name__)

#: Files handed to the reader process at once.
CHUNK = 64
#: The smallest chunk handed over: smaller ones cost more in hand-overs than they save.
MIN_CHUNK = 8
#: Chunks handed over and not yet answered: the process always has the next one waiting.
OUTSTANDING = 4
#: The walk looks for answers (and hands out more) every this many files it reads itself.
POLL = 16
#: Files a walk has to read before it starts the process: a small folder is read sooner than
#: a process starts (~60 ms of CPU: an interpreter and the header modules), and the window
#: scans small folders all the time. At 10,000 images `scan --json` took 0.44-0.64 s with it
#: against 0.51-0.63 s without (load average 1); at 100,000 the window's scan 1.76-2.34 s
#: against 2.04-2.51 s when it started at 16,384 files and 2.36-3.19 s without.
START_AFTER = 2048

_LENGTH = struct.Struct("=I")

#: One image's read, as the process sends it (:func:`encode`): format, virtual size, actual
#: size, backing file, backing format, backing path, backing is a protocol, in use, in use
#: by a writer, flags (index into the flags sent so far), mtime, then the ``fstat`` fields a
#: rescan keeps: device, inode, size, blocks, mtime_ns, ctime_ns, links.
Encoded = tuple


class SentFlags:
    """The flags dicts the process has sent, by identity (each dict kept alive so that its id
    stays its own), and those it cannot send."""

    def __init__(self) -> None:
        self.index: dict[int, int] = {}
        self.kept: list[dict] = []
        self.count = 0

    def of(self, flags: dict, new: list[dict]) -> int:
        """``flags``' index in what the parent receives (appended to ``new`` the first time),
        or -1 for a dict marshal cannot send (a value of a class of its own)."""
        index = self.index.get(id(flags))
        if index is None:
            try:
                marshal.dumps(flags)
            except ValueError:
                index = -1
            else:
                index, self.count = self.count, self.count + 1
                new.append(flags)
            self.index[id(flags)] = index
            self.kept.append(flags)
        return index


def encode(read: FileRead, sent: SentFlags, new: list[dict]) -> Encoded | None:
    """``read`` as a tuple of primitives, or None when it is not the plain case (the walk
    reads that file itself). A flags dict is sent once (appended to ``new``), then by index."""
    info, st = read.info, read.st
    if (
        info is None
        or st is None
        or read.error is not None
        or info.extents
        or info.also_opens_as
        or info.is_symlink
    ):
        return None
    index = sent.of(info.flags, new)
    if index < 0:
        return None
    return (
        info.format,
        info.virtual_size,
        info.actual_size,
        info.backing_file,
        info.backing_format,
        info.backing_path,
        info.backing_protocol,
        info.in_use,
        info.in_use_write,
        index,
        info.mtime,
        st.st_dev,
        st.st_ino,
        st.st_size,
        st.st_blocks,
        st.st_mtime_ns,
        st.st_ctime_ns,
        st.st_nlink,
    )


def decode(path: str, got: Encoded, flags: list[dict]) -> ImageInfo:
    """The record :func:`fileread.read_file` would have made of ``path`` (the walk's own
    string)."""
    (fmt, size, actual, name, bfmt, bpath, protocol, in_use, writer, index, mtime) = got[:11]
    dev, ino, st_size, _blocks, mtime_ns = got[11:16]
    return ImageInfo(
        path,
        shared_name(fmt),
        shared_size(size),
        actual,
        name,
        bfmt if bfmt is None else shared_name(bfmt),
        bpath,
        protocol,
        in_use,
        writer,
        flags[index],
        (),
        (),
        mtime,
        make_id(dev, ino),
        False,
        (st_size, mtime_ns),
    )


def share_flags(flags: dict) -> dict:
    """The parent's shared dict equal to ``flags`` (made in the reader process), so the
    images the two processes read share one dict, as a single process's would."""
    try:
        return shared_flags(("from the reader process", *flags.items()), lambda *_: flags)
    except TypeError:  # an unhashable value: this image keeps its own copy
        return flags


class ReaderProcess:
    """The process, spoken to over two pipes: frames of ``marshal`` data, each after its
    length. It answers each list of paths with (new flags dicts, one :data:`Encoded` or None
    per path), in order; its first frame says it is ready."""

    def __init__(self) -> None:
        # The folder holding the ``imagegui`` package (imagegui/core/read/this file).
        top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
        code = (
            f"import sys; sys.path.insert(0, {top!r}); "
            "from imagegui.core.read.reader_process import main; main()"
        )
        # -I: none of the user's PYTHON* settings or site directory (a PYTHONSTARTUP that
        # prints would garble the pipe); the package comes from where this one was imported.
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._out = self.proc.stdin.fileno()
        self._in = self.proc.stdout.fileno()
        self.ready = False
        self._poll = select.poll()  # not select(): no limit on the descriptor's number
        self._poll.register(self._in, select.POLLIN)

    def answered(self) -> bool:
        """Whether a frame is waiting to be read (never blocks)."""
        return bool(self._poll.poll(0))

    def send(self, paths: list[str]) -> None:
        _write_frame(self._out, marshal.dumps(paths))

    def receive(self) -> tuple[list[dict], list[Encoded | None]]:
        """The next answer: the flags dicts new in it, and a read per path (blocks until it
        comes); raises EOFError when the process ended."""
        frame = _read_frame(self._in)
        if frame is None:
            raise EOFError("the reader process ended")
        return marshal.loads(frame)

    def close(self) -> None:
        """Ends the process at once (a cancelled walk leaves it mid-chunk: nothing to keep)."""
        proc = self.proc
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        if proc.poll() is None:
            proc.kill()
        proc.wait()


class SharedReads:
    """One walk's fresh reads, shared with a :class:`ReaderProcess` directory by directory.

    The walk calls :meth:`plan` with a directory's files that it will read (in walk order)
    before it takes them, and :meth:`take` as it reaches each: the process takes chunks from
    the far end, the walk reads from the near end (``take`` gives None: read it here) and
    waits only once it reaches a chunk handed over."""

    def __init__(self) -> None:
        self.proc: ReaderProcess | None = None
        self.planned = 0
        self.paths: list[str] = []
        #: The next file the walk takes (an index in ``paths``), and where the handed-over
        #: chunks begin.
        self.next = 0
        self.split = 0
        self.handed: deque[tuple[int, int]] = deque()
        self.results: dict[int, Encoded | None] = {}
        #: The flags dicts the process sent, by index (:func:`decode`).
        self.flags: list[dict] = []
        #: Seconds the walk spent starting the process, handing it files and waiting for its
        #: answers: none of it is waiting for the disk (``scan._Walker._clocks``).
        self.waited = 0.0
        #: Closed (the walk is done, reads on threads, or the process failed to start or died):
        #: the walk reads everything itself from now on.
        self.closed = False

    def plan(self, paths: list[str]) -> None:
        """The files of the directory about to be walked that the walk will read."""
        if self.closed:
            return
        self._drain()
        self.planned += len(paths)
        self.paths, self.next, self.split = paths, 0, len(paths)
        self.results.clear()
        if len(paths) < 2 * CHUNK:
            return
        started = time.perf_counter()
        try:
            if self.proc is None:
                if self.planned < START_AFTER:
                    return
                try:
                    self.proc = ReaderProcess()
                except (OSError, ValueError, TypeError) as exc:  # no usable sys.executable
                    log.info("reading on one core: the reader process did not start (%s)", exc)
                    self.close()
                    return
            self._hand_out()
        finally:
            self.waited += time.perf_counter() - started  # the exec of the process, mostly

    def take(self, path: str) -> Encoded | None:
        """What the process read of ``path`` when the walk is at a file handed over (waiting
        for it); None when the walk reads it itself."""
        paths, i = self.paths, self.next
        if i >= len(paths) or path is not paths[i]:
            return None  # not a planned read (a raw base's second read, a rescan's patch)
        self.next = i + 1
        if i < self.split:
            if i % POLL == 0 and self.proc is not None:
                started = time.perf_counter()
                self._hand_out()
                self.waited += time.perf_counter() - started
            return None
        results = self.results
        started = time.perf_counter()
        try:
            while i not in results:
                self._receive()
        except (OSError, EOFError, ValueError, TypeError) as exc:  # a garbled answer
            self._failed(exc)
            return None
        finally:
            self.waited += time.perf_counter() - started
        return results.pop(i)

    def _hand_out(self) -> None:
        """Takes in what the process answered, and hands it more from the far end while the
        walk is far enough from the chunks handed out."""
        proc = self.proc
        assert proc is not None
        try:
            while (self.handed or not proc.ready) and proc.answered():
                self._receive()
            # The walk reads about as fast as the process: it keeps at least as many files
            # of its own as are handed over and unanswered, so both reach the directory's
            # middle together instead of the walk waiting for the last chunks (which grow
            # smaller as they near it).
            while proc.ready and len(self.handed) < OUTSTANDING:
                queued = sum(end - start for start, end in self.handed)
                size = min(CHUNK, (self.split - self.next - queued) // 2)
                if size < MIN_CHUNK:
                    break
                start = self.split - size
                proc.send(self.paths[start : self.split])
                self.handed.append((start, self.split))
                self.split = start
        except (OSError, EOFError, ValueError, TypeError) as exc:  # a garbled answer
            self._failed(exc)

    def _drain(self) -> None:
        """Takes in the answers still owed for the last directory (a walk that left some of
        its planned files untaken), so none is taken for a file of the next."""
        try:
            while self.handed:
                self._receive()
        except (OSError, EOFError, ValueError, TypeError) as exc:
            self._failed(exc)

    def _receive(self) -> None:
        proc = self.proc
        assert proc is not None
        new, answer = proc.receive()
        self.flags.extend(share_flags(f) for f in new)
        if not proc.ready:
            proc.ready = True  # the first frame: the process has started
            return
        start, end = self.handed.popleft()
        self.results.update(zip(range(start, end), answer, strict=True))

    def _failed(self, exc: BaseException) -> None:
        """The process is gone: the walk reads the rest (its handed-over files too)."""
        log.warning("the reader process failed (%s); reading on one core", exc)
        self.close()

    def close(self) -> None:
        """Ends the process; the walk reads every file itself from now on (``take`` gives None
        and changes nothing: reading threads may call it)."""
        self.closed = True
        self.paths, self.handed = [], deque()
        if self.proc is not None:
            proc, self.proc = self.proc, None
            proc.close()


def _write_frame(fd: int, data: bytes) -> None:
    view = memoryview(_LENGTH.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


def _read_exact(fd: int, n: int) -> bytes | None:
    parts = []
    while n:
        part = os.read(fd, min(n, 1 << 20))
        if not part:
            return None
        parts.append(part)
        n -= len(part)
    return b"".join(parts)


def _read_frame(fd: int) -> bytes | None:
    head = _read_exact(fd, _LENGTH.size)
    if head is None:
        return None
    return _read_exact(fd, _LENGTH.unpack(head)[0])


def main() -> None:
    """The reader process: answers frames of paths until its input ends."""
    # Ctrl+C in a terminal reaches the whole process group: the walk that started this process
    # ends it (no traceback of its own on the user's terminal).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gc.disable()  # only short-lived lists: reference counting frees them
    out = os.dup(1)
    os.dup2(2, 1)  # anything printed by mistake goes to stderr, never into the answers
    sent = SentFlags()
    _write_frame(out, marshal.dumps(([], [])))  # ready
    while True:
        frame = _read_frame(0)
        if frame is None:
            return
        new: list[dict] = []
        results = [_answer(path, sent, new) for path in marshal.loads(frame)]
        _write_frame(out, marshal.dumps((new, results)))


def _answer(path: str, sent: SentFlags, new: list[dict]) -> Encoded | None:
    """One file's answer; None (the walk reads it) also should reading it ever raise: one
    file's surprise must not end the process's help with the rest."""
    try:
        return encode(read_file(path, False), sent, new)
    except Exception:  # noqa: BLE001 - the walk reads it again and reports what it finds
        return None
