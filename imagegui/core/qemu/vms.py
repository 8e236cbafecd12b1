"""VMs started by imagegui that outlive their launcher: found again, listed, stopped.

Every VM imagegui starts gets a QMP *control* socket that QEMU itself listens on, in our private
runtime directory (``$XDG_RUNTIME_DIR/imagegui``, else ``/tmp/imagegui-UID``; 0700, owned by us,
checked every time, never used when it is not). The launcher talks to the VM on a second
connection; the control socket stays for whoever comes next: the window started again after a
crash or a "Keep running", ``imagegui vms``, ``imagegui stop``.

A VM is found by its process (ours, whose command line names a control socket in that directory)
and its socket file; its image and ``-name`` come from its command line. A socket whose process is
gone is stale and removed. We only ever connect to a socket in our private directory, owned by us,
whose listening peer (``SO_PEERCRED``) is the very process that named it on its command line.
A VM this process started itself is held by :class:`imagegui.core.qemu.vm.RunningVM` instead
(its child, with a QMP client of its own); both answer ``status``, ``stop`` and ``force_off``.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import stat
import struct
import tempfile
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from imagegui.core.jobs import CancelToken, ProgressFn
from imagegui.core.read.holders import cmdline, split_qemu_opts, vm_name

#: The longest path a unix socket can have (``sun_path`` is 108 bytes with its NUL).
SOCKET_PATH_MAX = 107
CONTROL_SUFFIX = ".ctl"


class RuntimeDirError(OSError):
    """Our runtime directory exists but is not private: we will not put sockets there."""


def runtime_dir(create: bool = True) -> str:
    """The private directory for QMP sockets; created 0700, else checked: a directory (not a
    link), owned by us, no access for group or others. Raises ``RuntimeDirError`` otherwise."""
    base = os.environ.get("XDG_RUNTIME_DIR") or ""
    if base and os.path.isabs(base) and os.path.isdir(base):
        path = os.path.join(base, "imagegui")
    else:
        path = os.path.join(tempfile.gettempdir(), f"imagegui-{os.geteuid()}")
    if create:
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, 0o700)  # umask only removes bits: never wider than 0700
    elif not os.path.lexists(path):
        return path
    check_private(path)
    return path


def check_private(path: str) -> None:
    """Raises ``RuntimeDirError`` unless ``path`` is a real directory, ours, mode 0700 or less."""
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise RuntimeDirError(f"{path} is not a directory of ours (a link or a file): remove it")
    if st.st_uid != os.geteuid():
        raise RuntimeDirError(
            f"{path} belongs to user {st.st_uid}, not to us: remove it (or set XDG_RUNTIME_DIR)",
        )
    if st.st_mode & 0o077:
        raise RuntimeDirError(
            f"{path} is not private (mode {stat.S_IMODE(st.st_mode):04o}, others "
            "could put or reach sockets there): remove it or make it 0700",
        )


def socket_paths(directory: str, token: str) -> tuple[str, str]:
    """(launcher socket, control socket) for one VM."""
    return (os.path.join(directory, f"vm-{token}.qmp"), os.path.join(directory, f"vm-{token}.ctl"))


def control_socket(qmp_socket: str) -> str:
    """The control socket (qemu listens) that goes with a launcher socket (we listen)."""
    if qmp_socket.endswith(".qmp"):
        return qmp_socket[: -len(".qmp")] + CONTROL_SUFFIX
    return qmp_socket + CONTROL_SUFFIX


def control_of(argv: list[str] | tuple[str, ...], directory: str) -> str | None:
    """The control socket a QEMU command line listens on inside ``directory``, if any."""
    for i, arg in enumerate(argv[:-1]):
        if arg != "-qmp" or not argv[i + 1].startswith("unix:"):
            continue
        parts = split_qemu_opts(argv[i + 1][len("unix:") :])
        if "server=on" in parts[1:] and os.path.dirname(parts[0]) == directory:
            return parts[0]
    return None


def drive_file(argv: list[str] | tuple[str, ...]) -> str:
    """The image of the first ``-drive file=…`` (commas undoubled)."""
    for i, arg in enumerate(argv[:-1]):
        if arg == "-drive":
            for part in split_qemu_opts(argv[i + 1]):
                if part.startswith("file="):
                    return part[len("file=") :]
    return ""


def _start_time(pid: int) -> int | None:
    """Field 22 of ``/proc/PID/stat``: tells a PID apart from a later process reusing it. None
    for a process that is gone or has exited (a zombie waiting for its parent)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    try:
        fields = data[data.rindex(b")") + 2 :].split()
        return None if fields[0] in (b"Z", b"X") else int(fields[19])
    except (ValueError, IndexError):
        return None


class VmControlError(Exception):
    """The control socket could not be used (gone, busy, not the VM's); the message says so."""


@runtime_checkable
class VmHandle(Protocol):
    """What a window or command needs of a running VM of ours, whichever way it is held: a
    :class:`FoundVM` (found again, not our child) or a ``RunningVM`` (started by this process,
    :mod:`imagegui.core.qemu.vm`). Both satisfy it (checked by mypy below and in ``vm``)."""

    @property
    def pid(self) -> int: ...

    @property
    def image(self) -> str: ...

    #: Its ``-name`` (``imagegui:...``), or "" when it has none.
    @property
    def name(self) -> str: ...

    def running(self) -> bool: ...

    def stop(
        self,
        timeout: float = 60.0,
        progress: ProgressFn | None = None,
        cancel: CancelToken | None = None,
        force: bool = False,
    ) -> int | None:
        """Powers it down (``force``: turns it off); qemu's exit status when it is our child."""
        ...


@dataclass
class FoundVM:
    """A running VM of ours found by its process and control socket (not our child)."""

    pid: int
    image: str
    name: str
    control_socket: str
    cmdline: tuple[str, ...] = ()
    start_time: int | None = None
    #: The PID of the process that started it, if it is still alive (else it is orphaned).
    launcher: int | None = None
    note: str = field(default="", repr=False)

    def running(self) -> bool:
        return self.start_time is not None and _start_time(self.pid) == self.start_time

    def to_json(self) -> dict[str, object]:
        return {
            "pid": self.pid,
            "name": self.name,
            "image": self.image,
            "control_socket": self.control_socket,
            "launcher": self.launcher,
        }

    # -- QMP over the control socket, one short connection per command

    def qmp(self, command: str, timeout: float = 5.0) -> object:
        return qmp_call(self.control_socket, self.pid, command, timeout)

    def status(self) -> str:
        if not self.running():
            return "exited"
        try:
            return str(self.qmp("query-status")["status"])  # type: ignore[index]
        except (VmControlError, KeyError, TypeError):
            return "unknown"

    def stop(
        self,
        timeout: float = 60.0,
        progress: ProgressFn | None = None,
        cancel: CancelToken | None = None,
        force: bool = False,
    ) -> int | None:
        """Power-down (ACPI), then ``quit`` after ``timeout`` or on cancel, then SIGKILL;
        ``force`` skips the power-down. None: qemu is not our child, its exit status is not ours
        to read. Raises ``VmControlError`` when the control socket cannot be used."""
        if not self.running():
            return None
        if not force:
            self.qmp("system_powerdown")
            deadline = time.monotonic() + timeout
            while self.running():
                left = deadline - time.monotonic()
                if progress is not None and timeout > 0:
                    progress(min(1.0, max(0.0, 1.0 - left / timeout)))
                if left <= 0 or (cancel is not None and cancel.cancelled):
                    break
                _wait_exit(self.pid, min(0.2, left))
        if self.running():
            with contextlib.suppress(VmControlError):
                self.qmp("quit")
            deadline = time.monotonic() + 10
            while self.running() and time.monotonic() < deadline:
                _wait_exit(self.pid, 0.2)
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            while self.running():
                _wait_exit(self.pid, 0.2)
        return None

    def force_off(self) -> int | None:
        return self.stop(force=True)

    def close(self) -> None:
        """Nothing held open between commands."""


if TYPE_CHECKING:  # mypy checks that a FoundVM is a VmHandle (signatures included)

    def _found_is_a_handle(vm: FoundVM) -> VmHandle:
        return vm


def _wait_exit(pid: int, timeout: float) -> None:
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return
    try:
        select.select([fd], [], [], max(0.0, timeout))
    finally:
        os.close(fd)


def qmp_call(path: str, pid: int, command: str, timeout: float = 5.0) -> object:
    """One QMP command on a control socket, after checking it is the VM's own socket."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise VmControlError(f"the VM's control socket {path} is gone ({exc.strerror})") from None
    if not stat.S_ISSOCK(st.st_mode) or st.st_uid != os.geteuid():
        raise VmControlError(f"{path} is not a socket of ours; not used")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect(path)
            creds = s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            peer, uid, _ = struct.unpack("3i", creds)
            if peer != pid or uid != os.geteuid():
                raise VmControlError(
                    f"{path} is served by PID {peer}, not by the VM (PID {pid}); not used"
                )
            f = s.makefile("rwb", buffering=0)
            _read_reply(f, greeting=True)
            _send(f, "qmp_capabilities")
            _read_reply(f)
            _send(f, command)
            return _read_reply(f)
        except TimeoutError:
            raise VmControlError(
                f"the VM (PID {pid}) did not answer on {path} within {timeout:.0f} s (another "
                "program may be talking to it)"
            ) from None
        except (ConnectionError, OSError) as exc:
            if isinstance(exc, VmControlError):
                raise
            raise VmControlError(f"cannot talk to the VM (PID {pid}): {exc}") from None


def _send(f, command: str) -> None:
    f.write(json.dumps({"execute": command}).encode() + b"\n")


def _read_reply(f, greeting: bool = False) -> object:
    while True:
        line = f.readline()
        if not line:
            raise ConnectionResetError("the VM closed the connection")
        msg = json.loads(line)
        if greeting and "QMP" in msg:
            return msg
        if "return" in msg:
            return msg["return"]
        if "error" in msg:
            raise VmControlError(f"the VM refused: {msg['error'].get('desc', msg['error'])}")
        # an event ("POWERDOWN", ...): keep reading


def _parent(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
        return int(data[data.rindex(b")") + 2 :].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def find_vms(directory: str | None = None, clean: bool = True) -> list[FoundVM]:
    """Our running VMs with a control socket in our runtime directory; stale sockets (their VM
    is gone) are removed when ``clean``. Never raises for an unsafe directory: it is just not
    looked at (``runtime_dir`` says why when a launch needs it)."""
    if directory is None:
        try:
            directory = runtime_dir(create=False)
        except RuntimeDirError:
            return []
    try:
        sockets = {
            os.path.join(directory, n) for n in os.listdir(directory) if n.endswith(CONTROL_SUFFIX)
        }
    except OSError:
        return []
    if not sockets:
        return []
    me = os.geteuid()
    found: list[FoundVM] = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != me:
                continue
        except OSError:
            continue
        pid = int(entry.name)
        argv = cmdline(pid)
        if "-qmp" not in argv:
            continue
        ctl = control_of(argv, directory)
        if ctl is None or ctl not in sockets:
            continue
        sockets.discard(ctl)
        parent = _parent(pid)
        found.append(
            FoundVM(
                pid, drive_file(argv), vm_name(argv), ctl, argv, _start_time(pid),
                launcher=parent if parent not in (None, 0, 1) else None,
            )
        )  # fmt: skip
    if clean:
        for stale in sockets:
            with contextlib.suppress(OSError):
                if stat.S_ISSOCK(os.lstat(stale).st_mode):
                    os.unlink(stale)
    return sorted(found, key=lambda v: v.pid)
