"""qemu-img: argv builders and one runner (progress, cancel, errors a user can act on).

Why a runner of our own instead of ``subprocess.run``: qemu-img reports progress only as
``    (NN.NN/100%)\\r`` on stdout, a cancel must stop the child promptly and for sure (SIGTERM, then
SIGKILL after a grace period), and its error text ("Failed to get "write" lock") does not tell the
user what to do. Commands are always argv lists, never a shell; the first element is the bare
program name (``qemu-img``) so a plan's command line can be copied into a terminal as shown.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import selectors
import shlex
import shutil
import signal
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from imagegui.core.jobs import CancelledError, CancelToken, ProgressFn
from imagegui.core.qemu.processes import popen
from imagegui.core.read.allocmap import native_map
from imagegui.core.read.extents import LayerMap, MapUnavailable, normalise
from imagegui.core.read.holders import describe_holders
from imagegui.core.read.model import ImageInfo
from imagegui.core.units import printable

log = logging.getLogger(__name__)

#: Seconds between SIGTERM and SIGKILL when a run is cancelled.
GRACE_SECONDS = 5.0

_PROGRESS_RE = re.compile(rb"\((\d+(?:\.\d+)?)/100%\)")
_LOCK_RE = re.compile(r"Failed to get (shared )?\"(\w+)\" lock")
_LOCK_PATH_RES = (
    re.compile(r"Is another process using the image \[([^\]]*)\]"),
    re.compile(r"Could not open '([^']*)': Failed to get"),
)
_MISSING_BACKING_RE = re.compile(
    r"Could not open backing (?:file|image)[^']*?(?:Could not open '([^']*)')?: "
    r"No such file or directory"
)
_MISSING_BACKING_CREATE_RE = re.compile(r"Could not open '([^']*)': No such file or directory")


# --------------------------------------------------------------------------- errors


class QemuImgError(Exception):
    """qemu-img failed; ``str(exc)`` is the message to show, ``stderr`` qemu's own words."""

    def __init__(
        self,
        message: str,
        argv: Sequence[str] = (),
        returncode: int | None = None,
        stderr: str = "",
        fix_cli: str = "",
    ) -> None:
        super().__init__(message)
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr
        #: The fixing command, for the command line's text only (the window has actions).
        self.fix_cli = fix_cli


class QemuNotFoundError(QemuImgError):
    """The qemu-img (or qemu-system) binary is not installed."""


class ImageInUseError(QemuImgError):
    """Another process (usually a running VM) holds the image's lock."""

    def __init__(self, message: str, path: str, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.path = path


class NoSpaceError(QemuImgError):
    """The target file system filled up."""


class MissingBackingError(QemuImgError):
    """A backing file in the chain does not exist (moved, renamed or deleted)."""

    def __init__(self, message: str, backing: str, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.backing = backing


def error_kwargs(exc: QemuImgError) -> dict[str, Any]:
    """The keyword arguments that make another ``type(exc)`` like ``exc`` (to raise it again
    with a longer message: what state the images are in)."""
    kw: dict[str, Any] = {"argv": exc.argv, "returncode": exc.returncode, "stderr": exc.stderr}
    if isinstance(exc, ImageInUseError):
        kw["path"] = exc.path
    if isinstance(exc, MissingBackingError):
        kw["backing"] = exc.backing
    return kw


def _qemu_lines(stderr: str, program: str) -> list[str]:
    lines = []
    for line in stderr.splitlines():
        line = line.strip()
        if line.startswith(f"{program}: "):
            line = line[len(program) + 2 :]
        if line:
            lines.append(line)
    return lines


def map_error(
    argv: Sequence[str], returncode: int, stderr: str, cwd: str | None = None
) -> QemuImgError:
    """Turns qemu's stderr into the most specific exception, with a next step in the message."""
    program = os.path.basename(argv[0]) if argv else "qemu-img"
    text = " ".join(_qemu_lines(stderr, program)) or f"exit status {returncode}"
    kw: dict[str, Any] = {"argv": argv, "returncode": returncode, "stderr": stderr}
    if m := _LOCK_RE.search(stderr):
        path = next((p.group(1) for r in _LOCK_PATH_RES if (p := r.search(stderr))), "image")
        full = os.path.join(cwd or os.getcwd(), path)
        who = describe_holders(full)
        lock = f'shared "{m.group(2)}"' if m.group(1) else f'"{m.group(2)}"'
        return ImageInUseError(
            f"{path} is {who}: qemu could not get its {lock} lock. "
            "Shut the VM (or program) down first, then retry.",
            path=path,
            **kw,
        )
    if "No space left on device" in stderr:
        target = argv[-1] if argv else "the target"
        return NoSpaceError(
            f"no space left on the file system holding {target}: free some space or choose "
            f"another directory, then retry ({program}: {text})",
            **kw,
        )
    if "backing" in stderr and "No such file or directory" in stderr:
        m = _MISSING_BACKING_RE.search(stderr) or _MISSING_BACKING_CREATE_RE.search(stderr)
        backing = m.group(1) if m and m.group(1) else "?"
        return MissingBackingError(
            f"backing file {backing!r} does not exist. If it was moved or renamed, repair the "
            f"pointer to it first ({program}: {text})",
            backing=backing,
            # diagnose's fix for a missing backing, spelled out: qemu sits below chains
            fix_cli="imagegui rebase --unsafe IMAGE NEW_BASE",
            **kw,
        )
    return QemuImgError(f"{program} failed: {text}", **kw)


# --------------------------------------------------------------------------- progress


class ProgressParser:
    """Feeds raw stdout bytes, yields fractions; copes with updates split across reads."""

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> list[float]:
        self._buf += data
        *complete, self._buf = re.split(rb"[\r\n]", self._buf)
        out = []
        for seg in complete:
            if m := _PROGRESS_RE.search(seg):
                out.append(min(1.0, float(m.group(1)) / 100.0))
        return out


# --------------------------------------------------------------------------- runner


@dataclass
class Result:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> object:
        return json.loads(self.stdout)


def executable(name: str = "qemu-img") -> str:
    """The program ``name`` on PATH (the caller passes a chosen one explicitly instead)."""
    found = shutil.which(name)
    if not found:
        raise QemuNotFoundError(
            f"{name} is not installed (Debian/Ubuntu: apt install qemu-utils; "
            "Fedora: dnf install qemu-img)"
        )
    return found


def run(
    argv: Sequence[str],
    *,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    ok_codes: Sequence[int] = (0,),
    cwd: str | None = None,
    grace: float = GRACE_SECONDS,
    qemu_img: str = "",
) -> Result:
    """Runs one qemu-img command to the end; ``qemu_img`` is the program to run instead of
    ``argv[0]`` looked up on PATH (a setting; the argv shown to users keeps the bare name).

    Raises ``CancelledError`` when ``cancel`` fired and the child did not finish anyway (the
    caller knows what state that leaves and re-raises with it), a ``QemuImgError`` subclass when
    the exit status is not in ``ok_codes``.
    """
    argv = [str(a) for a in argv]
    program = qemu_img or (executable(argv[0]) if os.sep not in argv[0] else argv[0])
    real = [program, *argv[1:]]
    env = dict(os.environ, LC_ALL="C")
    cancel = cancel or CancelToken()
    cancel.raise_if_cancelled()
    try:
        # Own process group (a terminal's Ctrl-C reaches us, and we stop the child in order),
        # yet it dies with us: a SIGKILL of imagegui never leaves qemu-img writing on its own.
        proc = popen(
            real,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=env,
        )
    except FileNotFoundError as exc:
        log.error("cannot run %s: %s", printable(shlex.join(real)), exc.strerror)
        raise QemuNotFoundError(f"cannot run {real[0]}: {exc.strerror}", argv=argv) from exc
    log.info("run (pid %d): %s", proc.pid, printable(shlex.join(real)))

    killer = threading.Timer(grace, _kill, args=(proc,))
    killer.daemon = True

    def terminate() -> None:
        if proc.poll() is None:
            _signal_group(proc, signal.SIGTERM)
            killer.start()

    unregister = cancel.on_cancel(terminate)
    try:
        out, err = _pump(proc, ProgressParser() if progress else None, progress, cancel)
        rc = proc.wait()
    finally:
        unregister()
        killer.cancel()
        if proc.poll() is None:  # an exception (KeyboardInterrupt) left it running
            _kill(proc)
            proc.wait()
    if rc in ok_codes:
        log.info("exit status %d (pid %d): %s", rc, proc.pid, argv[0])
        return Result(argv, rc, out, err)
    if cancel.cancelled:
        log.warning("cancelled (pid %d, exit status %d): %s", proc.pid, rc, argv[0])
        raise CancelledError("cancelled")
    log.warning(
        "exit status %d (pid %d): %s: %s", rc, proc.pid, argv[0], printable(err.strip()[-2000:])
    )
    raise map_error(argv, rc, err, cwd=cwd)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    """Signals the child's whole process group (it leads one): nothing it spawned survives."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        _signal_group(proc, signal.SIGKILL)


def _pump(
    proc: subprocess.Popen,
    parser: ProgressParser | None,
    progress: ProgressFn | None,
    cancel: CancelToken,
) -> tuple[str, str]:
    """Reads stdout and stderr until both close, without a thread per pipe."""
    chunks: dict[int, list[bytes]] = {}
    with selectors.DefaultSelector() as sel:
        for f in (proc.stdout, proc.stderr):
            assert f is not None
            sel.register(f.fileno(), selectors.EVENT_READ)
            chunks[f.fileno()] = []
        out_fd = proc.stdout.fileno()  # type: ignore[union-attr]
        open_fds = len(chunks)
        last = -1.0
        while open_fds:
            for key, _ in sel.select():
                data = os.read(key.fd, 65536)
                if not data:
                    sel.unregister(key.fd)
                    open_fds -= 1
                    continue
                chunks[key.fd].append(data)
                if parser and progress and key.fd == out_fd:
                    for fraction in parser.feed(data):
                        # After a cancel the bar stops: lines still in the pipe are stale.
                        if fraction != last and not cancel.cancelled:
                            last = fraction
                            progress(fraction)
        err_fd = proc.stderr.fileno()  # type: ignore[union-attr]
        out = b"".join(chunks[out_fd]).decode(errors="replace")
        err = b"".join(chunks[err_fd]).decode(errors="replace")
    proc.stdout.close()  # type: ignore[union-attr]
    proc.stderr.close()  # type: ignore[union-attr]
    return out, err


# --------------------------------------------------------------------------- argv builders
# Every builder passes the image's own format (-f): qemu then never probes, which is both faster
# and safe (a raw file a guest wrote a qcow2 header into stays raw).


def create_overlay_argv(
    base_name: str, base_format: str, new: str, size: int | None = None
) -> list[str]:
    """A qcow2 overlay recording the backing name exactly as given and its real format."""
    argv = ["qemu-img", "create", "-f", "qcow2", "-b", base_name, "-F", base_format, new]
    if size is not None:
        argv.append(str(size))
    return argv


def rebase_argv(
    image: str, image_format: str, backing: str, backing_format: str | None, unsafe: bool
) -> list[str]:
    """``backing=""`` makes the image independent (safe mode copies everything in)."""
    argv = ["qemu-img", "rebase", "-f", image_format]
    argv += ["-u"] if unsafe else ["-p"]
    argv += ["-b", backing]
    if backing and backing_format:
        argv += ["-F", backing_format]
    argv.append(image)
    return argv


def compare_argv(a: str, a_format: str, b: str, b_format: str) -> list[str]:
    """Exit 0 when both images (with their backing chains) show the guest the same bytes."""
    return ["qemu-img", "compare", "-U", "-f", a_format, "-F", b_format, a, b]


def commit_argv(image: str, image_format: str) -> list[str]:
    return ["qemu-img", "commit", "-p", "-f", image_format, image]


def convert_argv(
    src: str,
    src_format: str,
    out: str,
    out_format: str = "qcow2",
    *,
    compress: bool = False,
    options: Sequence[str] = (),
    backing: tuple[str, str] | None = None,
) -> list[str]:
    """``backing``: (name to store, its format) for an output that keeps the source's backing
    file (``-B``): only what the source's top layer holds is copied. ``options``: ``-o`` ones
    of the output format (``subformat=streamOptimized``)."""
    argv = ["qemu-img", "convert", "-p", "-f", src_format, "-O", out_format]
    if compress:
        argv.append("-c")
    if options:
        argv += ["-o", ",".join(options)]
    if backing is not None:
        argv += ["-B", backing[0], "-F", backing[1]]
    return [*argv, src, out]


def create_argv(path: str, fmt: str, size: int, preallocation: str = "off") -> list[str]:
    """A new, blank image (no backing file)."""
    argv = ["qemu-img", "create", "-f", fmt]
    if preallocation != "off":
        argv += ["-o", f"preallocation={preallocation}"]
    return [*argv, path, str(size)]


def resize_argv(image: str, image_format: str, size: int, shrink: bool = False) -> list[str]:
    """To the absolute ``size`` in bytes; qemu-img refuses to shrink without ``--shrink``."""
    argv = ["qemu-img", "resize", "-f", image_format]
    if shrink:
        argv.append("--shrink")
    return [*argv, image, str(size)]


def snapshot_argv(action: str, image: str, name: str = "") -> list[str]:
    """``action``: ``create``, ``apply`` or ``delete`` (a qcow2 internal snapshot ``name``),
    or ``list``."""
    flag = {"create": "-c", "apply": "-a", "delete": "-d", "list": "-l"}[action]
    argv = ["qemu-img", "snapshot", "--image-opts", flag]
    if action != "list":
        argv.append(name)
    # qemu-img snapshot has no -f: the format is named in the options, so qemu never probes.
    return [*argv, "driver=qcow2,file.driver=file,file.filename=" + image.replace(",", ",,")]


def measure_argv(src: str, src_format: str, out_format: str = "qcow2") -> list[str]:
    return ["qemu-img", "measure", "--output=json", "-f", src_format, "-O", out_format, src]


def measure_size_argv(size: int, out_format: str, preallocation: str = "off") -> list[str]:
    """What a new blank image of ``size`` bytes needs on disk (no source file)."""
    argv = ["qemu-img", "measure", "--output=json", "--size", str(size), "-O", out_format]
    if preallocation != "off":
        argv += ["-o", f"preallocation={preallocation}"]
    return argv


def check_argv(
    image: str, image_format: str, repair: str | None = None, force_share: bool = False
) -> list[str]:
    argv = ["qemu-img", "check", "--output=json", "-f", image_format]
    if repair:
        argv += ["-r", repair]
    if force_share:
        argv.append("-U")
    argv.append(image)
    return argv


def map_argv(image: str, image_format: str) -> list[str]:
    return ["qemu-img", "map", "--output=json", "-U", "-f", image_format, image]


def own_data(image: str, image_format: str, qemu_img: str = "") -> int:
    """Bytes of guest data ``image`` itself stores (not read through its backing file): what a
    commit moves out of it. Reads the allocation map only (``qemu-img map``)."""
    extents = run(map_argv(image, image_format), qemu_img=qemu_img).json()
    assert isinstance(extents, list)
    return sum(
        int(e["length"])
        for e in extents
        if e.get("depth") == 0 and (e.get("data") or e.get("zero"))
    )


def layer_map_argv(image: str, image_format: str) -> list[str]:
    """``qemu-img map`` of ``image`` alone: its backing file is not opened (``backing: null``),
    so every range is this layer's own, and a missing or broken backing file does not matter.

    The image is named by a ``json:`` filename (the only spelling of ``backing: null`` on the
    command line that qemu does not warn about); a path that is not valid UTF-8 cannot be
    written in JSON, so that one is named by ``--image-opts`` with ``backing=`` instead (the
    same meaning, deprecated spelling).
    """
    path = os.path.abspath(image)
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        opts = f"driver={image_format},backing=,file.driver=file,file.filename="
        return [
            "qemu-img",
            "map",
            "--output=json",
            "-U",
            "--image-opts",
            opts + path.replace(",", ",,"),
        ]
    spec = {"driver": image_format, "backing": None, "file": {"driver": "file", "filename": path}}
    return ["qemu-img", "map", "--output=json", "-U", "json:" + json.dumps(spec)]


def layer_map(
    path: str, fmt: str, cancel: CancelToken | None = None, qemu_img: str = ""
) -> LayerMap:
    """What ``path`` itself stores and zeroes, as ``qemu-img map`` reports it (the slow path of
    :func:`read_layer_map`, for every format qemu opens).

    Raises :class:`MapUnavailable` (message for the user) when qemu-img cannot read the map,
    ``CancelledError`` when ``cancel`` fired.
    """
    name = os.path.basename(path)
    try:
        result = run(layer_map_argv(path, fmt), cancel=cancel, qemu_img=qemu_img)
    except QemuNotFoundError as exc:
        raise MapUnavailable(f"cannot read what {name} holds: {exc}") from exc
    except QemuImgError as exc:
        raise MapUnavailable(f"qemu-img cannot read what {name} holds: {exc}") from exc
    try:
        return parse_layer_map(result.stdout)
    except (ValueError, KeyError, TypeError) as exc:
        raise MapUnavailable(
            f"qemu-img printed a map of {name} that cannot be read ({exc}); "
            "check the installed qemu-img"
        ) from exc


def read_layer_map(
    info: ImageInfo, cancel: CancelToken | None = None, qemu_img: str = ""
) -> LayerMap:
    """The map of one scanned image's own file: read natively where ``core.read.allocmap``
    can (no process, microseconds), else by ``qemu-img map`` on the layer alone.

    Raises :class:`MapUnavailable` (message for the user) when neither can read it,
    ``CancelledError`` when ``cancel`` fired. An image the native reader finds damaged (a
    table past the end of the file, misaligned offsets) is not handed to qemu-img, which
    reads such tables as zeroes or fails the same way.
    """
    if cancel is not None:
        cancel.raise_if_cancelled()
    native = native_map(info)
    if native is not None:
        return native
    return layer_map(info.path, info.format, cancel=cancel, qemu_img=qemu_img)


def parse_layer_map(text: str) -> LayerMap:
    """The :class:`LayerMap` in ``qemu-img map --output=json`` of one layer opened alone:
    depth-0 extents that are present hold data (``data: true``) or read as zeroes
    (``zero: true``, ``data: false``); the rest falls through to the backing file."""
    extents = json.loads(text)
    if not isinstance(extents, list):
        raise ValueError("not a list of extents")
    data: list[tuple[int, int]] = []
    zero: list[tuple[int, int]] = []
    end = 0
    for e in extents:
        start, length = int(e["start"]), int(e["length"])
        end = max(end, start + length)
        if e.get("depth", 0) != 0 or not e.get("present"):
            continue
        if e.get("data"):
            data.append((start, start + length))
        elif e.get("zero"):
            zero.append((start, start + length))
    return LayerMap(end, normalise(data), normalise(zero), source="qemu-img map")


#: ``qemu-img check`` exit statuses that still print a JSON report.
CHECK_EXIT = {0: "ok", 1: "check error", 2: "corrupt", 3: "leaks", 63: "check not supported"}


@dataclass(frozen=True)
class Measure:
    #: Bytes the new image needs for the data it will hold.
    required: int
    #: Bytes it would need fully allocated.
    fully_allocated: int


def measure(
    src: str,
    src_format: str,
    out_format: str = "qcow2",
    cancel: CancelToken | None = None,
    qemu_img: str = "",
    argv: Sequence[str] | None = None,
) -> Measure:
    """``argv``: another measure command line (``measure_size_argv``) instead of the source's."""
    argv = argv or measure_argv(src, src_format, out_format)
    data = run(argv, cancel=cancel, qemu_img=qemu_img).json()
    assert isinstance(data, dict)
    return Measure(int(data["required"]), int(data["fully-allocated"]))
