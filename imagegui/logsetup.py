"""Logging for the command line and the window: a rotating file always, stderr on request.

What is logged (loggers under ``imagegui``): each scan (root, counts, seconds), each plan run
and its verdict, every qemu-img / qemu-system command line and its exit status, cancellations,
and errors with their tracebacks. The file is what a bug report needs after the fact, so it
takes INFO and up whatever ``-v`` says; ``-v`` copies INFO to stderr, ``-vv`` DEBUG to both.

Qt-free (the CLI must not import Qt). A log file that cannot be opened (read-only home) is
skipped with one line on stderr: logging never stops the program.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from imagegui.core.statefiles import state_file

#: A few hundred KB per file, the current one and three older: enough for a day of work,
#: never a disk filler.
MAX_BYTES = 300_000
BACKUPS = 3
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_installed: list[logging.Handler] = []


class RotatingFile(logging.FileHandler):
    """``logging.handlers.RotatingFileHandler``'s rotation (``imagegui.log`` -> ``.1`` ... up to
    ``backups``, before a record would take the file past ``max_bytes``), without importing
    ``logging.handlers``: it brings socket, pickle and their C modules, 12-15 ms of every
    command's start for handlers imagegui never uses."""

    def __init__(self, path: Path, max_bytes: int, backups: int):
        super().__init__(path, mode="a", encoding="utf-8", errors="replace")
        self.max_bytes = max_bytes
        self.backups = backups

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if self._full(record):
                self._rotate()
        except Exception:  # noqa: BLE001 - as logging's own handlers: report, never raise
            self.handleError(record)
            return
        super().emit(record)

    def _full(self, record: logging.LogRecord) -> bool:
        if self.stream is None:
            self.stream = self._open()
        at = self.stream.tell()
        if not at or at + len(f"{self.format(record)}\n") < self.max_bytes:
            return False
        return os.path.isfile(self.baseFilename)  # not a FIFO or /dev/null given as the log

    def _rotate(self) -> None:
        if self.stream is not None:
            self.stream.close()
            self.stream = None  # type: ignore[assignment]
        base = self.baseFilename
        for n in range(self.backups - 1, 0, -1):
            if os.path.exists(f"{base}.{n}"):
                os.replace(f"{base}.{n}", f"{base}.{n + 1}")
        if os.path.exists(base):
            os.replace(base, f"{base}.1")
        self.stream = self._open()


def log_path() -> Path:
    """``$IMAGEGUI_LOG``, else ``$XDG_STATE_HOME/imagegui/imagegui.log`` (~/.local/state)."""
    return Path(state_file("imagegui.log", "IMAGEGUI_LOG"))


def close() -> None:
    """Removes (and closes) the handlers ``setup`` installed."""
    logger = logging.getLogger("imagegui")
    for handler in _installed:
        logger.removeHandler(handler)
        handler.close()
    _installed.clear()


def setup(verbosity: int = 0, program: str = "imagegui") -> Path | None:
    """Installs the handlers on the ``imagegui`` logger (again: replaces them). Returns the log
    file's path, or None when it could not be opened."""
    close()
    logger = logging.getLogger("imagegui")
    level = logging.DEBUG if verbosity >= 2 else logging.INFO
    logger.setLevel(level)
    logger.propagate = False
    formatter = logging.Formatter(FORMAT)
    if verbosity >= 1:
        err = logging.StreamHandler(sys.stderr)
        err.setLevel(level)
        err.setFormatter(logging.Formatter("imagegui: %(levelname)s: %(message)s"))
        _installed.append(err)
    path: Path | None = log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        file = RotatingFile(path, MAX_BYTES, BACKUPS)
    except OSError as exc:
        print(f"imagegui: note: no log file ({path}: {exc.strerror})", file=sys.stderr)
        path = None
    else:
        file.setLevel(level)
        file.setFormatter(formatter)
        _installed.append(file)
    for handler in _installed:
        logger.addHandler(handler)
    logger.debug("%s started (pid %d): %s", program, os.getpid(), " ".join(sys.argv))
    return path


def tail(path: Path, max_bytes: int = 64_000) -> str:
    """The end of the log (the part a failure just wrote), whole lines only."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except OSError as exc:
        return f"The log {path} cannot be read: {exc.strerror}."
    if size > max_bytes:
        data = data.split(b"\n", 1)[-1]
    return data.decode("utf-8", "replace")
