"""How fast is ``imagegui scan --json`` when the files are not in the page cache?

Makes N real qcow2 images in chains (``common.ensure_tree``), then times, each as a whole
process, run in turn so all see the same machine noise:
  * a bare sequential loop: walk, open each file, read its first 4 KiB (what the probe reads of
    a qcow2 image: ``probe.HEAD_SIZE``; --bare-bytes to change), close;
  * the same loop on 8 threads (what parallel reads can reach);
  * imagegui scan --json as shipped (reads="auto": serial until the walk waits on storage);
  * imagegui scan --json with reads forced "serial" and "parallel" (``scan_directory``'s
    parameter, set in the child process);
  * ``scan_directory`` alone (auto, serial, parallel), timed inside a process after its imports:
    a cold process spends most of its time importing Python modules one file after another;
  * imagegui scan --json without reading ahead the files it imports (``imagegui.startup``: a
    cold start reads last start's modules ahead on 16 threads) and the imports alone, so the
    whole process, the scan inside it and its imports are printed side by side;
  * with --compare-with CHECKOUT, imagegui scan --json of another checkout (e.g. main before a
    change), in the same turns;

cold (``sync; echo 3 > /proc/sys/vm/drop_caches`` before every run: only as root; otherwise it
says so and measures warm only) and warm, the median of --runs runs each, with each figure's
ratio to the bare sequential loop next to its target (cold <= 0.5x, warm <= 3x) and the load
average, since a machine shared with other work moves every figure.

The children import bytecode as an installed package does (``PYTHONPYCACHEPREFIX`` in the
scratch directory, written by a warm-up run; a checkout run with PYTHONDONTWRITEBYTECODE would
compile every imagegui module at each start), keep their start-up lists there too, and ask no
libvirt daemon (``IMAGEGUI_LIBVIRT_URIS`` empty: one that answers adds its own connection).

    .venv/bin/python benchmarks/cold_scan_bench.py [--count 10000] [--keep DIR] [--runs 5]
        [--compare-with CHECKOUT]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
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

IMPORTS_ONLY = """
import imagegui.cli.scan_cmds, networkx
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


#: What each child runs under: (argv, environment).
Command = tuple[list[str], dict[str, str]]

#: The checkout this script is in: the children import its imagegui.
CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def child_env(scratch_dir: str, checkout: str | None = None, **extra: str) -> dict[str, str]:
    """The children's environment: bytecode and start-up lists in ``scratch_dir``, no
    libvirt, ``checkout`` (default: this script's) first on the path."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = os.path.join(scratch_dir, "pycache")
    env["IMAGEGUI_STARTUP_DIR"] = os.path.join(scratch_dir, "startup")
    env["IMAGEGUI_LIBVIRT_URIS"] = ""
    # Started in the scratch folder: ``python -m`` and ``-c`` put the working directory first
    # on the path, and a checkout there would win over ``checkout``.
    env["IMAGEGUI_BENCH_CWD"] = scratch_dir
    checkout = checkout or CHECKOUT
    env["PYTHONPATH"] = os.pathsep.join([checkout, *filter(None, [env.get("PYTHONPATH")])])
    return env | extra


def timed(command: Command, cold: bool) -> float:
    """Wall time of the process, or the time it prints itself (``SCAN_ONLY``)."""
    argv, env = command
    if cold:
        drop_caches()
    start = time.perf_counter()
    out = subprocess.run(
        argv, check=True, capture_output=True, text=True, env=env, cwd=env["IMAGEGUI_BENCH_CWD"]
    ).stdout
    wall = time.perf_counter() - start
    return float(out) if SCAN_ONLY in argv else wall


WHOLE = "imagegui scan --json (auto)"
ALONE = "scan_directory only (auto)"


def table(title: str, figures: dict[str, float], target: float) -> None:
    bare = figures["bare loop, 1 thread"]
    print(f"\n{title}")
    for name, seconds in figures.items():
        figure(
            f"  {name}",
            seconds,
            "s",
            target=f"<= {target:.2f}x" if name == WHOLE else "",
            note=f"{seconds / bare:.2f}x bare loop",
            digits=3,
        )
    whole, alone = figures[WHOLE], figures[ALONE]
    print(
        f"  => whole process {whole:.2f} s = {whole / bare:.2f}x the bare loop (target <= "
        f"{target:.2f}x); scan_directory alone {alone:.2f} s = {alone / bare:.2f}x; bare loop "
        f"{bare:.2f} s"
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
    ap.add_argument(
        "--compare-with",
        metavar="CHECKOUT",
        help="also time scan --json of this checkout of imagegui (e.g. /work/main), in turn",
    )
    args = ap.parse_args()
    env_dir = tempfile.mkdtemp(prefix="imagegui-cold-bench-env-")
    with scratch(args.keep, "imagegui-cold-bench-") as root:
        py = sys.executable
        env = child_env(env_dir)
        scan = [py, "-m", "imagegui", "scan", "--json", root]
        bare = [py, "-c", BARE_LOOP, root]
        commands: dict[str, Command] = {
            "bare loop, 1 thread": ([*bare, "1", str(args.bare_bytes)], env),
            "bare loop, 8 threads": ([*bare, "8", str(args.bare_bytes)], env),
            WHOLE: (scan, env),
            "imagegui scan --json, no read-ahead": (
                scan,
                child_env(env_dir, IMAGEGUI_STARTUP_DIR=""),
            ),
            "imagegui scan --json, serial": ([py, "-c", FORCED, "serial", *scan[3:]], env),
            "imagegui scan --json, parallel": ([py, "-c", FORCED, "parallel", *scan[3:]], env),
            ALONE: ([py, "-c", SCAN_ONLY, root, "auto"], env),
            "scan_directory only, serial": ([py, "-c", SCAN_ONLY, root, "serial"], env),
            "scan_directory only, parallel": ([py, "-c", SCAN_ONLY, root, "parallel"], env),
            "imports only (scan_cmds, networkx)": ([py, "-c", IMPORTS_ONLY], env),
        }
        if args.compare_with:
            checkout = os.path.abspath(args.compare_with)
            other = child_env(env_dir, checkout, IMAGEGUI_STARTUP_DIR=os.path.join(env_dir, "o"))
            commands[f"imagegui scan --json of {checkout}"] = (scan, other)
        ensure_tree(root, args.count, args.chain)
        files = sum(len(names) for _, _, names in os.walk(root))
        print(
            f"{files} images; {os.cpu_count()} CPUs; median of {args.runs} runs; the bare loop "
            f"reads {args.bare_bytes} bytes a file"
        )
        print(
            f"children: bytecode and start-up lists in {env_dir}; libvirt not asked "
            "(IMAGEGUI_LIBVIRT_URIS empty)"
        )
        print(f"before: {load()} (1, 5, 15 min)")
        try:
            for argv, child in commands.values():  # bytecode and start-up lists written
                subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=child, cwd=env_dir)
            if os.geteuid() == 0:
                cold = median_of(
                    {n: partial(timed, c, True) for n, c in commands.items()}, args.runs
                )
                print(f"after the cold runs: {load()}")
            else:
                cold = None
                print("not root: cannot drop the page cache, so only warm figures are measured")
            for argv, child in commands.values():  # warm the page cache
                subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=child, cwd=env_dir)
            warm = median_of({n: partial(timed, c, False) for n, c in commands.items()}, args.runs)
            print(f"after the warm runs: {load()}")
        finally:
            shutil.rmtree(env_dir, ignore_errors=True)
        if cold is not None:
            table("cold page cache (dropped before every run)", cold, 0.5)
        table("warm page cache", warm, 3.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
