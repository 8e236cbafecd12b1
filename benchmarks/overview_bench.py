"""The zoomed-out graph at 10,000 and 100,000 images: the overview's repaint against the cards'.

For each count N, real qcow2 images in chains of 10 (``scan_bench.make_tree``, warm page cache;
every 97th chain has a file deleted in its middle, so some trees are broken), a fresh window
process opens them, waits until every worker is done (the scan, the space report), fits the
graph and repaints the whole view ``--repaints`` times:
  * with the overview (each tree one block; the cards hidden): what the window does now, each
    repaint after a zoom step (the blocks drawn) and with nothing changed (from its cache);
  * with the overview switched off and the card boxes and markers painted, as before it, in the
    same process and minutes (the ratio is the figure to read on a busy machine);
and prints the median and the worst of each, next to the target (<= 30 ms at 100,000), the
time to work out the overview's data for the snapshot (on the scan's worker) and the load.

    .venv/bin/python benchmarks/overview_bench.py [--counts 10000,100000] [--keep DIR]
        [--repaints 25]
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from common import (  # noqa: E402
    child_result,
    ensure_tree,
    figure,
    load1,
    make_tree,
    open_window,
    print_load,
    punch_holes,
    run_child,
    scratch,
    wait_for,
)

TARGET_MS = 30.0


def child(root: str, repaints: int) -> None:
    from PySide6.QtCore import QThreadPool

    from imagegui.gui.graph.overview import overview_data

    app, window, conf = open_window()
    window.open_directory(root)
    wait_for(window.ready)
    # The space report reads on a worker after the graph is drawn: a paint measured beside it
    # waits for the GIL. Measure the window at rest.
    deadline = time.monotonic() + 300
    while window.session.space_report is None and time.monotonic() < deadline:
        app.processEvents()
    QThreadPool.globalInstance().waitForDone()
    app.processEvents()
    gc.collect()

    view, scene, overview = window.view, window.scene, window.view.overview
    view.fit_all()
    app.processEvents()

    fit = view.scale_factor

    def repaint_times(zoom: bool = False) -> tuple[float, float]:
        """Repaints of the whole view; with ``zoom``, each after a zoom step (untimed) so
        that nothing cached from the last paint serves."""
        times = []
        for i in range(repaints):
            if zoom:
                view.set_scale(fit * (1.0 + 0.001 * (i % 2)))
            t = time.perf_counter()
            view.viewport().repaint()
            times.append((time.perf_counter() - t) * 1000)
        return statistics.median(times), max(times)

    snap = window.session.snapshot
    out = {
        "images": snap.image_count,
        "trees": len(snap.layout.components),
        "fit_scale": view.scale_factor,
        "overview_shown": overview.only,
        "labels": 0,
    }
    out["overview_zoom_ms"] = repaint_times(zoom=True)
    out["overview_ms"] = repaint_times()
    out["labels"] = len(overview.labels.labelled) if overview.labels else 0
    # As before the overview: the card boxes (and the marker dots) painted by Qt.
    overview.layer.setVisible(False)
    overview.labels.setVisible(False)
    scene.set_cards_visible(True)
    app.processEvents()
    out["cards_ms"] = repaint_times()
    overview.set_scale(view.scale_factor, force=True)
    t = time.perf_counter()
    overview_data(snap.layout, snap.status)
    out["data_s"] = time.perf_counter() - t
    window.close()
    shutil.rmtree(conf, ignore_errors=True)
    child_result(out)


def make_images(root: str, count: int, chain: int, per_dir: int) -> None:
    """The scan bench's tree with a hole in the middle of a few chains (some trees broken)."""
    make_tree(root, count, chain, per_dir)
    punch_holes(root, count, chain)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--counts", default="10000,100000")
    ap.add_argument("--keep", help="build the trees under this directory and keep them")
    ap.add_argument("--repaints", type=int, default=25)
    ap.add_argument("--child", nargs=2, metavar=("ROOT", "REPAINTS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]))
        return 0

    from imagegui.core.read.scan import scan_directory

    with scratch(args.keep, "imagegui-ovbench-") as work:
        for count in (int(c) for c in args.counts.split(",")):
            root = os.path.join(work, f"n{count}")
            ensure_tree(root, count, make=make_images)
            scan_directory(root)  # warm the page cache
            load = load1()
            r = run_child(__file__, root, str(args.repaints))
            if r is None:
                return 1
            (om, ow), (cm, cw) = r["overview_ms"], r["cards_ms"]
            zm, zw = r["overview_zoom_ms"]
            print(
                f"{r['images']:,} images, {r['trees']:,} trees, fitted at "
                f"{r['fit_scale'] * 100:.1f} % (overview shown: {r['overview_shown']}, "
                f"{r['labels']} labels)"
            )
            figure(
                "  zoomed-out repaint, overview drawn",
                zm,
                "ms",
                target=f"<= {TARGET_MS:.0f} ms",
                note=f"worst {zw:.1f}; each after a zoom step",
                digits=1,
            )
            figure(
                "  the same, nothing changed (cached)", om, "ms", note=f"worst {ow:.1f}", digits=1
            )
            figure(
                "  zoomed-out repaint, card boxes",
                cm,
                "ms",
                note=f"worst {cw:.1f}; before",
                digits=1,
            )
            figure("  overview drawn / card boxes", zm / cm, "x")
            figure("  overview data (scan worker)", r["data_s"] * 1000, "ms", digits=0)
            print_load(load)
    return 0


if __name__ == "__main__":
    sys.exit(main())
