"""What marking the libvirt domains' disks costs the chain graph's build.

Builds (or reuses, ``--keep``) the tree of ``scan_bench.py`` (real qcow2 images in chains), scans
it once, then times ``ChainGraph`` in this process (best of ``--runs``) without domains, with an
index of no domain disks (what ``scan`` passes when libvirt answers and nothing is defined) and
with ``--disks`` domain disks on the chains' top images (hand-built records: no daemon needed,
so the figure is the graph's own work, not libvirt's). Prints the load average beside them.

    .venv/bin/python benchmarks/domain_uses_bench.py [--count 10000] [--disks 1000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import ensure_tree, print_load, scratch  # noqa: E402

from imagegui.core.chains.graph import ChainGraph  # noqa: E402
from imagegui.core.read.scan import scan_directory  # noqa: E402
from imagegui.core.virt.inventory import DomainIndex  # noqa: E402
from imagegui.core.virt.model import Domain, DomainDisk, HostInventory  # noqa: E402

URI = "qemu:///system"


def index_on(tops: list[str]) -> DomainIndex:
    """One shut-off domain per path, its disk vda on it."""
    inv = HostInventory(uri=URI)
    for n, path in enumerate(tops):
        disk = DomainDisk("vda", "disk", "file", path, "qcow2")
        inv.domains.append(Domain(URI, f"vm{n:05d}", f"uuid-{n}", "shut off", (disk,)))
    return DomainIndex([inv])


def best(builds: list, runs: int) -> list[float]:
    """Best time of each build, run in turn so each sees the same machine noise."""
    out = [float("inf")] * len(builds)
    for _ in range(runs):
        for i, build in enumerate(builds):
            gc.collect()  # the previous graph's garbage is not this one's time
            t = time.perf_counter()
            graph = build()
            out[i] = min(out[i], time.perf_counter() - t)
            del graph
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=10_000)
    ap.add_argument("--chain", type=int, default=10, help="images per chain")
    ap.add_argument("--disks", type=int, default=1000, help="domain disks, on chain tops")
    ap.add_argument("--keep", help="build the tree here and keep it (reused if it exists)")
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    with scratch(args.keep, "imagegui-bench-") as root:
        ensure_tree(root, args.count, args.chain)
        scan = scan_directory(root)
        graph = ChainGraph(scan)
        tops = sorted(n for n in graph.g if graph.g.in_degree(n) == 0)[: args.disks]
        empty, full = DomainIndex([]), index_on(tops)
        load = os.getloadavg()[0]
        plain, none, used = best(
            [
                lambda: ChainGraph(scan),
                lambda: ChainGraph(scan, domains=empty),
                lambda: ChainGraph(scan, domains=full),
            ],
            args.runs,
        )
        # The marking step alone (on a graph built without domains): the figure the machine's
        # noise does not swamp.
        attach_none = attach_full = float("inf")
        for _ in range(args.runs):
            fresh = ChainGraph(scan)
            t = time.perf_counter()
            fresh._attach_domains(empty)  # noqa: SLF001 - the step measured
            attach_none = min(attach_none, time.perf_counter() - t)
            t = time.perf_counter()
            fresh._attach_domains(full)  # noqa: SLF001
            attach_full = min(attach_full, time.perf_counter() - t)
        with_uses = ChainGraph(scan, domains=full)
        marked = sum(1 for n in with_uses.g if with_uses.domains_of(n))
        print(f"images                               {len(scan.images):>8}")
        print(f"ChainGraph, no domains               {plain * 1000:>8.1f} ms")
        print(f"ChainGraph, an index of no disks     {none * 1000:>8.1f} ms")
        print(f"ChainGraph, {len(tops):,} disks on chain tops {used * 1000:>6.1f} ms")
        print(f"  nodes some disk uses               {marked:>8,}")
        print(f"  of which marking, no disks         {attach_none * 1e6:>8.1f} us")
        print(
            f"  of which marking, {len(tops):,} disks     {attach_full * 1000:>8.1f} ms"
            f"   ({attach_full / max(len(tops), 1) * 1e6:.1f} us a disk, chains of {args.chain})"
        )
        print_load(load, f"best of {args.runs} runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
