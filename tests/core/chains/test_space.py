"""Space accounting (core/chains/space.py) on real images written by qemu-io: guest data against
``qemu-img map``, shadowed bytes, each chain's shares, and what is offered as reclaimable."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from conftest import qemu_img
from opshelpers import qemu_io

from imagegui.core.chains.graph import ChainGraph
from imagegui.core.chains.space import (
    Category,
    Maps,
    read_maps,
    space_job,
    space_report,
)
from imagegui.core.jobs import CancelledError, CancelToken
from imagegui.core.read.extents import LayerMap, MapUnavailable, normalise, total
from imagegui.core.read.model import ImageInfo
from imagegui.core.read.scan import scan_directory

M = 1 << 20
DAY = 86400


def oracle(path: str | os.PathLike, fmt: str) -> LayerMap:
    """What ``qemu-img map`` says the image stores itself: depth-0 extents, present (data, or
    zeroes without data). The image opened as qemu opens it (backing included)."""
    extents = json.loads(qemu_img("map", "--output=json", "-U", "-f", fmt, path).stdout)
    data, zero, end = [], [], 0
    for e in extents:
        start, stop = e["start"], e["start"] + e["length"]
        end = max(end, stop)
        if e["depth"] == 0 and e["present"]:
            (data if e["data"] else zero).append((start, stop))
    return LayerMap(end, normalise(data), normalise(zero), source="oracle")


def _reader():
    """The map reader the window and the command line use (native where it can, else
    qemu-img map of the layer alone)."""
    from imagegui.core.qemu.qemuimg import read_layer_map

    return read_layer_map


def report(root: Path, *, read_map=None, **kwargs):
    graph = ChainGraph(scan_directory(str(root)))
    return graph, space_job(graph, read_map or _reader(), **kwargs).run()


def aged(path: Path, days: float) -> Path:
    t = time.time() - days * DAY
    os.utime(path, (t, t))
    return path


# -- per image -----------------------------------------------------------------------------------


def test_guest_data_of_each_layer_is_what_qemu_img_map_reports(make, tmp_path):
    base = make.create("base.qcow2", "qcow2", "16M")
    qemu_io(base, "write -P 1 0 3M", "write -P 2 8M 1M")
    mid = make.overlay("mid.qcow2", "base.qcow2")
    qemu_io(mid, "write -P 3 1M 1M", "write -z 8M 512k")
    top = make.overlay("top.qcow2", "mid.qcow2")
    qemu_io(top, "write -P 4 12M 64k")
    raw = make.create("disk.raw", "raw", "8M")
    qemu_io(raw, "write -P 5 2M 1M", fmt="raw")
    _, rep = report(tmp_path)
    for path, fmt in ((base, "qcow2"), (mid, "qcow2"), (top, "qcow2"), (raw, "raw")):
        expected = oracle(path, fmt)
        assert rep.images[str(path)].guest_data == total(expected.data), path.name
        assert rep.images[str(path)].on_disk == os.stat(path).st_blocks * 512
    assert rep.images[str(base)].guest_data == 4 * M
    assert rep.images[str(mid)].guest_data == 1 * M
    assert rep.images[str(top)].guest_data == 64 * 1024


def test_a_base_fully_overwritten_by_its_only_overlay_is_all_shadowed(make, tmp_path):
    base = make.create("base.qcow2", "qcow2", "16M")
    qemu_io(base, "write -P 1 0 2M", "write -P 2 6M 1M")
    top = make.overlay("top.qcow2", "base.qcow2")
    # Data over the first part, zeroes over the second: both hide the base's bytes.
    qemu_io(top, "write -P 9 0 2M", "write -z 6M 1M", "write -P 9 10M 1M")
    _, rep = report(tmp_path)
    assert rep.images[str(base)].guest_data == 3 * M
    assert rep.images[str(base)].shadowed == 3 * M
    assert rep.images[str(top)].shadowed == 0  # nothing above it
    [chain] = rep.chains
    assert chain.top == str(top)
    assert [(layer.path, layer.share) for layer in chain.layers] == [
        (str(top), 3 * M),  # its data: 0-2M and 10-11M (the zeroes are no data)
        (str(base), 0),
    ]


def test_a_second_overlay_that_did_not_overwrite_keeps_the_base_unshadowed(make, tmp_path):
    base = make.create("base.qcow2", "qcow2", "16M")
    qemu_io(base, "write -P 1 0 2M")
    one = make.overlay("one.qcow2", "base.qcow2")
    qemu_io(one, "write -P 9 0 2M")
    make.overlay("two.qcow2", "base.qcow2")
    graph, rep = report(tmp_path)
    assert rep.images[str(base)].shadowed == 0
    shares = {c.top: c.share_of(str(base)).share for c in rep.chains}
    assert shares == {str(one): 0, str(tmp_path / "two.qcow2"): 2 * M}


def test_shadowed_is_what_every_chain_above_covers_across_layers(make, tmp_path):
    """Chain a: a2 -> a1 -> base covers 0-4M between its two layers; chain b covers 2-6M.
    Only 2-4M of the base is overwritten in both."""
    base = make.create("base.qcow2", "qcow2", "16M")
    qemu_io(base, "write -P 1 0 8M")
    a1 = make.overlay("a1.qcow2", "base.qcow2")
    qemu_io(a1, "write -P 2 0 2M")
    a2 = make.overlay("a2.qcow2", "a1.qcow2")
    qemu_io(a2, "write -P 3 2M 2M")
    b = make.overlay("b.qcow2", "base.qcow2")
    qemu_io(b, "write -P 4 2M 4M")
    _, rep = report(tmp_path)
    assert rep.images[str(base)].shadowed == 2 * M
    assert rep.images[str(a1)].shadowed == 0  # a2 wrote elsewhere
    chain = next(c for c in rep.chains if c.top == str(a2))
    assert [layer.share for layer in chain.layers] == [2 * M, 2 * M, 4 * M]
    assert chain.guest_data == 8 * M
    assert [layer.fraction for layer in chain.layers] == [0.25, 0.25, 0.5]
    assert chain.on_disk == sum(os.stat(p).st_blocks * 512 for p in (a2, a1, base))
    assert rep.on_disk == sum(os.stat(tmp_path / n).st_blocks * 512 for n in os.listdir(tmp_path))


def test_a_map_that_cannot_be_read_is_a_note_and_the_rest_goes_on(make, tmp_path):
    base = make.create("base.qcow2", "qcow2", "16M")
    qemu_io(base, "write -P 1 0 2M")
    mid = make.overlay("mid.qcow2", "base.qcow2")
    top = make.overlay("top.qcow2", "mid.qcow2")
    qemu_io(top, "write -P 2 0 1M")
    real = _reader()

    def read(info: ImageInfo, cancel: CancelToken) -> LayerMap:
        if info.path == str(mid):
            raise MapUnavailable("qemu-img cannot read what mid.qcow2 holds: it broke")
        return real(info, cancel)

    _, rep = report(tmp_path, read_map=read)
    assert rep.images[str(mid)].guest_data is None
    assert rep.images[str(mid)].note == "qemu-img cannot read what mid.qcow2 holds: it broke"
    assert (str(mid), rep.images[str(mid)].note) in rep.notes
    assert rep.images[str(base)].guest_data == 2 * M
    assert rep.images[str(base)].shadowed is None  # what mid covers is unknown
    assert "mid.qcow2" in (rep.images[str(base)].note or "")
    assert rep.images[str(top)].guest_data == 1 * M
    [chain] = rep.chains
    assert [layer.share for layer in chain.layers] == [1 * M, None, None]
    assert chain.guest_data is None


def test_a_missing_base_and_a_loop_leave_placeholders_and_unknowns_not_errors(make, tmp_path):
    gone = make.create("gone.qcow2")
    orphan = make.overlay("orphan.qcow2", "gone.qcow2")
    qemu_io(orphan, "write -P 1 0 1M", "write -P 1 4M 1M")
    gone.unlink()
    (tmp_path / "bad.qcow2").write_bytes(b"QFI\xfb" + b"\xff" * 508)  # a header qemu rejects
    make.overlay("l1.qcow2", "l2.qcow2")
    make.overlay("l2.qcow2", "l1.qcow2")
    graph, rep = report(tmp_path)
    chain = next(c for c in rep.chains if c.top == str(orphan))
    assert not chain.ok
    assert [(layer.path, layer.share, layer.placeholder) for layer in chain.layers] == [
        (str(orphan), 2 * M, False),
        (str(tmp_path / "gone.qcow2"), None, True),
    ]
    assert chain.guest_data == 2 * M
    for name in ("l1.qcow2", "l2.qcow2"):
        img = rep.images[str(tmp_path / name)]
        assert img.guest_data == 0 and img.shadowed is None and "loop" in (img.note or "")
    assert not any(c.top.endswith(("l1.qcow2", "l2.qcow2")) for c in rep.chains)
    [(path, message)] = [(p, m) for p, m in rep.notes if p.endswith("bad.qcow2")]
    assert message.endswith("(not counted)") and path not in rep.images


def test_reading_maps_reports_progress_and_stops_on_cancel(make, tmp_path):
    for i in range(4):
        make.create(f"d{i}.qcow2", "qcow2", "1M")
    graph = ChainGraph(scan_directory(str(tmp_path)))
    seen: list[float] = []
    cancel = CancelToken()
    real = _reader()

    def read(info: ImageInfo, token: CancelToken) -> LayerMap:
        if len(seen) == 3:
            cancel.cancel()
        return real(info, token)

    maps = read_maps(graph, real, seen.append)
    assert seen == [0.0, 0.25, 0.5, 0.75, 1.0] and len(maps.maps) == 4
    seen.clear()
    with pytest.raises(CancelledError):
        read_maps(graph, read, seen.append, cancel)
    assert seen[-1] < 1.0
    # Two at once: the same maps, in scan order, progress counted in the calling thread.
    for i in range(4):
        make.create(f"e{i}.qed", "qed", "1M")  # qemu-img maps: read on the pool
    graph = ChainGraph(scan_directory(str(tmp_path)))
    maps = read_maps(graph, real)
    seen.clear()
    both = read_maps(graph, real, seen.append, jobs=2)
    assert list(both.maps.items()) == list(maps.maps.items())
    assert seen == [i / 8 for i in range(9)]
    cancel = CancelToken()
    seen.clear()

    def cancelling(info: ImageInfo, token: CancelToken) -> LayerMap:
        cancel.cancel()  # the first read cancels: the two running finish, no other starts
        return real(info, token)

    with pytest.raises(CancelledError):
        read_maps(graph, cancelling, seen.append, cancel, jobs=2)
    assert cancel.cancelled and seen[-1] < 1.0


def test_only_maps_qemu_img_reads_go_to_the_pool(make, tmp_path):
    """Native maps take microseconds: handing them to threads cost more than it saved (5x the
    scan on 10,000 qcow2 images), so they are read in the calling thread, the rest on the pool."""
    import threading

    for i in range(3):
        make.create(f"n{i}.qcow2", "qcow2", "1M")
        make.create(f"s{i}.qed", "qed", "1M")
    graph = ChainGraph(scan_directory(str(tmp_path)))
    threads: dict[str, str] = {}
    real = _reader()

    def read(info: ImageInfo, token: CancelToken) -> LayerMap:
        threads[os.path.basename(info.path)] = threading.current_thread().name
        return real(info, token)

    read_maps(graph, read, jobs=2)
    me = threading.current_thread().name
    assert {n for n, t in threads.items() if t == me} == {"n0.qcow2", "n1.qcow2", "n2.qcow2"}
    assert all(threads[f"s{i}.qed"].startswith("maps") for i in range(3))


def test_a_failing_reader_stops_the_others_without_cancelling_the_callers_token(make, tmp_path):
    for i in range(3):
        make.create(f"d{i}.qed", "qed", "1M")  # qemu-img maps: read on the pool
    graph = ChainGraph(scan_directory(str(tmp_path)))
    caller = CancelToken()

    def broken(info: ImageInfo, token: CancelToken) -> LayerMap:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        read_maps(graph, broken, cancel=caller, jobs=2)
    assert not caller.cancelled


# -- reclaimable ---------------------------------------------------------------------------------


def test_reclaimable_lists_unused_cache_bases_and_orphans_never_a_base_with_overlays(
    make, tmp_path
):
    nova = tmp_path / "_base"
    used = aged(make.create("_base/" + "a" * 40, "raw", "8M"), 40)
    qemu_io(used, "write -P 1 0 1M", fmt="raw")
    old = aged(make.create("_base/" + "b" * 40, "raw", "8M"), 3)
    qemu_io(old, "write -P 1 0 1M", fmt="raw")
    aged(old, 3)
    young = make.create("_base/" + "c" * 40, "raw", "8M")  # unused, but under Nova's 24 h
    resized = aged(make.create("_base/" + "b" * 40 + "_10", "raw", "8M"), 2 / 24)
    disk = make.overlay("inst-1/disk", str(used), backing_fmt="raw")
    qemu_io(disk, "write -P 2 0 64k")
    aged(disk, 40)  # a VM disk nobody runs for 40 days: an orphan (libvirt not asked)
    forgotten = aged(make.create("forgotten.qcow2", "qcow2", "8M"), 31)
    recent = make.create("recent.qcow2", "qcow2", "8M")
    aged(recent, 29)
    base = aged(make.create("base.qcow2", "qcow2", "8M"), 90)  # old, but overlays use it
    clone = make.overlay("clone.qcow2", "base.qcow2")
    qemu_io(clone, "write -P 3 0 64k")
    aged(clone, 10)
    empty = make.overlay("empty.qcow2", "base.qcow2")  # stores nothing of its own
    partial = make.create(".flat.qcow2.0123abcd.partial", "qcow2", "8M")
    graph, rep = report(tmp_path)
    got = [(r.category, os.path.relpath(r.path, tmp_path), r.bytes) for r in rep.reclaimable]
    size = {p: os.stat(p).st_blocks * 512 for p in (old, resized, partial, empty, forgotten, disk)}
    assert got == [
        (Category.LEFTOVER, partial.name, size[partial]),
        (Category.NOVA_UNUSED_BASE, f"_base/{'b' * 40}", size[old]),
        (Category.NOVA_UNUSED_BASE, f"_base/{'b' * 40}_10", size[resized]),
        (Category.EMPTY_OVERLAY, empty.name, size[empty]),
        (Category.ORPHAN, forgotten.name, size[forgotten]),
        (Category.ORPHAN, "inst-1/disk", size[disk]),
    ]
    assert all(r.action == "delete" and r.reason for r in rep.reclaimable)
    orphan = next(r for r in rep.reclaimable if r.path == str(forgotten))
    assert orphan.reason.startswith("last written 31 days ago; nothing backs onto it")
    assert orphan.reason.endswith("(libvirt did not answer: a VM defined there may still use it)")
    by = rep.by_category()
    assert list(by) == list(Category) and by[Category.ORPHAN] == size[forgotten] + size[disk]
    assert rep.reclaimable_bytes == sum(size.values())
    assert not rep.libvirt_checked
    assert any("libvirt was not reachable" in m for _, m in rep.notes)
    # Older than 20 days: recent (29) too; 45: neither orphan (40 and 31).
    _, wide = report(tmp_path, older_than_days=20)
    assert str(recent) in {r.path for r in wide.reclaimable}
    _, every = report(tmp_path, older_than_days=0)  # never a base with overlays, whatever age
    assert {str(base), str(used), str(young)}.isdisjoint(r.path for r in every.reclaimable)
    assert str(clone) in {r.path for r in every.reclaimable}
    _, narrow = report(tmp_path, older_than_days=45)
    assert {r.category for r in narrow.reclaimable} == {
        Category.LEFTOVER,
        Category.NOVA_UNUSED_BASE,
        Category.EMPTY_OVERLAY,
    }
    assert str(young) not in {r.path for r in narrow.reclaimable} and nova.is_dir()


def test_an_image_a_running_vm_holds_is_never_reclaimable(make, tmp_path):
    base = aged(make.create("base.qcow2"), 60)
    top = make.overlay("top.qcow2", "base.qcow2")
    aged(top, 60)
    alone = aged(make.create("alone.qcow2"), 60)
    pidfile = tmp_path / "qemu.pid"
    subprocess.run(
        ["qemu-system-x86_64", "-machine", "accel=tcg", "-display", "none", "-S",
         "-daemonize", "-pidfile", str(pidfile),
         "-drive", f"file={top},format=qcow2,if=virtio"],
        check=True,
    )  # fmt: skip
    try:
        graph, rep = report(tmp_path)
        assert graph.image(str(top)).in_use and graph.image(str(base)).in_use
        assert [r.path for r in rep.reclaimable] == [str(alone)]
    finally:
        os.kill(int(pidfile.read_text()), 15)


def test_an_image_a_libvirt_domain_uses_is_never_reclaimable(
    make, tmp_path, libvirt_uri, define_domain
):
    from imagegui.core.virt.inventory import DomainIndex

    vm_disk = aged(make.create("vm.qcow2"), 60)
    aged(make.create("alone.qcow2"), 60)
    define_domain(disks=[vm_disk])
    index, hosts = DomainIndex.read([libvirt_uri])
    graph = ChainGraph(scan_directory(str(tmp_path)), domains=index)
    assert graph.domains_of(str(vm_disk))
    rep = space_report(graph, read_maps(graph, _reader()))
    assert rep.libvirt_checked
    [alone] = rep.reclaimable
    assert os.path.basename(alone.path) == "alone.qcow2"
    assert alone.reason.endswith("it is not in use, no libvirt VM uses it")
    assert not any("libvirt" in m for _, m in rep.notes)


def test_space_report_takes_maps_as_a_plain_mapping_too(make, tmp_path):
    base = make.create("base.qcow2", "qcow2", "4M")
    graph = ChainGraph(scan_directory(str(tmp_path)))
    rep = space_report(graph, {str(base): LayerMap(4 * M, ((0, M),))})
    assert rep.images[str(base)].guest_data == M
    assert isinstance(Maps(), Maps)


def test_shares_are_clipped_to_the_top_s_disk_size(make, tmp_path):
    """An overlay smaller than its base: the guest never reads the base's bytes past its end."""
    base = make.create("base.qcow2", "qcow2", "16M")
    qemu_io(base, "write -P 1 0 1M", "write -P 1 12M 2M")
    qemu_img("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "-u",
             tmp_path / "small.qcow2", "8M")  # fmt: skip
    _, rep = report(tmp_path)
    [chain] = rep.chains
    assert chain.virtual_size == 8 * M
    assert [layer.share for layer in chain.layers] == [0, 1 * M]
    assert rep.images[str(base)].guest_data == 3 * M


def test_another_hosts_images_are_never_read_here_nor_offered(make, tmp_path):
    """A remote graph's paths name that host's files: a file of the same name here is not
    the image, so no map is read with them and nothing is offered for deleting."""
    import dataclasses

    aged(make.create("old.qcow2"), 60)
    scan = dataclasses.replace(scan_directory(str(tmp_path)), remote_uri="qemu+ssh://h/system")
    graph = ChainGraph(scan)

    def never(info: ImageInfo, cancel: CancelToken) -> LayerMap:
        raise AssertionError(f"read {info.path} here")

    rep = space_job(graph, never).run()
    [img] = rep.images.values()
    assert img.guest_data is None and "another host" in (img.note or "")
    assert rep.reclaimable == []
