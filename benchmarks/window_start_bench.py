"""How long from ``python -m imagegui DIR`` to the window shown, and to its first graph drawn?

Each run is a whole process (``imagegui DIR`` on a small directory of real qcow2 images,
offscreen), timed from the process's own start (exec, read from /proc) to the main window's
first show event and to its ``ready`` signal (the graph drawn), then it exits at once. Cold
(``sync; echo 3 > /proc/sys/vm/drop_caches`` before every run: only as root) and warm, with and
without reading ahead the files the last start loaded (``imagegui.startup``), run in turn so
all see the same machine noise; median of --runs, with the load average, and a bare
``python -c pass`` beside them for the interpreter's own start.

    .venv/bin/python benchmarks/window_start_bench.py [--runs 5] [--images 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cold_scan_bench import drop_caches  # noqa: E402
from common import load, scratch  # noqa: E402

CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: Runs in the child: patches MainWindow once its module is imported (so the imports happen in
#: the order ``python -m imagegui`` does them), then runs the real entry point.
CHILD = r"""
import builtins, os, sys, time

def age():
    with open("/proc/self/stat") as f:
        start = int(f.read().rsplit(")", 1)[1].split()[19])
    return time.clock_gettime(time.CLOCK_BOOTTIME) - start / os.sysconf("SC_CLK_TCK")

def done(shown):
    print(shown, age(), flush=True)
    os._exit(0)

if sys.argv[1:] == ["--bare"]:
    done(age())

real_import = builtins.__import__
patched = []

def spy(name, *args, **kwargs):
    module = real_import(name, *args, **kwargs)
    mw = sys.modules.get("imagegui.gui.main_window")
    if mw is not None and not patched and hasattr(mw, "MainWindow"):
        patched.append(True)
        cls = mw.MainWindow
        show = cls.showEvent
        def on_show(self, event):
            if not hasattr(self, "_bench_shown"):
                self._bench_shown = age()
                self.ready.connect(lambda: done(self._bench_shown))
            return show(self, event)
        cls.showEvent = on_show
        builtins.__import__ = real_import
    return module

builtins.__import__ = spy
from imagegui.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


def make_images(root: str, count: int) -> None:
    for n in range(0, count, 2):
        base = os.path.join(root, f"base{n}.qcow2")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", base, "1G"], check=True)
        top = os.path.join(root, f"top{n}.qcow2")
        subprocess.run(
            ["qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", top], check=True
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--images", type=int, default=20)
    args = ap.parse_args()
    with scratch(None, "imagegui-window-start-") as folder:
        images = os.path.join(folder, "images")
        os.mkdir(images)
        make_images(images, args.images)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env |= {
            "PYTHONPYCACHEPREFIX": os.path.join(folder, "pycache"),  # bytecode, as installed
            "IMAGEGUI_STARTUP_DIR": os.path.join(folder, "startup"),
            "IMAGEGUI_LIBVIRT_URIS": "",
            "QT_QPA_PLATFORM": "offscreen",
            "XDG_CONFIG_HOME": os.path.join(folder, "config"),  # no settings of the user's
            "XDG_STATE_HOME": os.path.join(folder, "state"),
            # This checkout's imagegui, started away from any other (``-c`` puts the working
            # directory first on the path).
            "PYTHONPATH": os.pathsep.join(
                [CHECKOUT, *filter(None, [os.environ.get("PYTHONPATH")])]
            ),
        }
        window = [sys.executable, "-c", CHILD, images]
        kinds = {
            "window, reading ahead": (window, env),
            "window, no read-ahead": (window, env | {"IMAGEGUI_STARTUP_DIR": ""}),
            "python alone": ([sys.executable, "-c", CHILD, "--bare"], env),
        }
        for argv, child_env in kinds.values():  # bytecode and the start-up list written
            subprocess.run(
                argv, check=True, capture_output=True, env=child_env, timeout=300, cwd=folder
            )
        print(f"{args.images} images; median of {args.runs} runs; {load()} before")
        modes = [("warm", False)] + ([("cold", True)] if os.geteuid() == 0 else [])
        if os.geteuid() != 0:
            print("not root: cannot drop the page cache, so only warm figures are measured")
        for mode, cold in modes:
            times: dict[str, list[tuple[float, float]]] = {k: [] for k in kinds}
            for _ in range(args.runs):
                for name, (argv, child_env) in kinds.items():
                    if cold:
                        drop_caches()
                    start = subprocess.run(
                        argv,
                        check=True,
                        capture_output=True,
                        text=True,
                        env=child_env,
                        timeout=300,
                        cwd=folder,
                    )
                    shown, drawn = map(float, start.stdout.split()[-2:])
                    times[name].append((shown, drawn))
            print(f"\n{mode} ({load()} after)")
            for name, pairs in times.items():
                shown = statistics.median(p[0] for p in pairs)
                drawn = statistics.median(p[1] for p in pairs)
                if name == "python alone":
                    print(f"  {name:<26} {drawn:>6.2f} s (the interpreter alone)")
                else:
                    print(f"  {name:<26} shown {shown:>6.2f} s  drawn {drawn:>6.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
