"""Processes: who holds an image (named, not just numbered), and children that die with us.

qemu only says "Is another process using the image?". Users then hunt with ``lsof``; we look
through ``/proc/*/fd`` ourselves and match each open file's (st_dev, st_ino) with the image's, so
symlinks, hard links and relative names all lead to the same answer. Processes of other users are
only visible to root; then the answer is empty and the caller says so. A QEMU holder is named by
its ``-name`` (``the VM "web01"``), which is what the user called it.

``popen`` starts qemu-img and the CLI's VMs: in their own process group (a terminal's Ctrl-C
reaches only us, and we stop the child in order), yet tied to this process by
``PR_SET_PDEATHSIG`` so a SIGKILL of imagegui never leaves an orphan finishing a flatten or
holding an image. The kernel sends that signal when the *thread* that forked the child ends, so
children are forked by one thread that lives as long as the process (``_Spawner``), never by a
pool worker that may be retired while its child still runs.
"""

from __future__ import annotations

import ctypes
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from imagegui.core.fileid import file_id

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


def split_qemu_opts(value: str) -> list[str]:
    """``"guest=a,,b,debug-threads=on"`` -> ``["guest=a,b", "debug-threads=on"]`` (qemu's
    option syntax: a comma inside a value is written as two)."""
    parts, cur, i = [], [], 0
    while i < len(value):
        c = value[i]
        if c == ",":
            if value[i + 1 : i + 2] == ",":
                cur.append(",")
                i += 2
                continue
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur))
    return parts


def qemu_opt(value: str) -> str:
    """A value made safe inside a qemu option list (``-drive file=…``, ``-name``, ``unix:…``)."""
    return value.replace(",", ",,")


def vm_name(cmdline: Sequence[str]) -> str:
    """The ``-name`` a QEMU was given (``guest=`` stripped, as libvirt writes it), or ""."""
    for i, arg in enumerate(cmdline[:-1]):
        if arg in ("-name", "--name"):
            for part in split_qemu_opts(cmdline[i + 1]):
                key, eq, val = part.partition("=")
                if not eq:
                    return part
                if key == "guest":
                    return val
            return ""
    return ""


# --------------------------------------------------------------------------- holders


@dataclass(frozen=True)
class Holder:
    pid: int
    #: Short program name (``/proc/PID/comm``), e.g. ``qemu-system-x86``.
    program: str
    #: The full command line, for a tooltip or ``--verbose``.
    cmdline: tuple[str, ...] = ()

    @property
    def program_name(self) -> str:
        return (os.path.basename(self.cmdline[0]) if self.cmdline else self.program) or "?"

    @property
    def vm(self) -> str:
        """The VM's ``-name`` when the holder is a QEMU that has one."""
        return vm_name(self.cmdline)

    def describe(self) -> str:
        """``the VM "web01" (PID 4242, qemu-system-x86_64)`` or ``PID 77 (qemu-img)``."""
        if name := self.vm:
            return f'the VM "{name}" (PID {self.pid}, {self.program_name})'
        return f"PID {self.pid} ({self.program_name})"


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def cmdline(pid: int, proc: str = "/proc") -> tuple[str, ...]:
    argv = _read(f"{proc}/{pid}/cmdline").decode(errors="replace").split("\0")
    return tuple(a for a in argv if a)


def holders(path: str, proc: str = "/proc") -> list[Holder]:
    """Processes (other than this one) holding ``path`` open, in PID order."""
    return list(holders_by_path([path], proc).get(path, ()))


def holders_by_path(paths: Iterable[str], proc: str = "/proc") -> dict[str, tuple[Holder, ...]]:
    """:func:`holders` for many files in one walk of ``/proc`` (a scan with many images in use
    looks once, not once per image). Only the paths some other process holds are keys."""
    wanted: dict[tuple[int, int], list[str]] = {}
    for path in paths:
        ident = file_id(path)
        if ident is not None:
            wanted.setdefault(ident, []).append(path)
    found: dict[str, list[Holder]] = {}
    if not wanted:
        return {}
    me = os.getpid()
    try:
        pids = sorted(int(p) for p in os.listdir(proc) if p.isdigit())
    except OSError:
        return {}
    for pid in pids:
        if pid == me:
            continue
        fd_dir = f"{proc}/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        hits: set[tuple[int, int]] = set()
        for fd in fds:
            ident = file_id(f"{fd_dir}/{fd}")
            if ident in wanted:
                hits.add(ident)
        if hits:
            comm = _read(f"{proc}/{pid}/comm").decode(errors="replace").strip()
            holder = Holder(pid, comm, cmdline(pid, proc))
            for ident in hits:
                for path in wanted[ident]:
                    found.setdefault(path, []).append(holder)
    return {path: tuple(hs) for path, hs in found.items()}


def describe_holders(path: str) -> str:
    """``in use by the VM "web01" (PID 4242, qemu-system-x86_64)`` or a hint when the holder
    is not visible."""
    hs = holders(path)
    if not hs:
        return "in use by another process (not visible to this user; try `fuser -v` as root)"
    return "in use by " + ", ".join(h.describe() for h in hs)
