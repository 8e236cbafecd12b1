"""How fast is ``imagegui scan --json`` against a bare header-read loop and qemu-img info?

Makes N real qcow2 images in chains (a template made by qemu-img, copied with only the backing
name patched, written sparse so 100,000 images cost little disk), then prints, for the same tree
with a warm page cache:
  * imagegui scan --json, whole process (best of --runs, 5), and its peak memory;
  * a bare Python loop that only walks, opens each file and reads its first 512 bytes (best of
    as many runs, run in turn with the scan so both see the same machine noise);
  * qemu-img info -U per image, a random sample extrapolated to N;
and the ratios (targets at 10,000: >= 100x faster than qemu-img info, <= 3x the bare loop), and
the load average, since a machine shared with other work moves every figure.

    .venv/bin/python benchmarks/scan_bench.py [--count 10000] [--chain 10] [--keep DIR] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

CHAIN_NAME = "c{chain:06d}-d{depth:03d}.qcow2"
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


def _template(tmp: str, backing: str | None) -> tuple[bytes, list[tuple[int, bytes]], int]:
    path = os.path.join(tmp, "template.qcow2")
    args = ["qemu-img", "create", "-q", "-f", "qcow2"]
    if backing:
        args += ["-b", backing, "-F", "qcow2", "-u"]
    subprocess.run([*args, path, "1G"], check=True)
    with open(path, "rb") as f:
        data = f.read()
    os.unlink(path)
    blocks = [(off, data[off : off + 4096]) for off in range(0, len(data), 4096)]
    return data, [(o, b) for o, b in blocks if b.strip(b"\0")], len(data)


def make_tree(root: str, count: int, chain: int, per_dir: int = 1000) -> None:
    """``count`` images in chains of ``chain``, ``per_dir`` to a directory (a multiple of
    ``chain``: a chain never spans directories)."""
    sample = CHAIN_NAME.format(chain=0, depth=0)
    _, base_blocks, size = _template(root, None)
    _, over_blocks, osize = _template(root, sample)
    name_at = over_blocks[0][1].index(sample.encode())
    for i in range(count):
        c, d = divmod(i, chain)
        sub = os.path.join(root, f"dir{i // per_dir:04d}")
        if i % per_dir == 0:
            os.makedirs(sub, exist_ok=True)
        name = CHAIN_NAME.format(chain=c, depth=d)
        if d == 0 or i % per_dir == 0:
            # The chain's first image in this directory: a base (a chain never spans directories
            # in this layout because per_dir is a multiple of chain).
            blocks, length = base_blocks, size
        else:
            backing = CHAIN_NAME.format(chain=c, depth=d - 1).encode()
            first = over_blocks[0][1]
            first = first[:name_at] + backing + first[name_at + len(backing) :]
            blocks, length = [(0, first), *over_blocks[1:]], osize
        fd = os.open(os.path.join(sub, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        for off, block in blocks:
            os.pwrite(fd, block, off)
        os.ftruncate(fd, length)
        os.close(fd)


def run_once(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def best_of(commands: list[list[str]], runs: int = 5) -> list[float]:
    """Best wall time of each command, the commands run in turn so both see the same noise."""
    best = [float("inf")] * len(commands)
    for _ in range(runs):
        for i, argv in enumerate(commands):
            best[i] = min(best[i], run_once(argv))
    return best


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
    root = args.keep or tempfile.mkdtemp(prefix="imagegui-bench-")
    try:
        if not (args.keep and os.path.isdir(root) and os.listdir(root)):
            os.makedirs(root, exist_ok=True)
            t = time.perf_counter()
            make_tree(root, args.count, args.chain)
            print(f"made {args.count} qcow2 images in {time.perf_counter() - t:.1f} s: {root}")
        imagegui = [sys.executable, "-m", "imagegui", "scan", "--json", root]
        subprocess.run(imagegui, check=True, stdout=subprocess.DEVNULL)  # warm the page cache
        bare = [sys.executable, "-c", BARE_LOOP, root]
        load_before = os.getloadavg()[0]
        scan_s, bare_s = best_of([imagegui, bare], args.runs)
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
        imp = best_of([[sys.executable, "-c", "import networkx"]])[0]
        print(f"images                         {len(files):>10}")
        print(f"imagegui scan --json (process) {scan_s:>10.3f} s   peak RSS {peak_mib:.0f} MB")
        print(f"bare open+read(512) loop       {bare_s:>10.3f} s")
        print(f"qemu-img info per image (est.) {qemu_s:>10.1f} s   (sample of {len(sample)})")
        print(f"python -c 'import networkx'    {imp:>10.3f} s")
        print(f"imagegui vs bare loop          {scan_s / bare_s:>10.2f} x   (target <= 3)")
        print(f"qemu-img info vs imagegui      {qemu_s / scan_s:>10.0f} x   (target >= 100)")
        print(f"per image                      {scan_s / len(files) * 1e6:>10.1f} us")
        print(
            f"load average (1 min)           {load_before:>10.1f} before, "
            f"{os.getloadavg()[0]:.1f} after   ({os.cpu_count()} CPUs; best of {args.runs} runs)"
        )
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
