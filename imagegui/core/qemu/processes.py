"""Children that die with us: qemu-img and the CLI's VMs, and qemu's option syntax.

``popen`` starts qemu-img and the CLI's VMs: in their own process group (a terminal's Ctrl-C
reaches only us, and we stop the child in order), yet tied to this process by
``PR_SET_PDEATHSIG`` so a SIGKILL of imagegui never leaves an orphan finishing a flatten or
holding an image. The kernel sends that signal when the *thread* that forked the child ends, so
children are forked by one thread that lives as long as the process (``_Spawner``), never by a
pool worker that may be retired while its child still runs. Who holds a file open is
``core.read.holders``.
"""

from __future__ import annotations

import ctypes
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

_PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.prctl
    except (OSError, AttributeError):  # not Linux/glibc: children are not tied, nothing breaks
        return None
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    return fn


#: Resolved once at import: the child after ``fork`` only calls it (no symbol lookup, no import).
_prctl = _load_prctl()


def _die_with(parent: int, sig: int) -> Callable[[], None]:
    """The ``preexec_fn`` that asks the kernel to send ``sig`` when our forking thread ends, and
    closes the race where we died between ``fork`` and ``prctl`` (the child is then re-parented)."""

    def preexec() -> None:
        if _prctl is not None:
            _prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(128 + sig)

    return preexec


class _Spawner:
    """One daemon thread that forks every tied child: it lives until the process exits."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], queue.SimpleQueue]] | None = None

    def call(self, fn: Callable[[], Any]) -> Any:
        with self._lock:
            if self._jobs is None:
                self._jobs = queue.SimpleQueue()
                threading.Thread(
                    target=self._loop, args=(self._jobs,), name="imagegui-spawner", daemon=True
                ).start()
            jobs = self._jobs
        answer: queue.SimpleQueue = queue.SimpleQueue()
        jobs.put((fn, answer))
        ok, value = answer.get()
        if ok:
            return value
        raise value

    @staticmethod
    def _loop(jobs: queue.SimpleQueue) -> None:
        while True:
            fn, answer = jobs.get()
            try:
                answer.put((True, fn()))
            except BaseException as exc:  # handed to the caller's thread
                answer.put((False, exc))


_spawner = _Spawner()


#: ``Popen(process_group=...)`` is new in Python 3.11; on 3.10 the child calls ``setpgid`` itself.
_POPEN_HAS_PROCESS_GROUP = sys.version_info >= (3, 11)


def _setpgid(group: int) -> Callable[[], None]:
    def preexec() -> None:
        os.setpgid(0, group)

    return preexec


def _chain(steps: list[Callable[[], None]]) -> Callable[[], None]:
    def preexec() -> None:
        for step in steps:
            step()

    return preexec


def popen(
    argv: Sequence[str], *, die_with_us: bool = True, sig: int = signal.SIGTERM, **kw: Any
) -> subprocess.Popen:
    """``subprocess.Popen`` in a new process group; with ``die_with_us`` the child gets ``sig``
    when this process dies, however it dies (SIGKILL included)."""
    group = kw.pop("process_group", 0)
    steps: list[Callable[[], None]] = []
    if group is not None:
        if _POPEN_HAS_PROCESS_GROUP:
            kw["process_group"] = group
        else:
            steps.append(_setpgid(group))
    if die_with_us:
        steps.append(_die_with(os.getpid(), sig))
    if steps:
        kw["preexec_fn"] = _chain(steps)
    if not die_with_us or threading.current_thread() is threading.main_thread():
        return subprocess.Popen(list(argv), **kw)
    return _spawner.call(lambda: subprocess.Popen(list(argv), **kw))


# --------------------------------------------------------------------------- qemu options


def qemu_opt(value: str) -> str:
    """A value made safe inside a qemu option list (``-drive file=…``, ``-name``, ``unix:…``)."""
    return value.replace(",", ",,")


# --------------------------------------------------------------------------- holders
