"""How long does ``imagegui check --deep`` take, and what does the check store cost a scan?

1. ``check --deep`` on N real qcow2 images (default 200, each with 8 MiB of data written by
   qemu-io, copied from one template) with ``--jobs 1`` and ``--jobs 2`` (best of 3, in turn), and
   the bare cost: one ``qemu-img check -U`` after another from a shell loop.
2. ``imagegui scan --json`` of the scan bench's tree (default 10,000 images, whole process, best
   of 5 in turn) with no store, with a store of findings for 100 of the images, and with findings
   for every image (the worst case: every image damaged).

Each run gets its own store (``IMAGEGUI_CHECKS``); nothing touches the user's.

    .venv/bin/python benchmarks/check_bench.py [--count 200] [--scan-count 10000] [--keep DIR]
        [--only deep|scan]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from common import best_of, make_tree, scratch  # noqa: E402

from imagegui.core.chains import checkstore  # noqa: E402
from imagegui.core.chains.checkstore import CheckRecord, Fingerprint  # noqa: E402


def make_checked_images(root: str, count: int) -> None:
    template = os.path.join(root, "template.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", template, "1G"], check=True)
    writes = [c for off in range(0, 8, 1) for c in ("-c", f"write -P 0x5a {off * 64}M 1M")]
    subprocess.run(["qemu-io", "-f", "qcow2", *writes, template], check=True, capture_output=True)
    os.makedirs(os.path.join(root, "images"))
    for i in range(count):
        shutil.copyfile(template, os.path.join(root, "images", f"img{i:04d}.qcow2"))
    os.unlink(template)


def timed(argv: list[str], env: dict[str, str], ok: tuple[int, ...] = (0, 1)) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if proc.returncode not in ok:
        raise SystemExit(f"{argv} failed: {proc.stderr.decode()}")
    return time.perf_counter() - start


def deep_bench(root: str, count: int, runs: int) -> None:
    images = os.path.join(root, "images")
    store = os.path.join(root, "deep-checks.json")
    env = {**os.environ, "IMAGEGUI_CHECKS": store}
    base = [sys.executable, "-m", "imagegui", "check", images, "--deep"]
    loop = (
        f'for f in {images}/*.qcow2; do qemu-img check -U --output=json -f qcow2 "$f" '
        ">/dev/null || exit 1; done"
    )
    best = {"jobs 1": float("inf"), "jobs 2": float("inf"), "shell loop": float("inf")}
    for _ in range(runs):
        best["jobs 1"] = min(best["jobs 1"], timed([*base, "--jobs", "1"], env))
        best["jobs 2"] = min(best["jobs 2"], timed([*base, "--jobs", "2"], env))
        best["shell loop"] = min(best["shell loop"], timed(["sh", "-c", loop], env, (0,)))
    print(f"check --deep, {count} qcow2 images with 8 MiB of data each (best of {runs}):")
    print(f"  imagegui check --deep --jobs 1   {best['jobs 1']:>7.2f} s")
    print(f"  imagegui check --deep --jobs 2   {best['jobs 2']:>7.2f} s")
    print(f"  qemu-img check -U, a shell loop  {best['shell loop']:>7.2f} s")
    print(f"  speed-up of 2 jobs over 1        {best['jobs 1'] / best['jobs 2']:>7.2f}x")


def store_with(root: str, path: str, every: int) -> None:
    """A store with leaked-cluster findings for every ``every``-th image of the tree."""
    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs)
    records = [
        CheckRecord(p, Fingerprint.of(p), time.time(), "qcow2", leaks=1) for p in files[::every]
    ]
    if os.path.exists(path):
        os.unlink(path)
    checkstore.record(records, path)


def scan_bench(root: str, count: int, runs: int) -> None:
    tree = os.path.join(root, "tree")
    if not os.path.isdir(tree):
        os.makedirs(tree)
        make_tree(tree, count, 10)
    stores = {"no store": os.path.join(root, "none.json")}
    for label, every in (("100 findings", max(1, count // 100)), (f"{count:,} findings", 1)):
        stores[label] = os.path.join(root, f"store-{every}.json")
        store_with(tree, stores[label], every)
    scan = [sys.executable, "-m", "imagegui", "scan", "--json", tree]
    commands = []
    for path in stores.values():  # env per command: best_of takes argv only, so wrap in env(1)
        commands.append(["env", f"IMAGEGUI_CHECKS={path}", *scan])
    subprocess.run(commands[0], check=True, stdout=subprocess.DEVNULL)  # warm the page cache
    best = best_of(commands, runs)
    print(f"scan --json of {count:,} images (whole process, best of {runs}):")
    for (label, path), seconds in zip(stores.items(), best, strict=True):
        size = os.path.getsize(path) if os.path.exists(path) else 0
        extra = (seconds / best[0] - 1) * 100
        print(f"  {label:<18} store {size / 1024:>7.0f} KiB  {seconds:>7.3f} s  ({extra:+.1f} %)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=200, help="images for check --deep")
    ap.add_argument("--scan-count", type=int, default=10_000, help="images for the scan")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keep", help="build the images here and keep them (reused if there)")
    ap.add_argument("--only", choices=("deep", "scan"), help="run one of the two parts")
    args = ap.parse_args()
    with scratch(args.keep, "imagegui-check-bench-") as root:
        if not os.path.isdir(os.path.join(root, "images")):
            os.makedirs(root, exist_ok=True)
            make_checked_images(root, args.count)
        if args.only != "scan":
            deep_bench(root, args.count, args.runs)
        if args.only != "deep":
            scan_bench(root, args.scan_count, max(5, args.runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
