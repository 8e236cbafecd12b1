"""A demo directory made by the real qemu-img: every kind of chain and trouble imagegui shows.

``imagegui --demo`` opens it, the screenshots are made from it, and the GUI tests can use it. Built
in a few hundred milliseconds (about 25 qemu-img / qemu-io runs, sparse files, ~40 MiB written):

- ``instances/``: an OpenStack Nova compute node. ``_base/`` holds raw bases named by the SHA-1
  of their image id, each instance ``<uuid>/disk`` is a qcow2 with an absolute backing path into
  ``_base`` and the format recorded; one old base is used by no instance (Nova would remove it).
- ``templates/``: a golden image with two clones, and a chain of snapshots on one of them.
- ``clones/ubuntu-dev.qcow2``: a clone whose base was moved to ``archive/`` (missing backing; the
  repair dialog finds it by name), and a snapshot on it that is healthy itself but unusable.
- ``broken/``: two images backing onto each other (a loop), a clone that records the wrong backing
  format, and one whose backing is a network (nbd) source.
- ``legacy/``: an overlay from before ``-F`` existed (no backing format recorded).
- ``vms/fedora-40.qcow2``: a standalone disk with two internal snapshots (``qemu-img snapshot
  -c``: "fresh-install", then "before-upgrade", guest data written between), listed in Details.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import tempfile
import time
import uuid

from imagegui.core.jobs import CancelToken, ProgressFn, no_progress
from imagegui.core.qemu import qemuimg

GiB = 1 << 30
_DEMO_NS = uuid.UUID("6f0c1f5e-1d2b-4f4e-9b7a-2c9e5d0b1a77")
QCOW2_BACKING_FORMAT_EXT = 0xE2792ACA


def nova_name(image_id: str) -> str:
    """Nova's ``_base`` file name for a Glance image id: the SHA-1 of the id, in hex."""
    return hashlib.sha1(image_id.encode()).hexdigest()


def instance_uuid(name: str) -> str:
    return str(uuid.uuid5(_DEMO_NS, name))


class _Builder:
    def __init__(
        self, root: str, progress: ProgressFn, cancel: CancelToken, steps: int, qemu_img: str
    ):
        self.root = root
        self.qemu_img = qemu_img
        self.progress = progress
        self.cancel = cancel
        self.steps = steps
        self.done = 0

    def path(self, rel: str) -> str:
        p = os.path.join(self.root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        return p

    def run(self, *argv: str) -> None:
        self.cancel.raise_if_cancelled("the demo directory is incomplete")
        program = self.qemu_img if argv[0] == "qemu-img" else ""
        qemuimg.run(list(argv), cancel=self.cancel, qemu_img=program)
        self.done += 1
        self.progress(min(1.0, self.done / self.steps))

    def image(self, rel: str, size: int, fmt: str = "qcow2") -> str:
        p = self.path(rel)
        self.run("qemu-img", "create", "-q", "-f", fmt, p, str(size))
        return p

    def overlay(self, rel: str, backing: str, backing_fmt: str, size: int | None = None) -> str:
        """An overlay storing ``backing`` exactly as given (``-u``: the base is not opened)."""
        p = self.path(rel)
        argv = ["qemu-img", "create", "-q", "-f", "qcow2", "-b", backing, "-F", backing_fmt, "-u"]
        argv += [p, str(size or GiB)]
        self.run(*argv)
        return p

    def write(self, path: str, mib: int, pattern: int, offset_mib: int = 0, fmt: str = "qcow2"):
        """Real guest data, so disk sizes differ the way they do on a real host."""
        self.run("qemu-io", "-f", fmt, "-c", f"write -q -P {pattern:#x} {offset_mib}M {mib}M", path)


def build_demo(
    root: str | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    qemu_img: str = "",
) -> str:
    """Builds the demo under ``root`` (a new temporary directory by default); returns its path.
    ``qemu_img``: the qemu-img to run ("" for the one on PATH).

    Raises ``QemuNotFoundError`` without qemu-img, ``CancelledError`` when cancelled."""
    root = root or tempfile.mkdtemp(prefix="imagegui-demo-")
    b = _Builder(
        os.path.abspath(root), progress or no_progress, cancel or CancelToken(), 35, qemu_img
    )
    _nova(b)
    _templates(b)
    _moved_base(b)
    _broken(b)
    _legacy(b)
    _internal_snapshots(b)
    b.progress(1.0)
    return b.root


def _nova(b: _Builder) -> None:
    cirros = b.image(f"instances/_base/{nova_name('cirros-0.6.2-x86_64')}", GiB, "raw")
    b.write(cirros, 6, 0x11, fmt="raw")
    ubuntu = b.image(f"instances/_base/{nova_name('ubuntu-22.04-server')}", 2 * GiB, "raw")
    b.write(ubuntu, 10, 0x22, fmt="raw")
    old = b.image(f"instances/_base/{nova_name('centos-7-2009')}", GiB, "raw")
    three_days_ago = time.time() - 3 * 86400
    os.utime(old, (three_days_ago, three_days_ago))
    for i, (name, base, size) in enumerate(
        [
            ("web-1", cirros, GiB),
            ("web-2", cirros, GiB),
            ("web-3", cirros, 2 * GiB),
            ("db-1", ubuntu, 20 * GiB),
        ]
    ):
        disk = b.overlay(f"instances/{instance_uuid(name)}/disk", base, "raw", size)
        b.write(disk, 1 + 2 * i, 0x30 + i)


def _templates(b: _Builder) -> None:
    golden = b.image("templates/debian-12.qcow2", 20 * GiB)
    b.write(golden, 8, 0x44)
    web = b.overlay("templates/debian-12-web.qcow2", "debian-12.qcow2", "qcow2", 20 * GiB)
    b.write(web, 4, 0x45)
    ci = b.overlay("templates/debian-12-ci.qcow2", "debian-12.qcow2", "qcow2", 20 * GiB)
    b.write(ci, 2, 0x46)
    parent, parent_rel = web, "../debian-12-web.qcow2"
    for month in ("2024-01", "2024-02", "2024-03"):
        snap = b.overlay(f"templates/snapshots/web-{month}.qcow2", parent_rel, "qcow2", 20 * GiB)
        b.write(snap, 1, 0x50, offset_mib=int(month[-1]))
        parent, parent_rel = snap, os.path.basename(snap)
    del parent


def _moved_base(b: _Builder) -> None:
    base = b.image("images/ubuntu-22.04.qcow2", 10 * GiB)
    b.write(base, 4, 0x60)
    b.overlay("clones/ubuntu-dev.qcow2", "../images/ubuntu-22.04.qcow2", "qcow2", 10 * GiB)
    b.overlay("clones/ubuntu-dev-snap.qcow2", "ubuntu-dev.qcow2", "qcow2", 10 * GiB)
    os.makedirs(os.path.join(b.root, "archive"), exist_ok=True)
    shutil.move(base, os.path.join(b.root, "archive", "ubuntu-22.04.qcow2"))
    os.rmdir(os.path.join(b.root, "images"))


def _broken(b: _Builder) -> None:
    b.overlay("broken/loop-a.qcow2", "loop-b.qcow2", "qcow2")
    b.overlay("broken/loop-b.qcow2", "loop-a.qcow2", "qcow2")
    b.image("broken/alpine.raw", GiB, "raw")
    b.overlay("broken/alpine-clone.qcow2", "alpine.raw", "qcow2")  # the base is raw
    b.overlay("broken/nbd-client.qcow2", "nbd://storage.example:10809/export", "raw")


def _legacy(b: _Builder) -> None:
    b.image("legacy/win10.qcow2", 40 * GiB)
    old = b.overlay("legacy/win10-2019.qcow2", "win10.qcow2", "qcow2", 40 * GiB)
    drop_backing_format(old)


#: The internal snapshots of the demo's ``vms/fedora-40.qcow2``, oldest first.
SNAPSHOT_NAMES = ("fresh-install", "before-upgrade")


def _internal_snapshots(b: _Builder) -> None:
    """A VM disk with snapshots inside the file (the Details panel lists them, with Revert)."""
    disk = b.image("vms/fedora-40.qcow2", 20 * GiB)
    b.write(disk, 6, 0x70)
    for i, name in enumerate(SNAPSHOT_NAMES):
        b.run("qemu-img", "snapshot", "-c", name, disk)
        b.write(disk, 2, 0x71 + i, offset_mib=8 + 2 * i)


def drop_backing_format(path: str) -> None:
    """Turns the qcow2 backing-format header extension into an unknown one, as an image made by
    qemu before ``-F`` existed looks (qemu 7.2 refuses to create such an image itself)."""
    with open(path, "r+b") as f:
        data = f.read(65536)
        (version,) = struct.unpack_from(">I", data, 4)
        offset = struct.unpack_from(">I", data, 100)[0] if version >= 3 else 72
        while offset + 8 <= len(data):
            ext_type, length = struct.unpack_from(">II", data, offset)
            if ext_type == 0:
                return
            if ext_type == QCOW2_BACKING_FORMAT_EXT:
                f.seek(offset)
                f.write(struct.pack(">I", 0x12345678))
                return
            offset += 8 + ((length + 7) & ~7)
