"""Which processes have a file open: turns qemu's "Failed to get write lock" into a name.

qemu only says "Is another process using the image?". Users then hunt with ``lsof``; we look
through ``/proc/*/fd`` ourselves and match each open file's (st_dev, st_ino) with the image's, so
symlinks, hard links and relative names all lead to the same answer. Processes of other users are
only visible to root; then the answer is empty and the caller says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from imagegui.core.fileid import file_id


@dataclass(frozen=True)
class Holder:
    pid: int
    #: Short program name (``/proc/PID/comm``), e.g. ``qemu-system-x86``.
    program: str
    #: The full command line, for a tooltip or ``--verbose``.
    cmdline: tuple[str, ...] = ()

    def describe(self) -> str:
        name = os.path.basename(self.cmdline[0]) if self.cmdline else self.program
        return f"PID {self.pid} ({name or '?'})"


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def holders(path: str, proc: str = "/proc") -> list[Holder]:
    """Processes (other than this one) holding ``path`` open, in PID order."""
    target = file_id(path)
    if target is None:
        return []
    me = os.getpid()
    found: list[Holder] = []
    try:
        pids = sorted(int(p) for p in os.listdir(proc) if p.isdigit())
    except OSError:
        return []
    for pid in pids:
        if pid == me:
            continue
        fd_dir = f"{proc}/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            if file_id(f"{fd_dir}/{fd}") == target:
                comm = _read(f"{proc}/{pid}/comm").decode(errors="replace").strip()
                argv = _read(f"{proc}/{pid}/cmdline").decode(errors="replace").split("\0")
                found.append(Holder(pid, comm, tuple(a for a in argv if a)))
                break
    return found


def describe_holders(path: str) -> str:
    """``"in use by PID 4242 (qemu-system-x86_64)"`` or a hint when the holder is not visible."""
    hs = holders(path)
    if not hs:
        return "in use by another process (not visible to this user; try `fuser -v` as root)"
    return "in use by " + ", ".join(h.describe() for h in hs)
