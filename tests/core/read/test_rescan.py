"""Incremental rescans (``core.read.rescan``) give exactly what a full scan gives, after any
sequence of changes, with the changed paths as hints and without; and they reuse what did not
change (counted, not timed)."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import qemu_img
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scantrees import NOW, assert_same

from imagegui.core.chains.checkstore import CheckStore
from imagegui.core.chains.graph import ChainGraph
from imagegui.core.chains.incremental import update as update_graph
from imagegui.core.chains.layout import build_forest, update_forest
from imagegui.core.chains.nodestate import all_statuses, updated_statuses
from imagegui.core.read.rescan import ScanDelta, ScanState
from imagegui.core.read.scan import ScanResult, scan_directory

# -- images from header bytes (qemu-img makes each kind once) ----------------------------------


@functools.cache
def _qcow2(backing: str | None, fmt: str | None = "qcow2", size: str = "1M") -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "x.qcow2")
        args = ["create", "-q", "-f", "qcow2"]
        if backing:
            args += ["-b", backing, "-u"]
            if fmt:
                args += ["-F", fmt]
        qemu_img(*args, path, size)
        return Path(path).read_bytes()


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


# -- unit tests -------------------------------------------------------------------------------


def test_unchanged_tree_is_reused_without_reading(tmp_path):
    for i in range(5):
        _write(tmp_path / f"d{i}" / "base.qcow2", _qcow2(None))
        _write(tmp_path / f"d{i}" / "top.qcow2", _qcow2("base.qcow2"))
    _write(tmp_path / "notes.txt", b"hello")
    state = ScanState.from_full(str(tmp_path), racy_ns=0)
    assert state.counts.read == 11 and state.counts.listed == 6
    assert_same(state.rescan(), scan_directory(str(tmp_path)))
    assert (state.counts.read, state.counts.listed) == (0, 0)
    assert state.counts.checked == 6 + 11  # every directory and every file stat'ed once

    top = tmp_path / "d3" / "top.qcow2"
    _write(top, _qcow2("missing.qcow2"))  # another backing name: another size
    assert_same(state.rescan({str(top)}), scan_directory(str(tmp_path)))
    assert state.counts.read == 1 and state.counts.listed == 0
    assert state.counts.checked == 2  # the root and the changed file's directory
    assert state.result.images[str(top)].backing_file == "missing.qcow2"


def test_without_hints_a_changed_stamp_is_read_again(tmp_path):
    _write(tmp_path / "a" / "base.qcow2", _qcow2(None))
    _write(tmp_path / "a" / "top.qcow2", _qcow2("base.qcow2"))
    state = ScanState.from_full(str(tmp_path), racy_ns=0)
    _write(tmp_path / "a" / "top.qcow2", _qcow2("other.qcow2"))
    _write(tmp_path / "b" / "new.qcow2", _qcow2(None))
    assert_same(state.rescan(), scan_directory(str(tmp_path)))
    assert state.counts.read == 2 and state.counts.listed == 2  # the root and the new b


def test_a_racy_stamp_is_not_trusted(tmp_path):
    """A file stamped within the margin before the scan began is read again: a change in the
    same clock tick would leave its stamp as it was."""
    _write(tmp_path / "base.qcow2", _qcow2(None))
    state = ScanState.from_full(str(tmp_path), racy_ns=3600 * 10**9)
    state.rescan()
    assert state.counts.read == 1 and state.counts.listed == 1


def test_external_backing_file_is_probed_again_without_a_hint(tmp_path):
    outside = tmp_path / "outside"
    root = tmp_path / "root"
    _write(outside / "base.qcow2", _qcow2(None))
    _write(root / "top.qcow2", _qcow2(str(outside / "base.qcow2")))
    state = ScanState.from_full(str(root), racy_ns=0)
    assert list(state.result.external) == [str(outside / "base.qcow2")]
    _write(outside / "base.qcow2", _qcow2(None, size="2M"))  # nothing watches it
    got = state.rescan(set())
    assert got.external[str(outside / "base.qcow2")].virtual_size == 2 << 20
    assert_same(got, scan_directory(str(root)))


def test_hard_link_written_through_its_other_name(tmp_path):
    """The first name walked wins (files before subdirectories); writing through the second
    (the only name an event reports) must still change what the first shows."""
    _write(tmp_path / "a" / "disk.qcow2", _qcow2(None))
    os.link(tmp_path / "a" / "disk.qcow2", tmp_path / "b.qcow2")
    state = ScanState.from_full(str(tmp_path), racy_ns=0)
    assert state.result.aliases == {str(tmp_path / "a" / "disk.qcow2"): str(tmp_path / "b.qcow2")}
    with open(tmp_path / "a" / "disk.qcow2", "r+b") as f:
        f.write(_qcow2(None, size="3M"))
    got = state.rescan({str(tmp_path / "a" / "disk.qcow2")})
    assert got.images[str(tmp_path / "b.qcow2")].virtual_size == 3 << 20
    assert_same(got, scan_directory(str(tmp_path)))


@pytest.mark.parametrize("hints", [True, False])
def test_raw_base_adopted_by_a_new_overlay(tmp_path, hints):
    """A file without magic, not named like an image, is a raw base only while an overlay
    names it; its directory does not change when the overlay comes and goes."""
    _write(tmp_path / "blob", b"\0" * 4096)
    (tmp_path / "sub").mkdir()
    state = ScanState.from_full(str(tmp_path), racy_ns=0)
    assert state.result.images == {}
    top = tmp_path / "sub" / "top.qcow2"
    _write(top, _qcow2(str(tmp_path / "blob"), "raw"))  # no "..": not re-read each time
    got = state.rescan({str(top)} if hints else None)
    assert got.images[str(tmp_path / "blob")].format == "raw"
    assert_same(got, scan_directory(str(tmp_path)))
    assert state.counts.read == 2  # the overlay, and the blob read as a raw image
    got = state.rescan({str(top)} if hints else None)  # the same again: the raw read is kept
    assert_same(got, scan_directory(str(tmp_path)))
    assert state.counts.read == (1 if hints else 0)  # a reported file is always read
    os.unlink(top)
    got = state.rescan({str(top)} if hints else None)
    assert got.images == {}
    assert_same(got, scan_directory(str(tmp_path)))


@pytest.mark.parametrize("hints", [True, False])
def test_backing_name_through_a_directory_link_that_changes(tmp_path, hints):
    """``l/../base.qcow2`` climbs out of where the link ``l`` leads: re-pointing the link moves
    the backing file without touching the overlay (an event names only the link)."""
    _write(tmp_path / "x" / "y" / "d" / "base.qcow2", _qcow2(None))
    _write(tmp_path / "x" / "base.qcow2", _qcow2(None, size="2M"))
    (tmp_path / "z" / "w").mkdir(parents=True)
    _write(tmp_path / "z" / "base.qcow2", _qcow2(None, size="3M"))
    os.symlink("x/y", tmp_path / "l")
    _write(tmp_path / "a" / "top.qcow2", _qcow2("../l/../base.qcow2"))
    state = ScanState.from_full(str(tmp_path), racy_ns=0)
    top = str(tmp_path / "a" / "top.qcow2")
    assert state.result.images[top].backing_path == str(tmp_path / "x" / "base.qcow2")
    assert_same(state.rescan(set() if hints else None), scan_directory(str(tmp_path)))
    assert state.counts.read == 0  # resolved again, not read again
    os.unlink(tmp_path / "l")
    os.symlink("z/w", tmp_path / "l")
    got = state.rescan({str(tmp_path / "l")} if hints else None)
    assert got.images[top].backing_path == str(tmp_path / "z" / "base.qcow2")
    assert_same(got, scan_directory(str(tmp_path)))


def test_vmdk_with_extents(make, tmp_path):
    make.create("disk.vmdk", "vmdk", "1M", "subformat=monolithicFlat")
    state = ScanState.from_full(str(tmp_path), racy_ns=0)
    assert list(state.result.images) == [str(tmp_path / "disk.vmdk")]
    with open(tmp_path / "disk-flat.vmdk", "r+b") as f:  # allocate the extent's blocks
        f.write(b"x" * 65536)
        f.flush()
        os.fsync(f.fileno())
    got = state.rescan({str(tmp_path / "disk-flat.vmdk")})
    assert_same(got, scan_directory(str(tmp_path)))
    assert got.images[str(tmp_path / "disk.vmdk")].actual_size >= 65536


def test_odd_entries_are_named_by_a_rescan_as_by_the_full_scan(tmp_path):
    """A pipe, a link to it, a link loop, a dangling link, a folder reached twice, a name that
    is not UTF-8 and a killed move's folder: a rescan that lists the folder again files each
    as the full scan does, in the same words."""
    odd = tmp_path / "odd"
    _write(odd / "good.qcow2", _qcow2(None))
    os.mkfifo(odd / "pipe.img")
    os.symlink("pipe.img", odd / "to-pipe.qcow2")
    os.symlink("loop-b.qcow2", odd / "loop-a.qcow2")
    os.symlink("loop-a.qcow2", odd / "loop-b.qcow2")
    os.symlink("gone.qcow2", odd / "dangling.qcow2")
    os.symlink(".", odd / "self-dir")
    _write(Path(os.fsdecode(os.fsencode(odd) + b"/bad-\xff.qcow2")), _qcow2(None))
    _write(odd / ".moved.0123abcd.partial" / "x.qcow2", _qcow2(None))
    state = ScanState.from_full(str(tmp_path), racy_ns=0)
    words = " | ".join(e.message for e in state.result.errors)
    for said in ("FIFO", "links to", "link loop", "broken symbolic link", "already scanned"):
        assert said in words
    assert "not valid UTF-8" in words and any(e.leftover for e in state.result.errors)
    _write(odd / "new.qcow2", _qcow2(None))  # the folder's listing changes: walked again
    assert_same(state.rescan({str(odd / "new.qcow2"), str(odd)}), scan_directory(str(tmp_path)))
    _write(odd / "newer.qcow2", _qcow2(None))
    assert_same(state.rescan(), scan_directory(str(tmp_path)))


def test_leftover_note_follows_its_writer(make, tmp_path):
    partial = tmp_path / ".flat.qcow2.0123abcd.partial"
    _write(partial, _qcow2(None))
    state = ScanState.from_full(str(tmp_path), racy_ns=0)
    assert [e.leftover for e in state.result.errors] == [True]
    holder = subprocess.Popen(["sleep", "60"], stdout=open(partial, "ab"))  # noqa: SIM115
    try:
        got = state.rescan(set())  # no event: opening a file for writing changes no stamp
        assert [e.leftover for e in got.errors] == [False]
        assert_same(got, scan_directory(str(tmp_path)))
    finally:
        holder.kill()
        holder.wait()


def test_the_delta_names_what_changed_and_nothing_else(tmp_path):
    root = tmp_path / "r"
    _write(root / "base.qcow2", _qcow2(None))
    _write(root / "a" / "over.qcow2", _qcow2("../base.qcow2"))
    _write(root / "a" / "bad.qcow2", b"QFI\xfb" + b"\0" * 60)
    state = ScanState.from_full(str(root), racy_ns=0)
    assert state.delta is None  # the first scan: everything is new
    state.rescan()
    assert state.delta == ScanDelta() and state.delta.unchanged
    over = root / "a" / "over.qcow2"
    over.unlink()
    _write(root / "new.qcow2", _qcow2(None, size="2M"))
    state.rescan({str(over), str(root / "new.qcow2")})
    assert state.delta.images == {str(over), str(root / "new.qcow2")}
    assert not state.delta.errors and not state.delta.unchanged
    (root / "a" / "bad.qcow2").unlink()
    state.rescan()
    assert state.delta.errors == {str(root / "a" / "bad.qcow2")} and not state.delta.images


def test_bad_root_raises_and_keeps_the_state(tmp_path):
    root = tmp_path / "r"
    _write(root / "base.qcow2", _qcow2(None))
    state = ScanState.from_full(str(root))
    before = state.result
    shutil.rmtree(root)
    with pytest.raises(FileNotFoundError):
        state.rescan()
    assert state.result is before


# -- random sequences of changes ---------------------------------------------------------------

DIRS = ["", "a", "a/c", "b", "_base"]
NAMES = ["f0.qcow2", "f1.qcow2", "f2.img", "disk", "f4.bin", "note.txt", "x.vmdk"]


@dataclass
class Tree:
    root: Path
    outside: Path
    #: Paths an inotify watch on every directory under the root reports for the last step.
    changed: set[str] = field(default_factory=set)

    def files(self) -> list[Path]:
        out = []
        for top, dirs, names in os.walk(self.root):
            dirs.sort()
            out += [Path(top, n) for n in sorted(names) if not os.path.islink(Path(top, n))]
        return out

    def dirs(self) -> list[Path]:
        out = [self.root]
        for top, dirs, _ in os.walk(self.root):
            dirs.sort()
            out += [Path(top, d) for d in dirs if not os.path.islink(Path(top, d))]
        return out

    def note(self, *paths: Path) -> None:
        self.changed.update(str(p) for p in paths)


def _pick(items: list, i: int):
    return items[i % len(items)] if items else None


def _op_add(t: Tree, d: int, n: int, what: int, k: int) -> None:
    path = t.root / DIRS[d % len(DIRS)] / NAMES[n % len(NAMES)]
    if path.is_dir() or path.is_symlink():
        return
    created = [p for p in path.parents if not p.exists()]
    files = t.files()
    if what == 0:
        data = _qcow2(None)
    elif what == 1 and files:  # an overlay of an existing file
        target = _pick(files, k)
        name = os.path.relpath(target, path.parent) if k % 3 else str(target)
        data = _qcow2(name, "raw" if k % 2 else "qcow2")
    elif what == 2:
        data = b"\0" * 2048  # no magic: raw by name, else unclaimed
    elif what == 3:
        data = b"just some text\n"
    elif what == 4:  # an overlay of a file outside the root
        data = _qcow2(str(t.outside / "ext.qcow2"))
    else:
        data = b""
    _write(path, data)
    t.note(path, *created)


def _op_remove(t: Tree, i: int) -> None:
    path = _pick(t.files(), i)
    if path:
        path.unlink()
        t.note(path)


def _op_modify(t: Tree, i: int, how: int) -> None:
    """In place, through one name (a hard link's other names get no event)."""
    path = _pick(t.files(), i)
    if not path:
        return
    with open(path, "r+b") as f:
        if how == 0:  # the same size: another virtual size in a qcow2 header
            f.seek(24)
            f.write(((i % 7 + 1) << 20).to_bytes(8, "big"))
        elif how == 1:
            f.truncate(0)
        elif how == 2:
            f.truncate(100)
        else:
            f.write(_qcow2(None))
    t.note(path)


def _op_rename(t: Tree, i: int, d: int, n: int) -> None:
    path = _pick(t.files(), i)
    dest = t.root / DIRS[d % len(DIRS)] / NAMES[n % len(NAMES)]
    if not path or not dest.parent.is_dir() or dest.is_dir():
        return
    os.rename(path, dest)
    t.note(path, dest)


def _op_rename_dir(t: Tree, i: int, n: int) -> None:
    path = _pick(t.dirs()[1:], i)
    if not path:
        return
    dest = t.root / f"moved{n % 3}"
    if dest.exists() or dest.is_symlink() or str(dest).startswith(str(path) + "/"):
        return
    os.rename(path, dest)
    t.note(path, dest)


def _op_link(t: Tree, i: int, d: int, n: int, how: int) -> None:
    files, dirs = t.files(), t.dirs()
    dest = t.root / DIRS[d % len(DIRS)] / f"l{n % 3}.qcow2"
    if not dest.parent.is_dir() or dest.exists() or dest.is_symlink():
        return
    if how == 0 and files:
        os.link(_pick(files, i), dest)
    elif how == 1 and files:
        os.symlink(os.path.relpath(_pick(files, i), dest.parent), dest)
    elif how == 2:
        os.symlink(_pick(dirs, i), dest)  # a directory link, maybe a loop
    elif how == 3:
        os.symlink(t.outside, dest)  # a directory outside the root
    elif how == 4:
        os.symlink(dest.name, dest)  # a link loop
    else:
        os.symlink("nowhere.qcow2", dest)
    t.note(dest)


def _op_rebase(t: Tree, i: int, k: int, how: int) -> None:
    """An image made an overlay of another file (perhaps itself or one above it: a loop), of
    a missing one, or of a protocol source, in place."""
    files = t.files()
    path = _pick(files, i)
    if not path:
        return
    if how == 0:
        target = _pick(files, k)
        data = _qcow2(os.path.relpath(target, path.parent), "qcow2" if k % 2 else "raw")
    elif how == 1:
        data = _qcow2("missing.qcow2")
    else:
        data = _qcow2("nbd://localhost/disk", "raw")
    with open(path, "r+b") as f:
        f.truncate(0)
        f.write(data)
    t.note(path)


def _op_mkdir(t: Tree, d: int) -> None:
    path = t.root / DIRS[d % len(DIRS)]
    if not path.exists() and path.parent.is_dir():
        path.mkdir()
        t.note(path)


def _op_outside(t: Tree, how: int) -> None:
    """The file outside the root changes: no event (nothing watches it)."""
    ext = t.outside / "ext.qcow2"
    if how == 0:
        _write(ext, _qcow2(None, size="2M" if ext.exists() and ext.stat().st_size else "1M"))
    elif how == 1 and ext.exists():
        ext.unlink()
    else:
        _write(ext, _qcow2("gone.qcow2"))


def _op_leftover(t: Tree, d: int, folder: bool) -> None:
    """An interrupted operation's temporary file, or a killed move's folder copy."""
    parent = t.root / DIRS[d % len(DIRS)]
    if not parent.is_dir():
        return
    if folder:
        path = parent / ".moved.0123abcd.partial"
        if not path.exists():
            _write(path / "disk.qcow2", _qcow2(None))
            t.note(path)
    else:
        path = parent / ".f0.qcow2.0123abcd.partial"
        _write(path, _qcow2(None))
        t.note(path)


def _delta_by_value(old: ScanResult, new: ScanResult) -> ScanDelta:
    """``scan_delta`` the slow way: every entry compared by value."""

    def differ(a: dict, b: dict) -> frozenset[str]:
        return frozenset(p for p in a.keys() | b.keys() if a.get(p) != b.get(p))

    def errors(r: ScanResult) -> dict[str, list]:
        out: dict[str, list] = {}
        for e in r.errors:
            out.setdefault(e.path, []).append(e)
        return out

    changed = differ(old.images, new.images), differ(old.external, new.external)
    errs = differ(errors(old), errors(new))
    other = (
        old.files_seen != new.files_seen
        or (
            not any(changed)
            and (list(old.images), list(old.external)) != (list(new.images), list(new.external))
        )
        or (not errs and old.errors != new.errors)
    )
    return ScanDelta(*changed, errs, differ(old.aliases, new.aliases), other)


OPS = st.one_of(
    st.tuples(st.just(_op_add), st.integers(0, 4), st.integers(0, 6), st.integers(0, 5),
              st.integers(0, 20)),
    st.tuples(st.just(_op_remove), st.integers(0, 20)),
    st.tuples(st.just(_op_modify), st.integers(0, 20), st.integers(0, 3)),
    st.tuples(st.just(_op_rename), st.integers(0, 20), st.integers(0, 3), st.integers(0, 6)),
    st.tuples(st.just(_op_rename_dir), st.integers(0, 5), st.integers(0, 2)),
    st.tuples(st.just(_op_link), st.integers(0, 20), st.integers(0, 3), st.integers(0, 2),
              st.integers(0, 5)),
    st.tuples(st.just(_op_mkdir), st.integers(0, 4)),
    st.tuples(st.just(_op_rebase), st.integers(0, 20), st.integers(0, 20), st.integers(0, 2)),
    st.tuples(st.just(_op_outside), st.integers(0, 2)),
    st.tuples(st.just(_op_leftover), st.integers(0, 3), st.booleans()),
)  # fmt: skip


def assert_same_graph(got: ChainGraph, want: ChainGraph) -> None:
    """Equal in everything a reader of the graph sees, orders included, and in what the next
    update reads (``chains.incremental.update``)."""
    assert list(got.g.nodes(data=True)) == list(want.g.nodes(data=True))
    assert list(got.g.edges(data=True)) == list(want.g.edges(data=True))
    assert [list(got.g.pred[n]) for n in got.g] == [list(want.g.pred[n]) for n in want.g]
    assert got.loops == want.loops
    assert got.problems == want.problems
    assert got._problem_index == want._problem_index
    assert got._breaks == want._breaks
    assert got.nova_bases == want.nova_bases
    assert (got._by_id, got._dup_ids) == (want._by_id, want._dup_ids)
    assert got._volatile == want._volatile
    assert got._nova_paths == want._nova_paths
    assert got.checks_note == want.checks_note


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.lists(OPS, min_size=1, max_size=3), min_size=1, max_size=12))
def test_any_sequence_of_changes_rescans_as_a_full_scan(steps):
    """After each step (a few changes together, as one batch of events), the state fed the
    exact changed paths and the state fed none both equal a fresh full scan; and the chain
    graph updated from the rescan's delta (with its node statuses and the forest the layout
    and the list draw) equals one built whole."""
    base = Path(tempfile.mkdtemp(prefix="rescan-"))
    try:
        t = Tree(base / "root", base / "outside")
        t.root.mkdir()
        t.outside.mkdir()
        _write(t.root / "a" / "f0.qcow2", _qcow2(None))
        _write(t.root / "b" / "f1.qcow2", _qcow2("../a/f0.qcow2"))
        hinted = ScanState.from_full(str(t.root), racy_ns=20_000_000)
        plain = ScanState.from_full(str(t.root), racy_ns=20_000_000)
        graph = ChainGraph(hinted.result, now=NOW, checks=CheckStore())
        status = all_statuses(graph)
        forest = build_forest(graph)
        for step in steps:
            t.changed = set()
            for op, *args in step:
                op(t, *args)
            before = hinted.result
            full = scan_directory(str(t.root))
            assert_same(hinted.rescan(t.changed), full)
            assert_same(plain.rescan(), full)
            assert hinted.delta == plain.delta == _delta_by_value(before, full)
            before_graph = graph
            graph = update_graph(graph, hinted.result, hinted.delta, NOW, CheckStore())
            whole = ChainGraph(hinted.result, now=NOW, checks=CheckStore())
            forest = update_forest(forest, before_graph, graph)
            assert forest == build_forest(whole)
            assert forest.roots == sorted(forest.roots)
            assert graph.updated_nodes is not None  # made by an update, not built whole
            assert_same_graph(graph, whole)
            status = updated_statuses(graph, status)
            assert status == all_statuses(whole)
    finally:
        shutil.rmtree(base)
