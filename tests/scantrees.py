"""Trees of real image headers for scan tests, and the comparison of two scans: shared by the
tests of the ways a scan reads (threads, a second process, rescans), which must all agree."""

from __future__ import annotations

import functools
import os
import struct
import subprocess
import tempfile
from pathlib import Path

from hypothesis import strategies as st

from imagegui.core.chains.graph import ChainGraph
from imagegui.core.read.scan import ScanResult

#: The clock the compared graphs are built at (their problems mention ages).
NOW = 2_000_000_000.0


def assert_same(got: ScanResult, want: ScanResult) -> None:
    """Equal in every field a consumer reads (``seconds`` aside), dict order included (the
    graph's node order and the problems' order follow it)."""
    assert got.root == want.root
    assert list(got.images.items()) == list(want.images.items())
    assert list(got.external.items()) == list(want.external.items())
    assert got.errors == want.errors
    assert got.aliases == want.aliases
    assert got.files_seen == want.files_seen
    assert ChainGraph(got, now=NOW).problems == ChainGraph(want, now=NOW).problems


# A random tree: each file is one of these, named from a small set so names collide with
# backing names, hard links and symlinks point at earlier files.
KINDS = [
    "base", "overlay", "raw", "junk", "empty", "hardlink", "symlink", "fifo", "partial", "moved"
]  # fmt: skip
NAMES = ["a.qcow2", "b.img", "disk", "c.vmdk", "notes", "d.raw", "e.qcow2"]


def overlay_bytes(backing: str) -> bytes:
    """A real qcow2 overlay made by qemu-img, its backing name (offset at 8, length at 16)
    patched."""
    data = bytearray(qcow2_template("x" * 60))
    (offset,) = struct.unpack_from(">Q", data, 8)
    name = os.fsencode(backing)
    data[offset : offset + len(name)] = name
    struct.pack_into(">I", data, 16, len(name))
    return bytes(data)


@functools.cache
def qcow2_template(backing: str | None) -> bytes:
    """A qcow2 image made by qemu-img (an overlay of ``backing``, not opened)."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "t.qcow2")
        args = ["qemu-img", "create", "-q", "-f", "qcow2", path, "64M"]
        if backing:
            args[5:5] = ["-u", "-b", backing, "-F", "qcow2"]
        subprocess.run(args, check=True)
        with open(path, "rb") as f:
            return f.read()


#: A random tree's files for :func:`make_random_tree`: (directory, name, kind, pick).
RANDOM_FILES = st.lists(
    st.tuples(
        st.sampled_from(["", "x", "x/y", "z"]),
        st.sampled_from(NAMES),
        st.sampled_from(KINDS),
        st.integers(0, 30),
    ),
    max_size=24,
)


def make_random_tree(root: Path, files: list[tuple[str, str, str, int]]) -> None:
    """Writes ``files`` (:data:`RANDOM_FILES`) under ``root``; ``pick`` chooses an earlier file
    (a backing name, a link's target) and sizes."""
    made: list[Path] = []
    for directory, name, kind, pick in files:
        path = root / directory / name
        if path.exists() or path.is_symlink():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        earlier = made[pick % len(made)] if made else root / "missing.qcow2"
        if kind == "base":
            path.write_bytes(qcow2_template(None))
        elif kind == "overlay":
            path.write_bytes(overlay_bytes(os.path.relpath(earlier, path.parent)))
        elif kind == "raw":
            path.write_bytes(b"\0" * (4096 * (1 + pick % 3)))
        elif kind == "junk":
            path.write_bytes(b"QFI\xfb" + bytes(pick))
        elif kind == "empty":
            path.write_bytes(b"")
        elif kind == "hardlink" and earlier.is_file() and not earlier.is_symlink():
            os.link(earlier, path)
        elif kind == "symlink":
            os.symlink(os.path.relpath(earlier, path.parent) if pick % 4 else "..", path)
        elif kind == "fifo":
            os.mkfifo(path)
        elif kind == "moved":  # a killed move's folder copy
            path = path.with_name(f".{name}.0123abcd.partial")
            if path.exists():
                continue
            path.mkdir()
            (path / name).write_bytes(qcow2_template(None))
        elif kind == "partial":
            path = path.with_name(f".{name}.0123abcd.partial")
            if path.exists():
                continue
            path.write_bytes(qcow2_template(None))
        else:
            continue
        made.append(path)


def make_hostile_tree(make, root: Path) -> tuple[Path, str]:
    """Everything a walk must survive, under ``root`` (made with conftest's ``make`` fixture,
    whose paths are relative to ``root``'s parent, named ``in``): hard and symbolic links, a
    FIFO, link loops, a dangling link, a directory link back up, empty, junk and truncated
    files, a raw base without magic, a base outside the tree, leftovers of interrupted
    operations, a name that is not UTF-8, a split VMDK. Returns the good base and the odd name."""
    good = make.create("in/a/good.qcow2")
    make.overlay("in/a/over.qcow2", "good.qcow2")
    os.link(good, root / "a" / "hard.qcow2")  # a hard link: the first real name wins
    os.symlink("good.qcow2", root / "a" / "a-link.qcow2")  # a link listed before its target
    os.mkfifo(root / "a" / "pipe.img")
    os.symlink("loop-b.qcow2", root / "a" / "loop-a.qcow2")
    os.symlink("loop-a.qcow2", root / "a" / "loop-b.qcow2")
    os.symlink("gone.qcow2", root / "a" / "dangling.qcow2")
    os.symlink("..", root / "a" / "up")  # a directory link: walked last, already seen
    (root / "a" / "empty.qcow2").write_bytes(b"")
    (root / "a" / "text.qcow2").write_text("not an image\n")
    (root / "a" / "notes.txt").write_text("skipped in silence")
    trunc = make.create("in/b/trunc.qcow2")
    with open(trunc, "r+b") as f:
        f.truncate(40)
    (root / "b" / "named-base").write_bytes(b"\0" * 8192)  # no magic, adopted as raw
    make.overlay("in/b/top.qcow2", "named-base", "raw")
    make.overlay("in/b/outside.qcow2", str(make.create("outside-base.qcow2")))
    make.create("in/b/.flat.qcow2.0123abcd.partial")  # a leftover
    weird = os.fsdecode(os.path.join(os.fsencode(root / "b"), b"bad-\xff-name.qcow2"))
    Path(weird).write_bytes(good.read_bytes())
    make.create("in/c/split.vmdk", "vmdk", "64M", "subformat=twoGbMaxExtentSparse")
    make.create("in/c/.moved.0123abcd.partial/copy.qcow2")  # a killed move's folder copy
    return good, weird
