"""How typing in the chains list's filter box feels at 10,000 or 100,000 images (issue 14).

Opens the window on N real qcow2 images in chains (``overview_bench.make_images``: a few chains
broken), waits until the graph is drawn and the space report is in, then types a few filters one
key at a time (``KEY_MS`` apart, slower than the filter's debounce, so every key applies), and
clears them. A 5 ms QTimer records the gaps of the event loop. Prints, per filter: the longest
event-loop stall while it was typed and applied (target <= 100 ms; beside the longest stall of
3 s of doing nothing, which is the machine's load alone), the time from its last key to
the list, the graph and the space view showing it, and the rows shown; with the load average and a
bare Python loop timed in the same run (read ratios on a busy machine).

    .venv/bin/python benchmarks/filter_bench.py [--counts 10000,100000] [--keep DIR] [--space]

``--space`` shows the Space view while typing (its treemap dims the others too).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from common import (  # noqa: E402
    bare_python_loop,
    child_result,
    ensure_tree,
    load1,
    open_window,
    run_child,
    scratch,
    wait_for,
)
from overview_bench import make_images  # noqa: E402  (a few chains broken)

TICK_MS = 5
#: Milliseconds between two keys (the filter waits 200 ms after the last one).
KEY_MS = 260
#: Milliseconds of doing nothing measured first (the load's own stalls).
IDLE_MS = 3000
#: What is typed, in turn; "" clears the box.
FILTERS = ("c00012", "missing", "d009", "", "qcow2", "")


def child(root: str, space: bool) -> None:
    from PySide6.QtCore import QElapsedTimer, QEventLoop, QThreadPool, QTimer

    app, window, conf = open_window()

    def wait(ms: int) -> None:
        loop = QEventLoop()
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    window.open_directory(root)
    wait_for(window.ready)
    deadline = time.monotonic() + 300
    while window.session.space_report is None and time.monotonic() < deadline:
        app.processEvents()
    QThreadPool.globalInstance().waitForDone()
    app.processEvents()
    window.view.fit_all()
    if space:
        window.show_view(window.space)
        deadline = time.monotonic() + 120
        while window.space.map.picture is None and time.monotonic() < deadline:
            app.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents, 50)
    app.processEvents()

    clock = QElapsedTimer()
    clock.start()
    last = {"t": clock.elapsed(), "max": 0.0}

    def on_tick() -> None:
        now = clock.elapsed()
        last["max"] = max(last["max"], float(now - last["t"]))
        last["t"] = now

    ticker = QTimer()
    ticker.setInterval(TICK_MS)
    ticker.timeout.connect(on_tick)
    ticker.start()
    box, chains, scene = window.chains.filter, window.chains, window.scene
    applied = {"n": 0}
    chains.filterApplied.connect(lambda _m: applied.__setitem__("n", applied["n"] + 1))

    def settled() -> bool:
        """The list shows the box's text and the scene has dimmed what it should."""
        busy = getattr(scene, "dimming", False) or getattr(chains, "filtering", False)
        return chains.model.filter_text == box.text().strip().lower() and not busy

    # The longest gap with nothing to do: what the machine's load alone costs the event loop.
    on_tick()
    last["max"] = 0.0
    wait(IDLE_MS)
    on_tick()
    idle_ms = last["max"]
    results = []
    snap = window.session.snapshot
    for text in FILTERS:
        on_tick()
        last["max"] = 0.0
        if text:
            for n, ch in enumerate(text):  # the first key replaces what was there
                box.setText(box.text() + ch if n else ch)
                wait(KEY_MS)
        else:
            box.clear()
        typed = time.perf_counter()
        deadline = time.monotonic() + 120
        while not settled() and time.monotonic() < deadline:
            app.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents, 50)
        done = time.perf_counter()
        wait(50)
        on_tick()
        results.append(
            {
                "filter": text,
                "stall_ms": last["max"],
                "to_shown_s": max(0.0, done - typed),
                "rows": chains.model.visible_count(),
                "matches": len(chains.model.matches or ()),
            }
        )
    ticker.stop()
    out = {
        "images": snap.image_count,
        "trees": len(snap.layout.components),
        "filters": results,
        "idle_ms": idle_ms,
    }
    window.close()
    shutil.rmtree(conf, ignore_errors=True)
    child_result(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--counts", default="10000,100000")
    ap.add_argument("--keep", help="build the trees under this directory and keep them")
    ap.add_argument("--space", action="store_true", help="type with the Space view shown")
    ap.add_argument("--child", nargs=2, metavar=("ROOT", "SPACE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], args.child[1] == "1")
        return 0

    from imagegui.core.read.scan import scan_directory

    with scratch(args.keep, "imagegui-filterbench-") as work:
        for count in (int(c) for c in args.counts.split(",")):
            root = str(Path(work) / f"n{count}")
            ensure_tree(root, count, 10, 1000, make=make_images)
            scan_directory(root)  # warm the page cache
            load, loop = load1(), bare_python_loop()
            r = run_child(__file__, root, "1" if args.space else "0")
            if r is None:
                return 1
            print(f"{r['images']:,} images, {r['trees']:,} trees; keys {KEY_MS} ms apart")
            print(f"  {'(idle)':<12} longest stall {r['idle_ms']:6.0f} ms (the load's own)")
            for f in r["filters"]:
                shown = repr(f["filter"]) if f["filter"] else "(cleared)"
                print(
                    f"  {shown:<12} longest stall {f['stall_ms']:6.0f} ms (target <= 100)   "
                    f"last key to shown {f['to_shown_s'] * 1000:6.0f} ms   "
                    f"{f['rows']:,} rows, {f['matches']:,} matches"
                )
            print(
                f"  load average (1 min) {load:.1f} before, {load1():.1f} after "
                f"({os.cpu_count()} CPUs); bare loop {loop:.2f} s before, "
                f"{bare_python_loop():.2f} s after"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
