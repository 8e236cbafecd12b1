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
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

TARGET_MS = 30.0


def child(root: str, repaints: int) -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QEventLoop, QSettings, QThreadPool, QTimer

    import imagegui.gui  # noqa: F401  (the PySide6 guard)
    from imagegui.gui.app import make_app
    from imagegui.gui.graph.overview import overview_data
    from imagegui.gui.main_window import MainWindow
    from imagegui.gui.settings import Settings

    app = make_app()
    scratch = tempfile.mkdtemp(prefix="imagegui-ovbench-conf-")
    settings = Settings(QSettings(os.path.join(scratch, "s.ini"), QSettings.Format.IniFormat))
    settings.set_auto_rescan(False)
    window = MainWindow(settings)
    window.ask_before_closing = False
    window.resize(1440, 900)
    window.show()
    loop = QEventLoop()
    window.ready.connect(loop.quit)
    QTimer.singleShot(600_000, loop.quit)
    window.open_directory(root)
    loop.exec()
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
    shutil.rmtree(scratch, ignore_errors=True)
    print("RESULT " + json.dumps(out), flush=True)


def make_images(root: Path, count: int) -> None:
    from scan_bench import CHAIN_NAME, make_tree

    root.mkdir(parents=True, exist_ok=True)
    make_tree(str(root), count, 10)
    for c in range(3, count // 10, 97):  # a hole in the middle of a few chains
        (root / f"dir{c * 10 // 1000:04d}" / CHAIN_NAME.format(chain=c, depth=4)).unlink()


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

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="imagegui-ovbench-"))
    try:
        for count in (int(c) for c in args.counts.split(",")):
            root = work / f"n{count}"
            if not (root.is_dir() and any(root.iterdir())):
                t = time.perf_counter()
                make_images(root, count)
                print(f"made {count:,} qcow2 images in {time.perf_counter() - t:.1f} s: {root}")
            scan_directory(str(root))  # warm the page cache
            load = os.getloadavg()[0]
            proc = subprocess.run(
                [sys.executable, __file__, "--child", str(root), str(args.repaints)],
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0 or "RESULT " not in proc.stdout:
                print(proc.stdout, proc.stderr, file=sys.stderr)
                return 1
            r = json.loads(proc.stdout.split("RESULT ", 1)[1])
            (om, ow), (cm, cw) = r["overview_ms"], r["cards_ms"]
            zm, zw = r["overview_zoom_ms"]
            print(
                f"{r['images']:,} images, {r['trees']:,} trees, fitted at "
                f"{r['fit_scale'] * 100:.1f} % (overview shown: {r['overview_shown']}, "
                f"{r['labels']} labels)"
            )
            print(
                f"  zoomed-out repaint, overview drawn  {zm:7.1f} ms  (worst {zw:.1f}; "
                f"target <= {TARGET_MS:.0f} ms; each after a zoom step)"
            )
            print(f"  the same, nothing changed (cached)  {om:7.1f} ms  (worst {ow:.1f})")
            print(f"  zoomed-out repaint, card boxes      {cm:7.1f} ms  (worst {cw:.1f}; before)")
            print(f"  overview drawn / card boxes         {zm / cm:7.2f}x")
            print(f"  overview data (scan worker)         {r['data_s'] * 1000:7.0f} ms")
            print(
                f"  load average (1 min)                {load:7.1f} before, "
                f"{os.getloadavg()[0]:.1f} after ({os.cpu_count()} CPUs)"
            )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
