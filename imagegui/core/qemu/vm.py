"""A VM we started: the qemu-system process and its QMP connection, usable from any thread.

The handle talks QMP through QEMU's own client library (``qemu.qmp``). Its API is asyncio; a GUI
thread, a worker thread and the CLI's main thread all need to call ``status()`` or ``stop()``
synchronously, so each ``RunningVM`` owns one private event loop on a daemon thread and every
public method hands a coroutine to it (``run_coroutine_threadsafe``). That makes the handle safe to
call from any thread without any of them owning an event loop (the ``legacy`` sync shim binds to
the calling thread's loop instead).

We listen on the QMP socket and qemu connects to us (``-qmp unix:SOCK``): no polling for a socket
file to appear, and a qemu that dies at start-up (image locked, bad option) is noticed at once
through a pidfd. A second QMP socket that qemu itself listens on (the *control* socket) stays in our
private runtime directory, so a VM that outlives its launcher can still be found and stopped
(:mod:`imagegui.core.qemu.vms`, which finds VMs started earlier, ours or not our children). Both
live in that 0700 directory of ours, never in a shared /tmp.

The CLI's VM dies with the CLI however it ends (``processes.popen``: ``PR_SET_PDEATHSIG``); the
window's VMs may be kept running when it closes, so they are not tied to it. What to start and
whether it is safe is decided by the launch plan (``imagegui.core.ops.launch``), not here.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import subprocess
import tempfile
import threading
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from imagegui.core.jobs import CancelToken, ProgressFn
from imagegui.core.qemu.processes import popen
from imagegui.core.qemu.qemuimg import QemuImgError, QemuNotFoundError, executable, map_error
from imagegui.core.qemu.vms import VmHandle, check_private, control_socket
from imagegui.core.read.holders import vm_name
from imagegui.core.units import printable

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The emulator run when no other is chosen.
QEMU_SYSTEM = "qemu-system-x86_64"
#: Seconds qemu has to come up and connect to QMP.
START_TIMEOUT = 30.0


class LaunchError(QemuImgError):
    """qemu-system-x86_64 did not come up; the message carries qemu's own reason."""


class _LoopThread:
    """A private asyncio loop on a daemon thread; ``call`` runs a coroutine there and waits."""

    def __init__(self) -> None:
        # asyncio here, not at the top: it brings ssl and its C libraries, and the window
        # imports this module at start (for the Launch dialog) long before any VM runs.
        import asyncio

        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="qmp")
        self._thread.start()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        import asyncio

        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class RunningVM:
    """A started qemu-system process and its QMP connection; every method is thread-safe."""

    def __init__(
        self,
        proc: subprocess.Popen,
        image: str,
        qmp_socket: str,
        loop: _LoopThread,
        client: Any,
        stderr: Any,
    ) -> None:
        self.proc = proc
        self._exit_logged = False
        self.image = image
        self.qmp_socket = qmp_socket
        self.control_socket = control_socket(qmp_socket)
        #: The ``-name`` it runs under (what ``in use`` messages call it).
        self.name = vm_name(proc.args) if isinstance(proc.args, list) else ""
        self._loop = loop
        self._client = client
        self._lock = threading.Lock()
        self._closed = False
        self._stderr = stderr
        #: Something the user should know about how the VM was started (an accelerator fallback).
        self.note = ""

    @property
    def pid(self) -> int:
        return self.proc.pid

    @classmethod
    def start(
        cls,
        argv: list[str],
        image: str,
        qmp_socket: str,
        timeout: float = START_TIMEOUT,
        tied: bool = False,
    ) -> RunningVM:
        """``tied``: the VM gets SIGTERM (qemu quits, flushing its disks) when this process
        dies, however it dies."""
        from qemu.qmp import QMPClient

        real = [executable(argv[0]), *argv[1:]]
        try:  # checked again just before use: our own private directory, nobody else's
            check_private(os.path.dirname(qmp_socket))
        except OSError as exc:
            raise LaunchError(f"no private place for the VM's sockets: {exc}", argv) from None
        loop = _LoopThread()
        client = QMPClient(f"imagegui:{os.path.basename(image)}")
        stderr = tempfile.TemporaryFile()  # noqa: SIM115 - owned by the RunningVM
        try:
            if os.path.lexists(qmp_socket):  # never reuse (or let asyncio replace) a socket
                raise LaunchError(f"{qmp_socket} already exists; not used", argv)
            loop.call(client.start_server(qmp_socket), timeout)
            os.chmod(qmp_socket, 0o600)
            try:
                # Own process group: Ctrl-C in a terminal reaches us; we power down in order.
                proc = popen(
                    real,
                    die_with_us=tied,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                )
            except FileNotFoundError as exc:
                log.error("cannot run %s: %s", printable(shlex.join(real)), exc.strerror)
                raise QemuNotFoundError(
                    f"{argv[0]} is not installed (Debian/Ubuntu: apt install qemu-system-x86)"
                ) from exc
            log.info("run (pid %d): %s", proc.pid, printable(shlex.join(real)))
            try:
                loop.call(_accept_or_exit(client, proc.pid), timeout)
            except BaseException as exc:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                rc = proc.wait()
                stderr.seek(0)
                text = stderr.read().decode(errors="replace")
                log.warning(
                    "the VM did not start (pid %d, exit status %d): %s",
                    proc.pid, rc, printable(text.strip()[-2000:]),
                )  # fmt: skip
                if rc != 0 and text:
                    err = map_error(argv, rc, text)
                    raise LaunchError(f"the VM did not start: {err}", argv, rc, text) from exc
                raise LaunchError(
                    f"the VM did not start: {exc or type(exc).__name__}", argv
                ) from exc
        except BaseException:
            with contextlib.suppress(Exception):
                loop.call(client.disconnect(), 5)
            loop.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(qmp_socket)
            stderr.close()
            raise
        proc.args = argv  # as planned (the binary's bare name): what ``name`` and lists show
        vm = cls(proc, image, qmp_socket, loop, client, stderr)
        # The listening socket file is no longer needed once qemu is connected.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(qmp_socket)
        return vm

    # -- queries

    def running(self) -> bool:
        return self.proc.poll() is None

    def status(self, timeout: float = 10.0) -> str:
        """QMP ``query-status`` (``running``, ``paused``, ...) or ``exited`` when qemu is gone."""
        if not self.running():
            return "exited"
        try:
            result = self.qmp("query-status", timeout=timeout)
        except Exception:
            return "exited" if not self.running() else "unknown"
        return str(result["status"])  # type: ignore[index]

    def qmp(self, command: str, timeout: float = 10.0, **arguments: Any) -> object:
        with self._lock:
            if self._closed:
                raise LaunchError("the VM's QMP connection is closed")
            return self._loop.call(self._client.execute(command, arguments or None), timeout)

    def wait(self, timeout: float | None = None) -> int | None:
        """Blocks until qemu exits (the guest powered off); None after ``timeout``."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self._log_exit(rc)
        return rc

    def _log_exit(self, rc: int) -> None:
        if not self._exit_logged:
            self._exit_logged = True
            log.info("VM exited (pid %d): exit status %d", self.proc.pid, rc)

    # -- stopping

    def stop(
        self,
        timeout: float = 60.0,
        progress: ProgressFn | None = None,
        cancel: CancelToken | None = None,
        force: bool = False,
    ) -> int:
        """ACPI power-down (the guest shuts down cleanly), then ``quit`` after ``timeout``,
        then SIGKILL; returns qemu's exit status. Idempotent.

        ``progress`` gets the share of the power-down wait used up; cancelling ``cancel`` ends
        the wait at once (force off: a guest without ACPI, SeaBIOS, a hung OS never obeys);
        ``force`` skips the power-down.
        """
        if self.running() and not force:
            with contextlib.suppress(Exception):
                self.qmp("system_powerdown")
            deadline = time.monotonic() + timeout
            while self.wait(min(0.2, max(0.0, deadline - time.monotonic()))) is None:
                left = deadline - time.monotonic()
                if progress is not None and timeout > 0:
                    progress(min(1.0, 1.0 - left / timeout))
                if left <= 0 or (cancel is not None and cancel.cancelled):
                    break
        if self.running():
            with contextlib.suppress(Exception):
                self.qmp("quit", timeout=5)
            if self.wait(10) is None:
                self.proc.kill()
        rc = self.proc.wait()
        self._log_exit(rc)
        self.close()
        return rc

    def force_off(self) -> int:
        """Off now, without asking the guest (qemu quits; its disks are flushed)."""
        return self.stop(force=True)

    def close(self) -> None:
        """Drops the QMP connection and its loop (the VM keeps running if it still is)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        with contextlib.suppress(Exception):
            self._loop.call(self._client.disconnect(), 5)
        self._loop.close()
        with contextlib.suppress(Exception):
            self._stderr.close()

    def stderr_text(self) -> str:
        try:
            self._stderr.seek(0)
            return self._stderr.read().decode(errors="replace")
        except (OSError, ValueError):
            return ""

    def __enter__(self) -> RunningVM:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


if TYPE_CHECKING:  # mypy checks that a RunningVM is a VmHandle (signatures included)

    def _running_is_a_handle(vm: RunningVM) -> VmHandle:
        return vm


async def _accept_or_exit(client: Any, pid: int) -> None:
    """Waits for qemu to connect to QMP, or fails as soon as the process exits."""
    import asyncio

    loop = asyncio.get_running_loop()
    exited: asyncio.Future[None] = loop.create_future()
    pidfd = os.pidfd_open(pid)
    loop.add_reader(pidfd, lambda: None if exited.done() else exited.set_result(None))
    accept = asyncio.ensure_future(client.accept())
    try:
        done, _ = await asyncio.wait({accept, exited}, return_when=asyncio.FIRST_COMPLETED)
        if accept in done:
            accept.result()
            return
        accept.cancel()
        with contextlib.suppress(BaseException):
            await accept
        raise LaunchError("qemu exited before it connected to QMP")
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)
