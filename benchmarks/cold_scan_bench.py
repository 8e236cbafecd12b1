"""How fast is ``imagegui scan --json`` when the files are not in the page cache?

Makes N real qcow2 images in chains (``scan_bench.make_tree``), then times, each as a whole
process, run in turn so all see the same machine noise:
  * a bare sequential loop: walk, open each file, read its first 4 KiB (what the probe reads of
    a qcow2 image: ``probe.HEAD_SIZE``; --bare-bytes to change), close;
  * the same loop on 8 threads (what parallel reads can reach);
  * imagegui scan --json as shipped (reads="auto": serial until the walk waits on storage);
  * imagegui scan --json with reads forced "serial" and "parallel" (``scan_directory``'s
    parameter, set in the child process);
  * ``scan_directory`` alone (auto, serial, parallel), timed inside a process after its imports:
    a cold process spends most of its time importing Python modules one file after another;

cold (``sync; echo 3 > /proc/sys/vm/drop_caches`` before every run: only as root; otherwise it
says so and measures warm only) and warm, the median of --runs runs each, with each figure's
ratio to the bare sequential loop next to its target (cold <= 0.5x, warm <= 3x) and the load
average, since a machine shared with other work moves every figure.

    .venv/bin/python benchmarks/cold_scan_bench.py [--count 10000] [--keep DIR] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from functools import partial

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ensure_tree, figure, load, median_of, scratch  # noqa: E402

from imagegui.core.read.probe import HEAD_SIZE  # noqa: E402

BARE_LOOP = """
import os, sys
from concurrent.futures import ThreadPoolExecutor

def read(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.read(fd, size)
    finally:
        os.close(fd)

root, threads, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
paths = (os.path.join(top, name) for top, _, names in os.walk(root) for name in sorted(names))
if threads == 1:
    for path in paths:
        read(path)
else:
    with ThreadPoolExecutor(threads) as pool:
        for _ in pool.map(read, paths):
            pass
"""

SCAN_ONLY = """
import sys, time
from imagegui.core.read.scan import scan_directory
start = time.perf_counter()
scan_directory(sys.argv[1], reads=sys.argv[2])
print(time.perf_counter() - start)
"""

FORCED = """
import sys
from imagegui.core.read import scan
mode = sys.argv.pop(1)
real = scan.scan_directory
scan.scan_directory = lambda root, progress=None, reads="auto": real(root, progress, mode)
from imagegui.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


def drop_caches() -> None:
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def timed(argv: list[str], cold: bool) -> float:
    """Wall time of the process, or the time it prints itself (``SCAN_ONLY``)."""
    if cold:
        drop_caches()
    start = time.perf_counter()
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    wall = time.perf_counter() - start
    return float(out) if SCAN_ONLY in argv else wall


def table(title: str, figures: dict[str, float], targets: dict[str, str]) -> None:
    bare = figures["bare loop, 1 thread"]
    print(f"\n{title}")
    for name, seconds in figures.items():
        figure(
            f"  {name}",
            seconds,
            "s",
            target=targets.get(name, ""),
            note=f"{seconds / bare:.2f}x bare loop",
            digits=3,
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=10_000)
    ap.add_argument("--chain", type=int, default=10, help="images per chain")
    ap.add_argument("--keep", help="build the tree here and keep it (reused if it exists)")
    ap.add_argument("--runs", type=int, default=5, help="runs of each command; the median counts")
    ap.add_argument(
        "--bare-bytes", type=int, default=HEAD_SIZE, help="bytes the bare loop reads of each file"
    )
    args = ap.parse_args()
    with scratch(args.keep, "imagegui-cold-bench-") as root:
        py = sys.executable
        commands = {
            "bare loop, 1 thread": [py, "-c", BARE_LOOP, root, "1", str(args.bare_bytes)],
            "bare loop, 8 threads": [py, "-c", BARE_LOOP, root, "8", str(args.bare_bytes)],
            "imagegui scan --json (auto)": [py, "-m", "imagegui", "scan", "--json", root],
            "imagegui scan --json, serial": [py, "-c", FORCED, "serial", "scan", "--json", root],
            "imagegui scan --json, parallel": [
                py,
                "-c",
                FORCED,
                "parallel",
                "scan",
                "--json",
                root,
            ],
            "scan_directory only (auto)": [py, "-c", SCAN_ONLY, root, "auto"],
            "scan_directory only, serial": [py, "-c", SCAN_ONLY, root, "serial"],
            "scan_directory only, parallel": [py, "-c", SCAN_ONLY, root, "parallel"],
        }
        ensure_tree(root, args.count, args.chain)
        files = sum(len(names) for _, _, names in os.walk(root))
        print(
            f"{files} images; {os.cpu_count()} CPUs; median of {args.runs} runs; the bare loop "
            f"reads {args.bare_bytes} bytes a file"
        )
        print(f"before: {load()} (1, 5, 15 min)")
        if os.geteuid() == 0:
            cold = median_of({n: partial(timed, a, True) for n, a in commands.items()}, args.runs)
            print(f"after the cold runs: {load()}")
        else:
            cold = None
            print("not root: cannot drop the page cache, so only warm figures are measured")
        for argv in commands.values():
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)  # warm the page cache
        warm = median_of({n: partial(timed, a, False) for n, a in commands.items()}, args.runs)
        print(f"after the warm runs: {load()}")
        if cold is not None:
            table(
                "cold page cache (dropped before every run)",
                cold,
                {"imagegui scan --json (auto)": "<= 0.50x"},
            )
        table("warm page cache", warm, {"imagegui scan --json (auto)": "<= 3.00x"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
