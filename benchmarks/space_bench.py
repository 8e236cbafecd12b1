"""How fast are allocation maps, against the plain scan and qemu-img map? (issue 12: ``space`` on
10,000 images with native qcow2 maps <= 5x the plain scan)

Makes N real qcow2 images with some data of their own, in chains (templates written by qemu-img
and qemu-io, copied with only the backing name patched and only their non-zero blocks written,
so 10,000 images cost little disk), then prints, for the same tree with a warm page cache:
  * the plain scan (``scan_directory``, in this process, best of --runs);
  * native maps of every image (``read_layer_map`` on each scanned image, best of --runs);
  * qemu-img map of one layer per image, a random sample extrapolated to N;
  * ``imagegui space --json`` against ``imagegui scan --json`` (whole processes) when the
    ``space`` command exists;
and the ratios against the <= 5x target, with the load average (a shared machine moves every
figure).

    .venv/bin/python benchmarks/space_bench.py [--count 10000] [--chain 5] [--keep DIR] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time

from common import best_of, ensure_tree, print_load, scratch
from common import make_tree as make_chains

from imagegui.core.qemu.qemuimg import layer_map, read_layer_map
from imagegui.core.read.scan import scan_directory

#: What each template's own data is (qemu-io commands): a base with 1 MiB and two more clusters
#: far apart (a second L2 table), overlays with a little data and a zero cluster over the base's
#: data. Each write fills 4 KiB of a 64 KiB cluster: qemu allocates the whole cluster, the copy
#: stores only the non-zero 4 KiB, so 10,000 images take about 500 MB of disk.
BASE_WRITES = (
    *(f"write -P 1 {k * 64}k 4k" for k in range(16)),
    "write -P 2 100M 4k",
    "write -P 3 1020M 4k",
)
OVERLAY_WRITES = (
    "write -P 4 64k 4k",
    "write -P 4 128k 4k",
    "write -z 512k 64k",
    "write -P 5 300M 4k",
)


def make_tree(root: str, count: int, chain: int, per_dir: int) -> None:
    """The scan bench's tree with data in every image (``BASE_WRITES``, ``OVERLAY_WRITES``)."""
    make_chains(root, count, chain, per_dir, (BASE_WRITES, OVERLAY_WRITES))


def best(fn, runs: int) -> tuple[float, object]:
    result = None
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return min(times), result


def has_space_command() -> bool:
    proc = subprocess.run(
        [sys.executable, "-m", "imagegui", "space", "--help"], capture_output=True, text=True
    )
    return proc.returncode == 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=10_000)
    ap.add_argument("--chain", type=int, default=5, help="images per chain")
    ap.add_argument("--sample", type=int, default=40, help="qemu-img map calls to time")
    ap.add_argument("--keep", help="build the tree here and keep it (reused if it exists)")
    ap.add_argument("--runs", type=int, default=3, help="runs of each measure; the best counts")
    args = ap.parse_args()
    with scratch(args.keep, "imagegui-space-bench-") as root:
        ensure_tree(root, args.count, args.chain, 1000 // args.chain * args.chain, make=make_tree)
        load_before = os.getloadavg()[0]
        scan_directory(root)  # warm the page cache
        scan_s, result = best(lambda: scan_directory(root), args.runs)
        images = list(result.images.values())  # type: ignore[attr-defined]
        maps_s, maps = best(lambda: [read_layer_map(i) for i in images], args.runs)
        native = sum(1 for m in maps if m.source == "native")  # type: ignore[attr-defined]
        held = sum(m.guest_data for m in maps)  # type: ignore[attr-defined]
        sample = random.Random(1).sample(images, min(args.sample, len(images)))
        t = time.perf_counter()
        for info in sample:
            layer_map(info.path, info.format)
        qemu_s = (time.perf_counter() - t) / len(sample) * len(images)
        n = len(images)
        print(f"images                           {n:>10}   ({native} mapped natively)")
        print(f"guest data held, all layers      {held / 2**30:>10.2f} GiB")
        print(f"plain scan (scan_directory)      {scan_s:>10.3f} s")
        print(
            f"native maps of every image       {maps_s:>10.3f} s   ({maps_s / n * 1e6:.1f} us each)"
        )
        print(f"qemu-img map per image (est.)    {qemu_s:>10.1f} s   (sample of {len(sample)})")
        print(
            f"scan + native maps vs scan       {(scan_s + maps_s) / scan_s:>10.2f} x   "
            "(target for space <= 5)"
        )
        print(f"qemu-img map vs native maps      {qemu_s / maps_s:>10.0f} x")
        if has_space_command():
            scan_cmd = [sys.executable, "-m", "imagegui", "scan", "--json", root]
            space_cmd = [sys.executable, "-m", "imagegui", "space", "--json", root]
            scan_p, space_p = best_of([scan_cmd, space_cmd], args.runs)
            print(f"imagegui scan --json (process)   {scan_p:>10.3f} s")
            print(f"imagegui space --json (process)  {space_p:>10.3f} s")
            print(f"space vs scan                    {space_p / scan_p:>10.2f} x   (target <= 5)")
        else:
            print("imagegui space: not available yet (the ratio above is scan + maps)")
        print_load(load_before, f"best of {args.runs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
