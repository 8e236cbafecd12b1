"""What the benchmark scripts share: the tree of images they time, the load they ran under, the
best or median of repeated runs, one line per figure beside its target, and a window started in
a child process.

Kept in one place so that every script makes the same tree, measures repeated runs the same way
(in turn, so all commands see the same machine noise) and prints its figures alike: on a shared
2-core machine the figures are only comparable when the scaffolding around them is.
Scripts import it after putting this folder on ``sys.path`` (``from common import ...``).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

HERE = Path(__file__).resolve().parent
CHAIN_NAME = "c{chain:06d}-d{depth:03d}.qcow2"
LABEL_WIDTH = 40

K = TypeVar("K")


# -- the tree of images ------------------------------------------------------------------------


def _template(
    tmp: str, backing: str | None, writes: tuple[str, ...] = ()
) -> tuple[list[tuple[int, bytes]], int]:
    """A qcow2 image made by qemu-img (with data written by qemu-io ``writes``), as its
    non-zero 4 KiB blocks and its length."""
    path = os.path.join(tmp, "template.qcow2")
    args = ["qemu-img", "create", "-q", "-f", "qcow2"]
    if backing:
        args += ["-b", backing, "-F", "qcow2", "-u"]
    subprocess.run([*args, path, "1G"], check=True)
    if writes:
        # The backing file does not exist yet: an overlay is opened alone to write its data.
        io, opened = ["qemu-io", "-f", "qcow2"], path
        if backing:
            io, opened = ["qemu-io", "--image-opts"], f"driver=qcow2,backing=,file.filename={path}"
        for w in writes:
            io += ["-c", w]
        subprocess.run([*io, opened], check=True, capture_output=True)
    with open(path, "rb") as f:
        data = f.read()
    os.unlink(path)
    blocks = [(off, data[off : off + 4096]) for off in range(0, len(data), 4096)]
    return [(o, b) for o, b in blocks if b.strip(b"\0")], len(data)


def make_tree(
    root: str,
    count: int,
    chain: int,
    per_dir: int = 1000,
    writes: tuple[tuple[str, ...], tuple[str, ...]] = ((), ()),
) -> None:
    """``count`` real qcow2 images in chains of ``chain``, ``per_dir`` to a directory (a
    multiple of ``chain``: a chain never spans directories). A template made by qemu-img is
    copied with only the backing name patched, written sparse so 100,000 images cost little
    disk; ``writes``: the qemu-io commands that give the base and the overlay templates data."""
    sample = CHAIN_NAME.format(chain=0, depth=0)
    base_blocks, size = _template(root, None, writes[0])
    over_blocks, osize = _template(root, sample, writes[1])
    name_at = over_blocks[0][1].index(sample.encode())
    for i in range(count):
        c, d = divmod(i, chain)
        sub = os.path.join(root, f"dir{i // per_dir:04d}")
        if i % per_dir == 0:
            os.makedirs(sub, exist_ok=True)
        name = CHAIN_NAME.format(chain=c, depth=d)
        if d == 0 or i % per_dir == 0:
            # The chain's first image in this directory: a base (a chain never spans directories
            # in this layout because per_dir is a multiple of chain).
            blocks, length = base_blocks, size
        else:
            backing = CHAIN_NAME.format(chain=c, depth=d - 1).encode()
            first = over_blocks[0][1]
            first = first[:name_at] + backing + first[name_at + len(backing) :]
            blocks, length = [(0, first), *over_blocks[1:]], osize
        fd = os.open(os.path.join(sub, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        for off, block in blocks:
            os.pwrite(fd, block, off)
        os.ftruncate(fd, length)
        os.close(fd)


def punch_holes(root: str | Path, count: int, chain: int = 10, every: int = 97) -> None:
    """Deletes the middle image (depth 4) of every ``every``-th chain of a ``make_tree`` tree
    of 1,000 images a directory, so some trees are broken as on a real host."""
    for c in range(3, count // chain, every):
        path = Path(root, f"dir{c * chain // 1000:04d}", CHAIN_NAME.format(chain=c, depth=4))
        path.unlink()


def ensure_tree(
    root: str | Path,
    count: int,
    chain: int = 10,
    per_dir: int = 1000,
    make: Callable[[str, int, int, int], None] = make_tree,
) -> None:
    """Makes the tree in ``root`` unless it already holds something (a tree kept by ``--keep``
    from an earlier run is reused as it is), and says how long making it took."""
    root = str(root)
    if os.path.isdir(root) and os.listdir(root):
        return
    os.makedirs(root, exist_ok=True)
    t = time.perf_counter()
    make(root, count, chain, per_dir)
    print(f"made {count:,} qcow2 images in {time.perf_counter() - t:.1f} s: {root}")


@contextmanager
def scratch(keep: str | None, prefix: str) -> Iterator[str]:
    """The benchmark's folder: ``keep`` when given (left in place afterwards, to be reused),
    otherwise a new temporary folder removed at the end, whatever happens (100,000-image
    trees take 1-2 GB)."""
    root = keep or tempfile.mkdtemp(prefix=prefix)
    try:
        yield root
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


# -- the machine's load ------------------------------------------------------------------------


def load() -> str:
    """The load average (1, 5 and 15 min) now, to print beside a figure: on a shared machine
    every figure moves with it."""
    return "load {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def load1() -> float:
    """The 1-minute load average now."""
    return os.getloadavg()[0]


def print_load(before: float, note: str = "", width: int = LABEL_WIDTH) -> None:
    """The closing line of a run: the 1-minute load before and after, the CPUs, and ``note``
    (how the figures were picked, e.g. "best of 5 runs")."""
    extra = f"; {note}" if note else ""
    print(
        f"{'load average (1 min)':<{width}} {before:>9.1f} before, {load1():.1f} after  "
        f"({os.cpu_count()} CPUs{extra})"
    )


def bare_python_loop() -> float:
    """Seconds for a fixed pure-Python loop: the machine's speed (and load) right now, to
    compare figures taken on a busier or quieter machine (a slower loop: a busier one)."""
    t = time.perf_counter()
    total = 0
    for i in range(3_000_000):
        total += i & 7
    return time.perf_counter() - t


# -- repeated runs -----------------------------------------------------------------------------


def run_process(argv: list[str]) -> float:
    """Wall seconds of one run of ``argv`` as a whole process (its output dropped)."""
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def in_turn(
    timers: Mapping[K, Callable[[], float]],
    runs: int,
    pick: Callable[[list[float]], float] = min,
) -> dict[K, float]:
    """Runs every timer once per round, ``runs`` rounds, so all see the same machine noise,
    and picks one figure of each from its runs (``min``: the best, the run least disturbed by
    other work; or ``statistics.median``)."""
    times: dict[K, list[float]] = {name: [] for name in timers}
    for _ in range(runs):
        for name, timer in timers.items():
            times[name].append(timer())
    return {name: pick(t) for name, t in times.items()}


def best_of(commands: list[list[str]], runs: int = 5) -> list[float]:
    """Best wall time of each command as a whole process, the commands run in turn."""
    timers = {i: (lambda argv=argv: run_process(argv)) for i, argv in enumerate(commands)}
    return list(in_turn(timers, runs).values())


def median_of(commands: Mapping[K, Callable[[], float]], runs: int) -> dict[K, float]:
    """Median of each timer's ``runs`` runs, run in turn."""
    return in_turn(commands, runs, statistics.median)


class Best:
    """The best wall time and the best CPU time (this process's: what the work needs of a
    core, nearly free of the other work on a shared machine) of repeated calls."""

    def __init__(self) -> None:
        self.wall = self.cpu = float("inf")

    def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn(*args)
        self.wall = min(self.wall, time.perf_counter() - wall)
        self.cpu = min(self.cpu, time.process_time() - cpu)
        return out

    def __str__(self) -> str:
        return f"{self.wall:7.3f} s ({self.cpu:.3f} CPU)"


# -- printing ----------------------------------------------------------------------------------


def figure(
    label: str,
    value: float,
    unit: str,
    target: str = "",
    note: str = "",
    digits: int = 2,
    width: int = LABEL_WIDTH,
) -> None:
    """One figure a line, in the one format every script uses: the label, the value and its
    unit, then its target and a note in brackets, e.g.
    ``start to fully drawn graph                    3.91 s   (target <= 4 s; at 100,000)``."""
    told = [f"target {target}"] if target else []
    told += [note] if note else []
    brackets = f" ({'; '.join(told)})" if told else ""
    print(f"{label:<{width}} {value:>9,.{digits}f} {unit:<3}{brackets}".rstrip())


# -- the window in a child process -------------------------------------------------------------


def open_window(size: tuple[int, int] = (1440, 900), auto_rescan: bool = False):  # noqa: ANN201
    """In the child: the application and a main window with its own throw-away settings (so
    no user's settings or recent folders count), shown offscreen unless a display is there.
    Returns ``(app, window, settings_dir)``; remove ``settings_dir`` at the end."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QSettings

    import imagegui.gui  # noqa: F401  (the PySide6 guard)
    from imagegui.gui.app import make_app
    from imagegui.gui.main_window import MainWindow
    from imagegui.gui.settings import Settings

    app = make_app([])
    conf = tempfile.mkdtemp(prefix="imagegui-bench-conf-")
    settings = Settings(QSettings(os.path.join(conf, "s.ini"), QSettings.Format.IniFormat))
    if not auto_rescan:
        settings.set_auto_rescan(False)
    window = MainWindow(settings)
    window.ask_before_closing = False
    window.resize(*size)
    window.show()
    return app, window, conf


def wait_for(signal: Any, timeout_ms: int = 600_000) -> None:
    """Runs the event loop until ``signal`` is emitted (or the timeout)."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    signal.connect(loop.quit)
    QTimer.singleShot(timeout_ms, loop.quit)
    loop.exec()
    signal.disconnect(loop.quit)


RESULT = "RESULT "


def child_result(out: dict[str, Any]) -> None:
    """The child's figures, one JSON line for ``run_child`` to read."""
    print(RESULT + json.dumps(out), flush=True)


def run_child(script: str, *args: str) -> dict[str, Any] | None:
    """Runs ``script --child ARGS`` in a fresh process (start-up and memory then count from
    the interpreter's start) and returns the figures it printed with ``child_result``; None,
    with its output shown, when it failed."""
    proc = subprocess.run(
        [sys.executable, script, "--child", *args], capture_output=True, text=True
    )
    if proc.returncode != 0 or RESULT not in proc.stdout:
        print(proc.stdout, proc.stderr, file=sys.stderr)
        return None
    return json.loads(proc.stdout.split(RESULT, 1)[1])
