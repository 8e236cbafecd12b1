"""The Qt-free shape of long work: a callable taking a progress callback and a cancel token.

Every operation (flatten, commit, safe rebase, ...) is written once as such a callable. The CLI
runs it in the main thread with a terminal progress bar; the GUI runs the very same callable on a
``QThreadPool`` through ``imagegui.gui.workers``. Nothing here imports Qt, so jobs are tested
without threads or an event loop.

Cancellation is cooperative but prompt: ``CancelToken.cancel()`` may be called from any thread and
runs the callbacks registered by whatever is blocking (the qemu-img runner terminates its child
process), so a cancel never waits for the next progress line.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from imagegui.core.strenum import StrEnum

T = TypeVar("T")

#: Receives the fraction done, 0.0 .. 1.0.
ProgressFn = Callable[[float], None]


class Outcome(StrEnum):
    """How a job ended: the window's Operations panel shows it, its owner branches on it."""

    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class CancelledError(Exception):
    """The user cancelled; the message says what state the images were left in."""


class CancelToken:
    """A thread-safe "please stop" flag with callbacks that fire once, on the first cancel."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def cancel(self) -> None:
        """Requests cancellation; safe from any thread (GUI, signal handler); idempotent."""
        with self._lock:
            if self._event.is_set():
                return
            self._event.set()
            callbacks, self._callbacks = self._callbacks, []
        for cb in callbacks:
            cb()

    def on_cancel(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Runs ``callback`` on cancel (now, if already cancelled); returns an unregister function
        so a finished step does not get called back later."""
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(callback)
                return lambda: self._remove(callback)
        callback()
        return lambda: None

    def _remove(self, callback: Callable[[], None]) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._callbacks.remove(callback)

    def wait(self, timeout: float | None = None) -> bool:
        """Blocks until cancelled or ``timeout``; True when cancelled. For jobs that wait."""
        return self._event.wait(timeout)

    def raise_if_cancelled(self, state: str = "nothing was changed") -> None:
        if self._event.is_set():
            raise CancelledError(f"cancelled; {state}")


def no_progress(_fraction: float) -> None:
    """The progress callback for callers that do not show progress."""


@dataclass
class Job(Generic[T]):
    """One unit of long work: ``fn(progress, cancel) -> result``.

    ``title`` is what a progress dialog or the terminal shows while it runs.
    """

    title: str
    fn: Callable[[ProgressFn, CancelToken], T]

    def run(self, progress: ProgressFn | None = None, cancel: CancelToken | None = None) -> T:
        return self.fn(progress or no_progress, cancel or CancelToken())


@dataclass
class Throttle:
    """Wraps a progress callback so it fires at most every ``interval`` seconds (and always for
    0 and 1), keeping qemu-img's hundreds of updates from flooding a GUI event queue or a tty."""

    target: ProgressFn
    interval: float = 0.05
    _last_time: float = field(default=-1e9, init=False)
    _last_value: float = field(default=-1.0, init=False)

    def __call__(self, fraction: float) -> None:
        now = time.monotonic()
        edge = fraction <= 0.0 or fraction >= 1.0
        if fraction == self._last_value:
            return
        if edge or now - self._last_time >= self.interval:
            self._last_time = now
            self._last_value = fraction
            self.target(fraction)
