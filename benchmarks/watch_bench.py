"""What live updates cost at 100,000 images: adding the inotify watches, their memory, and the
time from a changed file to the updated window.

Makes N real qcow2 images (``scan_bench.make_tree``, 10 to a directory by default: 10,000
directories to watch, the harder case) and prints, with the load average beside each figure:
  * the time to add a watch to every directory (``core.read.watch.TreeWatcher.add_tree``: walk
    and ``inotify_add_watch``), next to a bare walk that only lists the same directories (the
    ratio is the figure to read on a busy machine), best of --runs;
  * the memory it costs: the Python side (tracemalloc, what the watcher keeps) and the kernel's
    (``inotify_inode_mark`` objects in /proc/slabinfo, readable by root only);
  * from a file written in the tree to the watcher's report (median of 20);
  * with --window: the window open on the tree (offscreen), a new overlay written into it, and
    the time until the window shows it (ready), of which the debounce is a fixed 0.8 s.

    .venv/bin/python benchmarks/watch_bench.py [--count 100000] [--per-dir 10] [--keep DIR]
        [--runs 3] [--window]
"""

from __future__ import annotations

import argparse
import gc
import os
import queue
import shutil
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from common import ensure_tree, load, open_window, scratch, wait_for  # noqa: E402

from imagegui.core.read.watch import TreeWatcher, read_limit  # noqa: E402


def bare_walk(root: str) -> int:
    """Lists every directory as the watcher does (scandir, d_type), adding nothing."""
    stack, n = [root], 0
    while stack:
        d = stack.pop()
        n += 1
        with os.scandir(d) as it:
            stack.extend(e.path for e in it if e.is_dir(follow_symlinks=False))
    return n


def slab_marks() -> tuple[int, int] | None:
    """(objects, bytes) of the kernel's inotify marks, or None when slabinfo is not readable."""
    try:
        with open("/proc/slabinfo") as f:
            for line in f:
                if line.startswith("inotify_inode_mark "):
                    fields = line.split()
                    return int(fields[1]), int(fields[1]) * int(fields[3])
    except OSError:
        return None
    return None


def time_watches(root: str, runs: int) -> None:
    walk_best = add_best = float("inf")
    folders = 0
    for _ in range(runs):
        t = time.perf_counter()
        bare_walk(root)
        walk_best = min(walk_best, time.perf_counter() - t)
        watcher = TreeWatcher(root, lambda c: None)
        from inotify_simple import INotify

        watcher.inotify = INotify()
        t = time.perf_counter()
        watcher.add_tree(root)
        add_best = min(add_best, time.perf_counter() - t)
        folders = len(watcher.paths)
        if watcher.limited:
            print(f"  watch limit reached: {folders:,} watched, {watcher.unwatched:,} not")
        watcher.inotify.close()
    print(
        f"adding watches to {folders:,} folders: {add_best:.3f} s; bare walk of the same "
        f"folders {walk_best:.3f} s; ratio {add_best / walk_best:.1f}x  ({load()})"
    )


def slab_kib() -> int:
    """The kernel's unreclaimable slab memory (KiB, /proc/meminfo): where inotify marks live.
    Machine-wide, so other work moves it: read as a rough figure."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("SUnreclaim:"):
                return int(line.split()[1])
    return 0


def memory(root: str) -> None:
    from inotify_simple import INotify

    gc.collect()
    before_slab = slab_marks()
    before_kib = slab_kib()
    tracemalloc.start()
    watcher = TreeWatcher(root, lambda c: None)
    watcher.inotify = INotify()
    watcher.add_tree(root)
    kept, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    after_slab = slab_marks()
    after_kib = slab_kib()
    watcher.inotify.close()
    freed_kib = slab_kib()
    n = len(watcher.paths)
    print(
        f"memory of {n:,} watches: Python {kept / 2**20:.1f} MiB kept "
        f"({kept / n:.0f} B a folder), peak {peak / 2**20:.1f} MiB"
    )
    if before_slab is not None and after_slab is not None:
        objs = after_slab[0] - before_slab[0]
        size = after_slab[1] - before_slab[1]
        print(
            f"  kernel: {objs:,} inotify marks, {size / 2**20:.1f} MiB of slab "
            f"({size / max(1, objs):.0f} B each; other users' marks move this figure)"
        )
    else:
        print(
            f"  kernel: unreclaimable slab +{(after_kib - before_kib) / 1024:.1f} MiB while "
            f"watching ({(after_kib - before_kib) * 1024 / n:.0f} B a folder), "
            f"{(after_kib - freed_kib) / 1024:.1f} MiB given back when closed (machine-wide "
            "figure: other work moves it)"
        )


def latency(root: str) -> None:
    reports: queue.Queue = queue.Queue()
    watcher = TreeWatcher(root, reports.put)
    statuses: queue.Queue = queue.Queue()
    watcher.on_status = statuses.put
    watcher.start()
    statuses.get(timeout=120)
    dirs = sorted(d for d in os.listdir(root) if d.startswith("dir"))
    times = []
    for i in range(20):
        path = os.path.join(root, dirs[(i * 397) % len(dirs)], f"touched{i}.raw")
        t = time.perf_counter()
        with open(path, "wb"):
            pass
        while path not in reports.get(timeout=30).paths:
            pass
        times.append(time.perf_counter() - t)
        os.unlink(path)
    watcher.stop()
    print(
        f"file written -> watcher's report: median {statistics.median(times) * 1000:.2f} ms, "
        f"worst {max(times) * 1000:.2f} ms  ({load()})"
    )


def window_child(root: str, touches: int) -> None:
    """In a fresh process: open the window on ``root``, then write a new overlay ``touches``
    times and time each until the window shows it."""
    app, window, conf = open_window((1280, 800), auto_rescan=True)

    t = time.perf_counter()
    window.open_directory(root)
    wait_for(window.ready)
    print(f"window: {window.session.snapshot.image_count:,} images drawn in "
          f"{time.perf_counter() - t:.1f} s  ({load()})")  # fmt: skip
    while window.session.live.status is None:
        wait_for(window.session.watchStatusChanged)
    print(f"window: {window.status.watching.text()}")
    folder = os.path.join(root, "dir0003")
    base = os.path.join(folder, min(n for n in os.listdir(folder) if n.endswith("-d000.qcow2")))
    for i in range(touches):
        new = os.path.join(folder, f"live{i}.qcow2")
        if os.path.exists(new):  # left by an earlier run (--keep): gone first
            os.unlink(new)
            while new in window.session.snapshot.graph.nodes:
                wait_for(window.ready)
        t = time.perf_counter()
        subprocess.run(
            ["qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", new],
            check=True,
        )
        made = time.perf_counter() - t
        while new not in window.session.snapshot.graph.nodes:
            wait_for(window.ready)
        total = time.perf_counter() - t
        timings = window.session.snapshot.timings
        scan = timings.get("scan", 0.0)
        told = window.session.scan_changed
        hint = "everything" if told is None else f"{len(told)} changed paths"
        print(
            f"new overlay -> window shows it: {total:.2f} s (qemu-img {made:.2f} s, debounce "
            f"0.80 s, scan {scan:.2f} s told {hint}, job {sum(timings.values()):.2f} s)  "
            f"({load()})"
        )
    window.session.stop()
    window.close()
    app.quit()
    shutil.rmtree(conf, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=100_000)
    ap.add_argument("--chain", type=int, default=10)
    ap.add_argument("--per-dir", type=int, default=10)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keep", help="make (or reuse) the tree in this directory")
    ap.add_argument("--window", action="store_true", help="also time the window's live update")
    ap.add_argument("--touches", type=int, default=3)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        window_child(args.child, args.touches)
        return 0
    with scratch(args.keep, "watch-bench-") as root:
        ensure_tree(root, args.count, args.chain, args.per_dir)
        print(f"fs.inotify.max_user_watches = {read_limit()}")
        time_watches(root, args.runs)
        memory(root)
        latency(root)
        if args.window:
            subprocess.run(
                [sys.executable, __file__, "--child", root, "--touches", str(args.touches)],
                check=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
