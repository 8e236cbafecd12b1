"""qcow2 images that ``qemu-img check`` finds damaged: made by the real qemu-img and qemu-io, then
broken the way crashes and bad copies break them (cut short, a mapping lost).

Each maker returns the path and asserts that the real ``qemu-img check`` reports exactly what the
tests expect, so a qemu that counts differently fails here, not in a puzzling assertion later.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

from conftest import qemu_img
from opshelpers import qemu_io

CLUSTER = 65536


def check_report(path: Path) -> dict:
    proc = qemu_img("check", "--output=json", "-U", path, check=False)
    return json.loads(proc.stdout) if proc.stdout.strip() else {}


def _with_data(path: Path, offsets: tuple[str, ...]) -> Path:
    qemu_img("create", "-q", "-f", "qcow2", path, "64M")
    qemu_io(path, *(f"write -P 0xab {off} 64k" for off in offsets))
    return path


def truncated_qcow2(path: Path) -> Path:
    """Three data clusters written, then the file cut short before them: 3 corruptions (every
    mapping points past the end of the file), as a copy that ran out of space leaves it."""
    _with_data(path, ("0", "1M", "2M"))
    size = os.path.getsize(path)
    os.truncate(path, size - 3 * CLUSTER)
    report = check_report(path)
    assert report.get("corruptions") == 3, report
    return path


def leaky_qcow2(path: Path) -> Path:
    """Two data clusters written, then the first one's L2 entry zeroed: that cluster is still
    counted as used but nothing refers to it - one leaked cluster, no corruption."""
    _with_data(path, ("0", "1M"))
    with open(path, "r+b") as f:
        header = f.read(48)
        (l1_offset,) = struct.unpack_from(">Q", header, 40)
        f.seek(l1_offset)
        (l1_entry,) = struct.unpack(">Q", f.read(8))
        f.seek(l1_entry & 0x00FFFFFFFFFFFE00)
        f.write(b"\0" * 8)
    report = check_report(path)
    assert report.get("leaks") == 1 and not report.get("corruptions"), report
    return path
