"""How much does a rescan cost when few files changed? (issue 14: <= 0.3 s for 1 of 100,000)

Builds (or reuses, ``--keep DIR``) the tree of ``scan_bench.make_tree`` (qcow2 chains, 1,000
images a directory), then prints, in one process with a warm page cache:
  * the full scan (``scan_directory``) and the full scan that keeps a state
    (``ScanState.from_full``), and a bare loop that only ``lstat``s every file (the floor of a
    rescan without hints), with their ratios;
  * a rescan after touching 1, 100 and 10,000 files (a write of the same bytes: new mtime and
    ctime), without hints (every stamp checked) and with the exact set of changed paths (what
    the watch delivers), best of ``--runs``;
  * rebuilding the chain graph and its problems from the result (``ChainGraph``), which the
    window needs after every rescan too;
  * the chain graph updated from the last one and the rescan's delta (``ChainGraph.updated``
    with the node statuses, as the window does it) beside a full rebuild (``ChainGraph`` with
    ``all_statuses``) after touching 1, 100 and 10,000 files, the event-to-graph time (rescan
    with the changed paths + update), and what a rescan that finds nothing changed costs the
    window (the rescan and ``scan_delta``: no graph, no snapshot);
and the load average, since the machine is shared and every figure moves with it.

    .venv/bin/python benchmarks/rescan_bench.py [--count 100000] [--keep DIR] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import Best, ensure_tree, figure, load1, scratch  # noqa: E402

from imagegui.core.chains.graph import ChainGraph  # noqa: E402
from imagegui.core.chains.incremental import update as update_graph  # noqa: E402
from imagegui.core.chains.nodestate import all_statuses, updated_statuses  # noqa: E402
from imagegui.core.read.rescan import ScanState, scan_delta  # noqa: E402
from imagegui.core.read.scan import scan_directory  # noqa: E402

TARGET_1 = 0.3


def _files(root: str) -> list[str]:
    out = []
    for top, dirs, names in os.walk(root):
        dirs.sort()
        out += [os.path.join(top, n) for n in sorted(names)]
    return out


def _touch(paths: list[str]) -> None:
    """Write each file's first byte back: its data is unchanged, its mtime and ctime are new."""
    for path in paths:
        fd = os.open(path, os.O_RDWR)
        try:
            os.pwrite(fd, os.pread(fd, 1, 0), 0)
        finally:
            os.close(fd)


def _bare_lstat(paths: list[str]) -> None:
    for path in paths:
        os.lstat(path)


def _update(graph: ChainGraph, status: dict, result, delta):
    new = update_graph(graph, result, delta)
    return new, updated_statuses(new, status)


def _rebuild(result):
    graph = ChainGraph(result)
    return graph, all_statuses(graph)


def _graph_updates(state: ScanState, files: list[str], rng: random.Random, args) -> None:
    """The graph after a rescan with hints: updated from the last one against built whole."""
    print()
    print(
        f"{'touched':>8}  {'graph updated (+ statuses)':>26}  {'rebuilt (+ statuses)':>22}  "
        f"{'ratio':>5}  {'event to graph':>14}  load"
    )
    graph, status = _rebuild(state.result)
    one: tuple[Best, Best] | None = None
    for count in (int(n) for n in args.touch.split(",")):
        upd, full, scan = Best(), Best(), Best()
        if count == 1:
            one = (scan, upd)
        whole = False
        for _ in range(args.runs):
            changed = rng.sample(files, min(count, len(files)))
            _touch(changed)
            result = scan.run(state.rescan, set(changed))
            new, new_status = upd.run(_update, graph, status, result, state.delta)
            whole = new.updated_nodes is None
            full.run(_rebuild, result)
            graph, status = new, new_status
        note = " (built whole: > 5 % changed)" if whole else ""
        print(
            f"{count:>8}  {upd!s:>26}  {full!s:>22}  {upd.cpu / full.cpu:5.2f}  "
            f"{scan.wall + upd.wall:11.3f} s  {load1():.1f}{note}"
        )
    same = Best()
    for _ in range(args.runs):
        same.run(lambda: scan_delta(graph.scan, state.rescan(set())).unchanged)
    print(f"a rescan finding nothing + scan_delta   {same}   (no graph, no snapshot)")
    if one is not None:
        scan, upd = one
        figure(
            "event to graph after 1 touched file",
            scan.wall + upd.wall,
            "s",
            target=f"well under {TARGET_1} s",
            note=f"{scan.cpu + upd.cpu:.3f} CPU",
            digits=3,
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=100_000)
    ap.add_argument("--chain", type=int, default=10, help="images per chain")
    ap.add_argument("--keep", help="build the tree here and keep it (reused if it exists)")
    ap.add_argument("--runs", type=int, default=3, help="runs of each figure; the best counts")
    ap.add_argument("--touch", default="1,100,10000", help="how many files to touch, in turn")
    args = ap.parse_args()
    with scratch(args.keep, "imagegui-rescan-bench-") as root:
        ensure_tree(root, args.count, args.chain)
        files = _files(root)
        scan_directory(root)  # warm the page cache
        print(f"images {len(files)}, {os.cpu_count()} CPUs, load average {load1():.1f} at start")

        full, from_full, bare = Best(), Best(), Best()
        for _ in range(args.runs):
            full.run(scan_directory, root)
            from_full.run(ScanState.from_full, root)
            bare.run(_bare_lstat, files)
        print(f"full scan (scan_directory)        {full}")
        print(f"full scan keeping a state         {from_full}")
        print(f"bare lstat of every file          {bare}")

        # Two states from the same full scan: one rescanned without hints, one with them.
        plain = ScanState.from_full(root)
        hinted = ScanState.from_full(root)
        rng = random.Random(14)
        print()
        print(
            f"{'touched':>8}  {'no hints':>22}  {'with the changed paths':>22}  {'read':>6}  load"
        )
        one: tuple[Best, Best] | None = None
        for count in (int(n) for n in args.touch.split(",")):
            t_plain, t_hint = Best(), Best()
            if count == 1:
                one = (t_plain, t_hint)
            reads = 0
            for _ in range(args.runs):
                changed = rng.sample(files, min(count, len(files)))
                _touch(changed)
                result = t_plain.run(plain.rescan, None)
                hinted_result = t_hint.run(hinted.rescan, set(changed))
                assert len(result.images) == len(hinted_result.images) == len(files)
                reads = hinted.counts.read
            print(f"{count:>8}  {t_plain}  {t_hint}  {reads:>6}  {load1():.1f}")
        check = scan_directory(root)
        same = (
            check.images == hinted.result.images == plain.result.images
            and check.errors == hinted.result.errors == plain.result.errors
        )
        print(f"rescans equal a full scan: {same}")
        if one is not None:
            for label, best in zip(("no hints", "with hints"), one, strict=True):
                figure(
                    f"rescan of 1 touched file, {label}",
                    best.wall,
                    "s",
                    target=f"<= {TARGET_1} s",
                    note=f"{best.cpu:.3f} CPU",
                    digits=3,
                )

        graph = Best()
        problems = 0
        for _ in range(args.runs):
            problems = len(graph.run(ChainGraph, hinted.result).problems)
        print()
        print(f"ChainGraph rebuild (+ problems)   {graph}   {problems} problems")
        _graph_updates(hinted, files, rng, args)
        print(f"load average {load1():.1f} at the end (1 min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
