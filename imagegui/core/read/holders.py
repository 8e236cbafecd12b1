"""Which processes hold a file open, and what they are called: one walk of ``/proc``.

qemu only says "Is another process using the image?". Users then hunt with ``lsof``; we look
through ``/proc/*/fd`` ourselves and match each open file's (st_dev, st_ino) with the image's, so
symlinks, hard links and relative names all lead to the same answer. Processes of other users are
only visible to root; then the answer is empty and the caller says so. A QEMU holder is named by
its ``-name`` (``the VM "web01"``), which is what the user called it.

This reads the host, it runs nothing: the scan asks it which images are in use.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from imagegui.core.read.fileid import file_id


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
