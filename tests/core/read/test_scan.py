"""The scanner on real directories made with qemu-img: what it lists, what it skips, and that
every field equals what qemu-img info says about the same file."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from conftest import qemu_img, qemu_info
from hypothesis import given, settings
from hypothesis import strategies as st

from imagegui.core.read.scan import scan_directory


def _same_as_qemu(info, path: Path) -> None:
    q = qemu_info(path)
    assert info.format == q["format"]
    assert info.virtual_size == q["virtual-size"]
    assert info.backing_file == q.get("backing-filename")
    assert info.backing_format == q.get("backing-filename-format")
    full = q.get("full-backing-filename")
    assert info.backing_path == (os.path.normpath(full) if full else None)


def test_chain_fields_equal_qemu_img_info(make, tmp_path):
    make.create("base.qcow2", "qcow2", "1G")
    make.overlay("sub/mid.qcow2", "../base.qcow2")
    make.overlay("sub/top.qcow2", "mid.qcow2")
    make.overlay("abs.qcow2", str(tmp_path / "base.qcow2"))
    make.create("plain.raw", "raw", "4M")
    result = scan_directory(str(tmp_path))
    assert sorted(os.path.relpath(p, tmp_path) for p in result.images) == [
        "abs.qcow2",
        "base.qcow2",
        "plain.raw",
        "sub/mid.qcow2",
        "sub/top.qcow2",
    ]
    for path, info in result.images.items():
        _same_as_qemu(info, Path(path))
    assert result.errors == []


def test_actual_size_and_flags(make, tmp_path):
    path = make.create("a.qcow2", "qcow2", "1G")
    info = scan_directory(str(tmp_path)).images[str(path)]
    assert info.actual_size == path.stat().st_blocks * 512
    assert info.flags["version"] == 3
    assert info.flags["cluster_size"] == 65536
    assert info.in_use is False


def test_files_without_magic_count_only_when_named_or_placed_like_images(make, tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "blob").write_bytes(b"\0" * 4096)
    (tmp_path / "disk.img").write_bytes(b"\0" * 4096)
    (tmp_path / "_base").mkdir()
    (tmp_path / "_base" / ("a" * 40)).write_bytes(b"\0" * 4096)
    (tmp_path / "inst").mkdir()
    (tmp_path / "inst" / "disk").write_bytes(b"\0" * 4096)
    (tmp_path / "named-base").write_bytes(b"\0" * 8192)
    make.overlay("top.qcow2", "named-base", "raw")
    result = scan_directory(str(tmp_path))
    names = sorted(os.path.relpath(p, tmp_path) for p in result.images)
    assert names == ["_base/" + "a" * 40, "disk.img", "inst/disk", "named-base", "top.qcow2"]
    assert result.images[str(tmp_path / "named-base")].format == "raw"
    assert result.errors == []  # notes.txt and blob are skipped silently


def test_hostile_files_are_reported_and_the_scan_goes_on(make, tmp_path):
    good = make.create("good.qcow2")
    os.mkfifo(tmp_path / "pipe.img")  # opening it for reading would hang without O_NONBLOCK
    os.symlink("loop-b.qcow2", tmp_path / "loop-a.qcow2")
    os.symlink("loop-a.qcow2", tmp_path / "loop-b.qcow2")
    os.symlink("gone.qcow2", tmp_path / "dangling.qcow2")
    os.symlink(".", tmp_path / "self-dir")
    (tmp_path / "empty.qcow2").write_bytes(b"")
    (tmp_path / "text.qcow2").write_text("not an image\n")
    trunc = make.create("trunc.qcow2")
    with open(trunc, "r+b") as f:
        f.truncate(40)
    weird = os.fsdecode(os.path.join(os.fsencode(tmp_path), b"bad-\xff-name.qcow2"))
    Path(weird).write_bytes(good.read_bytes())

    result = scan_directory(str(tmp_path))
    errors = {os.path.basename(e.path): e for e in result.errors}
    assert str(good) in result.images
    assert weird in result.images  # listed under its real (undecodable) name
    assert "not valid UTF-8" in errors[os.path.basename(weird)].message
    assert "FIFO" in errors["pipe.img"].message
    assert "loop" in errors["loop-a.qcow2"].message
    assert "broken symbolic link" in errors["dangling.qcow2"].message
    assert "already scanned" in errors["self-dir"].message
    assert "empty" in errors["empty.qcow2"].message
    assert "qcow2" in errors["text.qcow2"].message
    assert "truncated" in errors["trunc.qcow2"].message
    hazards = ("pipe.img", "loop-a.qcow2", "dangling.qcow2", "empty.qcow2", "trunc.qcow2")
    assert all(errors[name].looked_like_image for name in hazards)
    # qemu agrees these are not openable images
    for name in ("empty.qcow2", "text.qcow2", "trunc.qcow2"):
        assert qemu_img("info", "-f", "qcow2", tmp_path / name, check=False).returncode != 0


def test_symlinked_image_is_listed_at_its_link_path(make, tmp_path):
    real = make.create("store/real.qcow2")
    (tmp_path / "vms").mkdir()
    os.symlink(real, tmp_path / "vms" / "link.qcow2")
    result = scan_directory(str(tmp_path / "vms"))
    [(path, info)] = result.images.items()
    assert path == str(tmp_path / "vms" / "link.qcow2")
    assert info.is_symlink


def test_hard_links_and_links_to_scanned_images_are_one_node(make, tmp_path):
    real = make.create("real.qcow2")
    os.link(real, tmp_path / "hard.qcow2")
    os.symlink("real.qcow2", tmp_path / "a-link.qcow2")
    result = scan_directory(str(tmp_path))
    hard = str(tmp_path / "hard.qcow2")  # both names are real: the first in name order wins
    assert list(result.images) == [hard]
    assert result.aliases == {str(tmp_path / "a-link.qcow2"): hard, str(real): hard}


def test_unreadable_file_is_reported(make, tmp_path, monkeypatch):
    """Root reads everything, so the permission error is injected at os.open for one file."""
    make.create("a.qcow2")
    secret = make.create("secret.qcow2")
    real_open = os.open

    def fake_open(path, *args, **kw):
        if os.fspath(path) == str(secret):
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, *args, **kw)

    monkeypatch.setattr(os, "open", fake_open)
    result = scan_directory(str(tmp_path))
    assert list(result.images) == [str(tmp_path / "a.qcow2")]
    [error] = result.errors
    assert error.path == str(secret) and "permission denied" in error.message


def test_bad_root_raises():
    with pytest.raises(FileNotFoundError):
        scan_directory("/nonexistent/imagegui-test")


def test_vmdk_extents_belong_to_their_descriptor(make, tmp_path):
    make.create("split.vmdk", "vmdk", "64M", "subformat=twoGbMaxExtentSparse")
    make.create("flat.vmdk", "vmdk", "8M", "subformat=monolithicFlat")
    result = scan_directory(str(tmp_path))
    assert sorted(os.path.basename(p) for p in result.images) == ["flat.vmdk", "split.vmdk"]
    split = result.images[str(tmp_path / "split.vmdk")]
    assert split.extents == (str(tmp_path / "split-s001.vmdk"),)
    assert split.actual_size >= (tmp_path / "split-s001.vmdk").stat().st_blocks * 512
    assert result.errors == []


def test_running_vm_marks_its_image_and_backing_in_use(make, tmp_path):
    base = make.create("base.qcow2")
    top = make.overlay("top.qcow2", "base.qcow2")
    pidfile = tmp_path / "qemu.pid"
    # -daemonize returns only once the VM is set up with its images open (and locked).
    subprocess.run(
        [
            "qemu-system-x86_64",
            "-machine",
            "accel=tcg",
            "-display",
            "none",
            "-S",
            "-daemonize",
            "-pidfile",
            str(pidfile),
            "-drive",
            f"file={top},format=qcow2,if=virtio",
        ],
        check=True,
    )
    try:
        result = scan_directory(str(tmp_path))
        assert result.images[str(top)].in_use and result.images[str(top)].in_use_write
        assert result.images[str(base)].in_use and not result.images[str(base)].in_use_write
    finally:
        os.kill(int(pidfile.read_text()), 15)


def test_files_that_change_or_vanish_mid_scan_are_reported(make, tmp_path, monkeypatch):
    """Real changes made while the scan runs: a file grows while read, a later one is deleted
    between the listing and its turn."""
    import imagegui.core.read.fileread as fileread  # where read_file finds probe_fd

    grows = make.create("a-grows.qcow2")
    vanishes = make.create("b-vanishes.qcow2")
    stays = make.create("c-stays.qcow2")
    real_probe = fileread.probe_fd

    def probe_while_changing(fd, path, st, *args):
        info = real_probe(fd, path, st, *args)
        if path == str(grows):
            with open(grows, "ab") as f:
                f.write(b"\0" * 512)
            vanishes.unlink()
        return info

    monkeypatch.setattr(fileread, "probe_fd", probe_while_changing)
    result = scan_directory(str(tmp_path))
    assert list(result.images) == [str(stays)]
    errors = {os.path.basename(e.path): e.message for e in result.errors}
    assert "changed while it was being read" in errors["a-grows.qcow2"]
    assert "vanished" in errors["b-vanishes.qcow2"]


def test_progress_is_reported(make, tmp_path):
    for i in range(300):
        (tmp_path / f"f{i}.txt").write_text("x")
    seen = []
    scan_directory(str(tmp_path), progress=seen.append)
    assert seen == [256]


def test_every_format_in_one_directory_matches_qemu(make, tmp_path):
    make.create("base.qcow2", "qcow2", "64M")
    make.create("v2.qcow2", "qcow2", "64M", "compat=0.10")
    make.create("old.qcow", "qcow", "64M")
    make.create("disk.qed", "qed", "64M")
    make.overlay("over.qed", "base.qcow2", fmt="qed")
    make.create("sparse.vmdk", "vmdk", "64M")
    make.create("stream.vmdk", "vmdk", "64M", "subformat=streamOptimized")
    make.create("desc.vmdk", "vmdk", "64M", "subformat=monolithicFlat")
    make.create("dyn.vhd", "vpc", "64M")
    make.create("disk.vhdx", "vhdx", "64M")
    make.create("disk.raw", "raw", "64M")
    result = scan_directory(str(tmp_path))
    assert len(result.images) == 11, result.errors
    for path, info in result.images.items():
        _same_as_qemu(info, Path(path))


def test_fixed_vhd_is_raw_to_qemu_but_opens_as_vpc(make, tmp_path):
    path = make.create("fixed.vhd", "vpc", "8M", "subformat=fixed")
    info = scan_directory(str(tmp_path)).images[str(path)]
    _same_as_qemu(info, path)  # qemu's prober: raw, the whole file
    assert info.also_opens_as == ("vpc",)


_MAGICS = [b"QFI\xfb\0\0\0\x03", b"QFI\xfb\0\0\0\x01", b"QED\0", b"KDMV", b"conectix", b"vhdxfile"]
_NAMES = ["a.qcow2", "b.img", "c.vmdk", "d.vhd", "e.vhdx", "f.qed", "disk", "g.raw", "notes"]


@settings(max_examples=40, deadline=None)
@given(
    files=st.lists(
        st.tuples(
            st.sampled_from(_NAMES),
            st.sampled_from([b"", *_MAGICS]),
            st.binary(max_size=600),
        ),
        max_size=8,
    )
)
def test_scan_of_hostile_files_always_finishes_with_records_or_messages(tmp_path_factory, files):
    """Random headers under image names: every file ends up an image, a message, or skipped;
    nothing raises, and the graph and its JSON are built."""
    import io

    from imagegui.cli.scan_cmds import write_scan_json
    from imagegui.core.chains.graph import ChainGraph
    from imagegui.core.read.probe import detect, is_raw_candidate

    root = tmp_path_factory.mktemp("hostile")
    paths = []
    for i, (name, magic, tail) in enumerate(files):
        (root / str(i)).mkdir()
        paths.append(root / str(i) / name)
        paths[-1].write_bytes(magic + tail)
    result = scan_directory(str(root))
    listed = set(result.images) | {e.path for e in result.errors}
    for path in paths:
        if str(path) not in listed:  # skipped silently: only what is no image by any rule
            assert detect(path.read_bytes()[:4096]) is None and not is_raw_candidate(str(path))
    graph = ChainGraph(result)
    out = io.StringIO()
    write_scan_json(graph, out)
    assert json.loads(out.getvalue())["root"] == str(root)


def test_a_flattens_leftover_temporary_file_is_a_note_and_a_warning_not_an_image(make, tmp_path):
    from imagegui.core.chains.graph import ChainGraph

    make.create("base.qcow2")
    make.create(".flat.qcow2.0123abcd.partial")  # a real qcow2 header, as convert leaves it
    result = scan_directory(str(tmp_path))
    partial = str(tmp_path / ".flat.qcow2.0123abcd.partial")
    assert list(result.images) == [str(tmp_path / "base.qcow2")]
    (note,) = result.errors
    assert note.path == partial and note.leftover and not note.looked_like_image
    assert "interrupted move, flatten, convert or new image into flat.qcow2" in note.message
    problems = ChainGraph(result).problems
    assert [(p.kind, p.level, p.path) for p in problems] == [("leftover-file", "warning", partial)]


def test_a_base_named_like_a_leftover_is_an_image(make, tmp_path):
    """A file named like a flatten's temporary file that an image backs onto is a real base:
    the scan must not call it a leftover (nor its overlay broken), whatever its name."""
    from imagegui.core.chains.graph import ChainGraph

    base = make.create(".base.qcow2.1234abcd.partial", "qcow2", "64M")
    make.overlay("vm.qcow2", base.name)
    old = time.time() - 7200
    os.utime(base, (old, old))
    stray = make.create(".other.qcow2.deadbeef.partial", "qcow2", "64M")  # nothing uses it
    os.utime(stray, (old, old))
    result = scan_directory(str(tmp_path))
    assert str(base) in result.images
    assert [e.path for e in result.errors if e.leftover] == [str(stray)]
    graph = ChainGraph(result)
    assert graph.chain_break(str(tmp_path / "vm.qcow2")) is None
    assert [(p.kind, p.path) for p in graph.problems] == [("leftover-file", str(stray))]


def test_records_share_what_images_repeat(make, tmp_path):
    """A scan keeps one record per image: values repeated between images are one object each
    (the base's path as its overlays' backing path, the virtual size, the backing format, the
    empty flags and tuples), and sharing changes no value."""
    base = make.create("base.qcow2", "qcow2", "64M")  # the overlays' size
    make.overlay("a.qcow2", "base.qcow2")
    make.overlay("b.qcow2", "base.qcow2")
    make.create("one.raw", "raw", "4M")
    make.create("two.raw", "raw", "4M")
    images = scan_directory(str(tmp_path)).images
    a, b = images[str(tmp_path / "a.qcow2")], images[str(tmp_path / "b.qcow2")]
    one, two = images[str(tmp_path / "one.raw")], images[str(tmp_path / "two.raw")]
    assert a.backing_path == str(base)
    assert a.backing_path is b.backing_path is images[str(base)].path
    assert a.virtual_size == 64 << 20
    assert a.virtual_size is b.virtual_size is images[str(base)].virtual_size
    assert a.backing_format == "qcow2"
    assert a.backing_format is b.backing_format
    assert one.flags == {}
    assert one.flags is two.flags
    assert a.extents == () and a.also_opens_as == ()
    for path, info in images.items():
        _same_as_qemu(info, Path(path))
