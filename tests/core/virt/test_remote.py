"""Another host's volumes as a graph, and an overlay created there, against a real libvirtd
reached through a real sshd on a loopback port (``ssh_libvirt_uri``), compared with a local scan
of the same directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import qemu_info
from imagebytes import qcow2_drop_backing_format

from imagegui.core.chains.diagnose import Kind
from imagegui.core.chains.graph import EXTERNAL, IMAGE, MISSING, ChainGraph
from imagegui.core.read.formats.base import ParseError
from imagegui.core.read.scan import scan_directory
from imagegui.core.virt.connect import open_connection
from imagegui.core.virt.remote import (
    RemoteWriteError,
    create_overlay_volume,
    overlay_volume_xml,
    parse_header,
    remote_file_id,
    scan_host,
)


def kinds(graph: ChainGraph) -> set[tuple[str, str]]:
    return {(p.path, str(p.kind)) for p in graph.problems}


def chains_dir(make) -> Path:
    """A base, an overlay of it and an overlay whose backing file is gone."""
    make.create("base.qcow2", "qcow2", "16M")
    make.overlay("ov1.qcow2", "base.qcow2")
    make.overlay("ov2.qcow2", "gone.qcow2")
    return make.root


# ------------------------------------------------------------------- without a daemon


def test_remote_file_ids_never_collide_and_are_never_local() -> None:
    a = remote_file_id("qemu+ssh://h/system", "/pool/a.qcow2")
    assert a == remote_file_id("qemu+ssh://h/system", "/pool/a.qcow2")
    assert a != remote_file_id("qemu+ssh://h/system", "/pool/b.qcow2")
    assert a != remote_file_id("qemu+ssh://other/system", "/pool/a.qcow2")
    assert a[0] < 0  # no st_dev is negative: never the id of a file on this machine


def test_header_bytes_parse_as_a_local_probe_does(make) -> None:
    make.create("base.qcow2")
    top = make.overlay("top.qcow2", "base.qcow2")
    data = top.read_bytes()
    asked: list[tuple[int, int]] = []

    def fetch(offset: int, length: int) -> bytes:
        asked.append((offset, length))
        return data[offset : offset + length]

    header = parse_header(data[:256], len(data), fetch)  # the rest fetched when needed
    assert (header.format, header.backing_file, header.backing_format) == (
        "qcow2",
        "base.qcow2",
        "qcow2",
    )
    assert asked and all(offset >= 0 and offset + length <= len(data) for offset, length in asked)
    with pytest.raises(ParseError):
        parse_header(b"\0" * 512, 512, fetch)


def test_overlay_volume_xml_records_the_backing_format_and_escapes() -> None:
    xml = overlay_volume_xml("a&b.qcow2", 1048576, "/p/<base>.img", "raw")
    assert "<name>a&amp;b.qcow2</name>" in xml
    assert "<backingStore><path>/p/&lt;base&gt;.img</path><format type='raw'/>" in xml
    assert "<target><format type='qcow2'/></target>" in xml


# -------------------------------------------------------------- against a real libvirtd


def test_a_pool_over_ssh_is_the_same_graph_as_a_local_scan(make, define_pool, ssh_libvirt_uri):
    d = chains_dir(make)
    nofmt = make.overlay("nofmt.qcow2", "base.qcow2")
    qcow2_drop_backing_format(nofmt)  # libvirt reports a guessed format: the header says none
    define_pool(d)
    local = ChainGraph(scan_directory(str(d)))
    conn = open_connection(ssh_libvirt_uri, readonly=False)
    try:
        remote = ChainGraph(scan_host(conn, ssh_libvirt_uri, str(d)))
    finally:
        conn.close()
    assert remote.scan.remote_uri == ssh_libvirt_uri
    assert sorted(remote.scan.images) == sorted(local.scan.images)
    assert kinds(remote) == kinds(local)
    assert (str(d / "ov2.qcow2"), str(Kind.MISSING_BACKING)) in kinds(remote)
    assert (str(d / "nofmt.qcow2"), str(Kind.NO_BACKING_FORMAT)) in kinds(remote)
    assert remote.kind(str(d / "gone.qcow2")) == MISSING
    assert remote.backing_of(str(d / "ov1.qcow2")) == str(d / "base.qcow2")
    ov1 = remote.image(str(d / "ov1.qcow2"))
    mine = local.image(str(d / "ov1.qcow2"))
    assert ov1 is not None and mine is not None
    assert (ov1.format, ov1.virtual_size, ov1.backing_file, ov1.backing_format) == (
        mine.format,
        mine.virtual_size,
        mine.backing_file,
        mine.backing_format,
    )
    assert "not found on qemu+ssh://" in remote.problems_for(str(d / "ov2.qcow2"))[0].message


def test_the_remote_graph_never_looks_at_this_machines_files(make, define_pool, libvirt_uri):
    """The host here is this machine, so a graph that stat'ed the host's paths locally would
    see files change after the host was read; it must show the host as libvirt listed it."""
    d = chains_dir(make)
    define_pool(d)
    conn = open_connection(libvirt_uri, readonly=False)
    try:
        scan = scan_host(conn, "qemu+ssh://root@elsewhere/system", str(d))
    finally:
        conn.close()
    (d / "base.qcow2").rename(d / "moved.qcow2")  # here, not on "elsewhere"
    make.create("gone.qcow2", "qcow2", "16M")
    graph = ChainGraph(scan)
    assert graph.kind(str(d / "base.qcow2")) == IMAGE
    assert graph.kind(str(d / "gone.qcow2")) == MISSING
    assert graph.resolve(str(d / "sub" / ".." / "ov1.qcow2")) == str(d / "ov1.qcow2")
    assert graph.resolve(str(d / "moved.qcow2")) is None
    assert all(info.file_id[0] < 0 for info in scan.images.values())


def test_backing_files_outside_the_directory_are_external_as_in_a_local_scan(
    make, define_pool, libvirt_uri, tmp_path_factory
):
    bases = tmp_path_factory.mktemp("bases")
    loose = tmp_path_factory.mktemp("loose")
    make.create("unused.qcow2")  # an image of the directory whose pool is not read
    os.replace(make.root / "unused.qcow2", bases / "base.qcow2")
    (loose / "plain.img").write_bytes(b"\0" * 1048576)  # a file in no pool at all
    vms = make.root / "vms"
    make.overlay("vms/a.qcow2", str(bases / "base.qcow2"))
    make.overlay("vms/b.qcow2", str(loose / "plain.img"), backing_fmt="raw")
    define_pool(bases)
    define_pool(vms)
    local = ChainGraph(scan_directory(str(vms)))
    conn = open_connection(libvirt_uri, readonly=False)
    try:
        remote = ChainGraph(scan_host(conn, "qemu+ssh://root@h/system", str(vms)))
    finally:
        conn.close()
    assert sorted(remote.scan.images) == sorted(local.scan.images)
    assert sorted(remote.scan.external) == sorted(local.scan.external)
    assert remote.kind(str(bases / "base.qcow2")) == EXTERNAL
    assert remote.kind(str(loose / "plain.img")) == EXTERNAL
    assert kinds(remote) == kinds(local)
    notes = [e for e in remote.scan.errors if e.path == str(loose / "plain.img")]
    assert notes and "not a volume of any active storage pool" in notes[0].message


def test_a_read_only_connection_still_lists_the_host_and_says_what_it_could_not_read(
    make, define_pool, libvirt_uri
):
    d = chains_dir(make)
    define_pool(d)
    conn = open_connection(libvirt_uri)  # read-only: libvirt refuses to download bytes
    try:
        scan = scan_host(conn, "qemu+ssh://root@h/system", str(d))
    finally:
        conn.close()
    assert sorted(scan.images) == [str(d / n) for n in ("base.qcow2", "ov1.qcow2", "ov2.qcow2")]
    notes = [e.message for e in scan.errors if not e.looked_like_image]
    assert len(notes) == 1 and "read-only" in notes[0]
    assert ("" + str(d / "ov2.qcow2"), str(Kind.MISSING_BACKING)) in kinds(ChainGraph(scan))


def test_an_overlay_volume_over_ssh_backs_onto_the_base_with_its_format(
    make, define_pool, ssh_libvirt_uri
):
    base = make.create("base.img", "raw", "8M")
    define_pool(make.root)
    conn = open_connection(ssh_libvirt_uri, readonly=False)
    try:
        vol = create_overlay_volume(conn, str(base), str(make.root / "clone.qcow2"))
        with pytest.raises(RemoteWriteError, match="did not create"):
            create_overlay_volume(conn, str(base), str(make.root / "clone.qcow2"))
        with pytest.raises(RemoteWriteError, match="no active storage pool"):
            create_overlay_volume(conn, str(base), "/nonexistent-dir/x.qcow2")
    finally:
        conn.close()
    assert (vol.path, vol.format, vol.backing_path) == (
        str(make.root / "clone.qcow2"),
        "qcow2",
        str(base),
    )
    info = qemu_info(make.root / "clone.qcow2")
    assert info["format"] == "qcow2" and info["virtual-size"] == 8 * 1024 * 1024
    assert info["backing-filename"] == str(base)
    assert info["backing-filename-format"] == "raw"


def test_an_overlay_whose_header_does_not_parse_is_unreadable_as_in_a_local_scan(
    make, define_pool, libvirt_uri
):
    make.create("base.qcow2", "qcow2", "16M")
    bad = make.overlay("bad.qcow2", "base.qcow2")
    make.overlay("above.qcow2", "bad.qcow2")
    with open(bad, "r+b") as f:  # cluster_bits 40: qemu refuses it; libvirt still lists it
        f.seek(20)
        f.write((40).to_bytes(4, "big"))
    define_pool(make.root)
    local = ChainGraph(scan_directory(str(make.root)))
    conn = open_connection(libvirt_uri, readonly=False)
    try:
        remote = ChainGraph(scan_host(conn, "qemu+ssh://root@h/system", str(make.root)))
    finally:
        conn.close()
    assert kinds(remote) == kinds(local)
    assert (str(bad), str(Kind.UNREADABLE)) in kinds(remote)
    assert str(bad) not in remote.scan.images
    assert remote.chain_break(str(make.root / "above.qcow2")) is not None
