"""Hand-made hazards: byte patches to real qemu-made images for what qemu refuses to create."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

QCOW2_BACKING_FORMAT_EXT = 0xE2792ACA


def qcow2_set_incompatible(path: Path, bits: int) -> None:
    """OR ``bits`` into a v3 qcow2's incompatible features (1 dirty, 2 corrupt)."""
    with open(path, "r+b") as f:
        f.seek(72)
        (value,) = struct.unpack(">Q", f.read(8))
        f.seek(72)
        f.write(struct.pack(">Q", value | bits))


def qcow2_drop_backing_format(path: Path) -> None:
    """Remove the backing-format extension as old qemu (before -F existed) would have written."""
    data = bytearray(path.read_bytes()[:65536])
    (version,) = struct.unpack_from(">I", data, 4)
    offset = struct.unpack_from(">I", data, 100)[0] if version >= 3 else 72
    while offset + 8 <= len(data):
        ext_type, length = struct.unpack_from(">II", data, offset)
        if ext_type == 0:
            raise AssertionError("no backing format extension to drop")
        if ext_type == QCOW2_BACKING_FORMAT_EXT:
            # Turn it into an unknown extension of the same length: qemu skips unknown ones.
            struct.pack_into(">I", data, offset, 0x12345678)
            with open(path, "r+b") as f:
                f.write(bytes(data[: offset + 8]))
            return
        offset += 8 + ((length + 7) & ~7)
    raise AssertionError("extension table runs off the cluster")


def qcow2_chain(root: Path, count: int, loop: bool = False) -> list[Path]:
    """``count`` real qcow2 images ``i00000.qcow2`` ... where image k backs onto image k-1 (a
    chain ``count`` deep), or with ``loop`` onto image k+1 and the last onto the first. One
    overlay is made by qemu-img; the others are copies with the backing name patched (same
    length), so 3,000 images take a fraction of a second instead of 3,000 qemu-img runs."""
    root.mkdir(parents=True, exist_ok=True)
    name = "i{:05d}.qcow2".format
    template = root / "template.tmp"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", name(0), "-F", "qcow2",
         str(template), "64M"],
        check=True,
    )  # fmt: skip
    data = template.read_bytes()
    template.unlink()
    at = data.index(name(0).encode())
    paths = []
    for k in range(count):
        path = root / name(k)
        if not loop and k == 0:
            subprocess.run(
                ["qemu-img", "create", "-q", "-f", "qcow2", str(path), "64M"], check=True
            )
        else:
            target = (k + 1) % count if loop else k - 1
            path.write_bytes(data[:at] + name(target).encode() + data[at + len(name(0)) :])
        paths.append(path)
    return paths
