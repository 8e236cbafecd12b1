"""How fast is ``imagegui scan --json`` against a bare header-read loop and qemu-img info?

Makes N real qcow2 images in chains (a template made by qemu-img, copied with only the backing
name patched, written sparse so 100,000 images cost little disk), then prints, for the same tree
with a warm page cache:
  * imagegui scan --json, whole process (best of --runs, 5), and its peak memory;
  * a bare Python loop that only walks, opens each file and reads its first 512 bytes (best of
    as many runs, run in turn with the scan so both see the same machine noise);
  * qemu-img info -U per image, a random sample extrapolated to N;
  * what the whole-process figures are made of: an empty interpreter's start, ``import
    networkx``, and ``scan_directory`` against the bare loop's body in one process;
and the ratios (targets at 10,000: >= 100x faster than qemu-img info, <= 3x the bare loop), and
the load average, since a machine shared with other work moves every figure.

    .venv/bin/python benchmarks/scan_bench.py [--count 10000] [--chain 10] [--keep DIR] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import subprocess
import sys
import time

from common import (  # noqa: F401  (CHAIN_NAME and make_tree: other scripts import them from here)
    CHAIN_NAME,
    ensure_tree,
    figure,
    in_turn,
    load1,
    make_tree,
    print_load,
    run_process,
    scratch,
)

BARE_LOOP = """
import os, sys
n = 0
for top, dirs, files in os.walk(sys.argv[1]):
    for name in files:
        with open(os.path.join(top, name), "rb") as f:
            f.read(512)
        n += 1
print(n)
"""


#: In one process: ``scan_directory`` alone and the bare loop's body, best of argv[2] each,
#: alternated; what the whole-process ratio is made of once the interpreter and imports are
#: left out.
IN_PROCESS = """
import os, sys, time
from imagegui.core.read.scan import scan_directory
def loop(root):
    for top, dirs, files in os.walk(root):
        for name in files:
            with open(os.path.join(top, name), "rb") as f:
                f.read(512)
best = [float("inf")] * 2
for _ in range(int(sys.argv[2])):
    for i, work in enumerate((scan_directory, loop)):
        t = time.perf_counter()
        work(sys.argv[1])
        best[i] = min(best[i], time.perf_counter() - t)
print(*best)
"""


def _children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def best_wall_and_cpu(commands: list[list[str]], runs: int) -> tuple[list[float], list[float]]:
    """Best wall time and best CPU seconds (user + system) of each command as a whole process,
    run in turn: on a busy machine wall time is mostly waiting for a CPU, CPU time much less."""
    cpu: dict[int, list[float]] = {i: [] for i in range(len(commands))}

    def timer(i: int) -> float:
        before = _children_cpu()
        wall = run_process(commands[i])
        cpu[i].append(_children_cpu() - before)
        return wall

    walls = in_turn({i: (lambda i=i: timer(i)) for i in range(len(commands))}, runs)
    return list(walls.values()), [min(c) for c in cpu.values()]


def peak_rss_mib(argv: list[str]) -> float:
    """Peak resident memory of one run, read by a fresh child so no earlier run counts."""
    code = (
        "import resource, subprocess, sys;"
        "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL);"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True)
    return int(out.stdout) / 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=10_000)
    ap.add_argument("--chain", type=int, default=10, help="images per chain")
    ap.add_argument("--sample", type=int, default=40, help="qemu-img info calls to time")
    ap.add_argument("--keep", help="build the tree here and keep it (reused if it exists)")
    ap.add_argument("--runs", type=int, default=5, help="runs of each command; the best counts")
    args = ap.parse_args()
    with scratch(args.keep, "imagegui-bench-") as root:
        ensure_tree(root, args.count, args.chain)
        imagegui = [sys.executable, "-m", "imagegui", "scan", "--json", root]
        subprocess.run(imagegui, check=True, stdout=subprocess.DEVNULL)  # warm the page cache
        bare = [sys.executable, "-c", BARE_LOOP, root]
        load_before = load1()
        (scan_s, bare_s), (scan_cpu, bare_cpu) = best_wall_and_cpu([imagegui, bare], args.runs)
        peak_mib = peak_rss_mib(imagegui)
        files = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs]
        sample = random.Random(1).sample(files, min(args.sample, len(files)))
        t = time.perf_counter()
        for path in sample:
            subprocess.run(
                ["qemu-img", "info", "-U", "--output=json", path],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        qemu_s = (time.perf_counter() - t) / len(sample) * len(files)
        imp = best_wall_and_cpu([[sys.executable, "-c", "import networkx"]], 5)[0][0]
        bare_start = best_wall_and_cpu([[sys.executable, "-c", "pass"]], 5)[0][0]
        inside = subprocess.run(
            [sys.executable, "-c", IN_PROCESS, root, str(args.runs)],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        scan_alone, loop_alone = map(float, inside.split())
        figure("images", len(files), "", digits=0)
        figure(
            "imagegui scan --json (process)",
            scan_s,
            "s",
            digits=3,
            note=f"peak RSS {peak_mib:.0f} MB",
        )
        figure("bare open+read(512) loop", bare_s, "s", digits=3)
        figure("qemu-img info per image (est.)", qemu_s, "s", note=f"sample of {len(sample)}")
        figure("python -c 'import networkx'", imp, "s", digits=3)
        figure("python -c 'pass'", bare_start, "s", digits=3)
        figure("scan_directory alone (in process)", scan_alone, "s", digits=3)
        figure("the bare loop's body (in process)", loop_alone, "s", digits=3)
        figure("imagegui vs bare loop", scan_s / bare_s, "x", target="<= 3")
        figure(
            "the same in CPU seconds",
            scan_cpu / bare_cpu,
            "x",
            note=f"{scan_cpu:.3f} s / {bare_cpu:.3f} s user + system: moves less with the load",
        )
        figure("scan_directory vs the loop's body", scan_alone / loop_alone, "x")
        figure("qemu-img info vs imagegui", qemu_s / scan_s, "x", target=">= 100", digits=0)
        figure("per image", scan_s / len(files) * 1e6, "us", digits=1)
        print_load(load_before, f"best of {args.runs} runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
