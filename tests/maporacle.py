"""The oracle the allocation-map tests compare with: ``qemu-img map`` of the image as qemu opens
it (backing included), its depth-0 extents. Written independently of ``qemuimg.layer_map`` (no
``backing: null``, no shared parser) so a mistake there cannot hide in both."""

from __future__ import annotations

import json
import os
import subprocess

from conftest import qemu_img

from imagegui.core.read.extents import LayerMap, normalise


def qemu_depth0(path: str | os.PathLike, fmt: str) -> LayerMap:
    """``data``: depth-0 extents qemu says hold data; ``zero``: depth-0 extents it says are
    present and zero without data."""
    extents = json.loads(qemu_img("map", "--output=json", "-U", "-f", fmt, path).stdout)
    data, zero = [], []
    end = 0
    for e in extents:
        start, stop = e["start"], e["start"] + e["length"]
        end = max(end, stop)
        if e["depth"] != 0 or not e["present"]:
            continue
        (data if e["data"] else zero if e["zero"] else []).append((start, stop))
    return LayerMap(end, normalise(data), normalise(zero), source="oracle")


def same_map(a: LayerMap, b: LayerMap) -> bool:
    return (a.virtual_size, a.data, a.zero) == (b.virtual_size, b.data, b.zero)


def qemu_io(path: str | os.PathLike, fmt: str, *commands: str, opts: tuple[str, ...] = ()) -> None:
    """Run qemu-io commands (``write -P 1 0 64k``, ``write -z ...``) on one image."""
    argv = ["qemu-io", *opts, "-f", fmt]
    for c in commands:
        argv += ["-c", c]
    proc = subprocess.run([*argv, str(path)], capture_output=True, text=True)
    assert proc.returncode == 0 and "error" not in proc.stdout.lower(), proc.stdout + proc.stderr
