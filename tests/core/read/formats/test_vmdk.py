"""VMDK headers read natively must say what ``qemu-img info`` says about the same file."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from conftest import qemu_img, qemu_info

from imagegui.core.read.formats import vmdk
from imagegui.core.read.formats.base import BoundedReader, Header, ParseError

SUBFORMATS = [
    "monolithicSparse",
    "monolithicFlat",
    "twoGbMaxExtentSparse",
    "twoGbMaxExtentFlat",
    "streamOptimized",
]


def parse_file(path: Path) -> tuple[Header, BoundedReader]:
    """Parse the way the scanner does: prime the reader with the first 4 KiB."""
    with open(path, "rb") as f:
        r = BoundedReader(f, os.fstat(f.fileno()).st_size)
        head = os.pread(f.fileno(), 4096, 0)
        r.prime(0, head)
        assert vmdk.probe(head)
        return vmdk.parse(r), r


def qemu_fails(path: Path) -> bool:
    return qemu_img("info", "-U", "--output=json", path, check=False).returncode != 0


def assert_same_as_qemu(h: Header, path: Path) -> None:
    q = qemu_info(path)
    assert q["format"] == h.format == "vmdk"
    assert h.virtual_size == q["virtual-size"]
    assert h.backing_file == q.get("backing-filename")
    assert h.backing_format == q.get("backing-filename-format")
    data = q["format-specific"]["data"]
    assert h.flags["create_type"] == data["create-type"]
    assert h.flags["cid"] == data["cid"]
    assert h.flags["parent_cid"] == data["parent-cid"]


def descriptor(body: str, create_type: str = "monolithicFlat", extra: str = "") -> str:
    return (
        "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\n"
        f'createType="{create_type}"\n{extra}# Extent description\n{body}'
    )


@pytest.mark.parametrize("subformat", SUBFORMATS)
def test_subformats_match_qemu(make, subformat: str) -> None:
    path = make.create(f"{subformat}.vmdk", "vmdk", "64M", f"subformat={subformat}")
    h, r = parse_file(path)
    assert_same_as_qemu(h, path)
    assert r.used == 0  # everything needed was in the primed first 4 KiB
    qemu_extents = qemu_info(path)["format-specific"]["data"]["extents"]
    if subformat.startswith(("monolithicSparse", "streamOptimized")):
        assert h.extents == ()
    else:
        # qemu prints the extent joined to the descriptor's directory; we keep it as stored.
        assert [str(path.parent / n) for n in h.extents] == [e["filename"] for e in qemu_extents]
        assert h.flags["extents"][0]["sectors"] * 512 == qemu_extents[0]["virtual-size"]
    assert h.flags["compressed"] is (subformat == "streamOptimized")
    assert h.flags["extent_outside_dir"] is False


def test_child_records_parent_hint_and_vmdk_format(make) -> None:
    make.create("base.vmdk", "vmdk", "64M")
    qemu_img("create", "-q", "-f", "vmdk", "-b", "base.vmdk", "-F", "vmdk", make.root / "c.vmdk")
    h, _ = parse_file(make.root / "c.vmdk")
    assert h.backing_file == "base.vmdk"
    assert h.backing_format == "vmdk"
    assert_same_as_qemu(h, make.root / "c.vmdk")


def test_sparse_extent_of_a_split_image_is_refused_like_qemu(make) -> None:
    """qemu cannot open ``-s001.vmdk`` alone: it has no descriptor, so no CID."""
    make.create("split.vmdk", "vmdk", "64M", "subformat=twoGbMaxExtentSparse")
    extent = make.root / "split-s001.vmdk"
    assert qemu_fails(extent)
    with pytest.raises(ParseError, match="CID"):
        parse_file(extent)


def test_descriptor_with_hint_names_any_parent(tmp_path: Path) -> None:
    (tmp_path / "d-flat.vmdk").write_bytes(bytes(1 << 20))
    extra = 'parentFileNameHint="base.qcow2"\n'
    path = tmp_path / "d.vmdk"
    path.write_text(descriptor('RW 2048 FLAT "d-flat.vmdk" 0\n', extra=extra))
    h, _ = parse_file(path)
    assert (h.backing_file, h.backing_format) == ("base.qcow2", "vmdk")
    assert_same_as_qemu(h, path)


def test_blank_line_before_extent_counts_it_twice_like_qemu(tmp_path: Path) -> None:
    """qemu's sscanf skips the newline of an empty line and reads the next line's extent."""
    (tmp_path / "d-flat.vmdk").write_bytes(bytes(1 << 20))
    path = tmp_path / "d.vmdk"
    path.write_text(descriptor('\nRW 2048 FLAT "d-flat.vmdk" 0\n'))
    h, _ = parse_file(path)
    assert h.virtual_size == 2 * 2048 * 512
    assert h.extents == ("d-flat.vmdk",)
    assert_same_as_qemu(h, path)


def test_extent_outside_directory_is_flagged(tmp_path: Path) -> None:
    """CVE-2022-47951: qemu happily opens a FLAT extent anywhere; we flag it."""
    (tmp_path / "outside-flat.vmdk").write_bytes(bytes(1 << 20))
    (tmp_path / "images").mkdir()
    path = tmp_path / "images" / "evil.vmdk"
    path.write_text(descriptor('RW 2048 FLAT "../outside-flat.vmdk" 0\n'))
    h, _ = parse_file(path)
    assert h.flags["extent_outside_dir"] is True
    assert h.extents == ("../outside-flat.vmdk",)
    assert_same_as_qemu(h, path)

    path.write_text(descriptor('RW 2048 FLAT "../../../../../../etc/passwd" 0\n'))
    h, _ = parse_file(path)
    assert h.flags["extent_outside_dir"] is True
    path.write_text(descriptor('RW 2048 FLAT "/etc/passwd" 0\n'))
    assert parse_file(path)[0].flags["extent_outside_dir"] is True


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version=1\nhello world\n", "createType"),
        (descriptor('RW 2048 FLAT "x-flat.vmdk" 0\n', "monolithicSparse"), "unsupported"),
        (descriptor('RW 2048 FLAT "x-flat.vmdk"\n'), "extent line"),
        (descriptor("# nothing\n"), "no usable extent"),
        (descriptor('RDONLY 2048 FLAT "x-flat.vmdk" 0\n'), "no usable extent"),
        (descriptor('RW 9 FLAT "x-flat.vmdk" 0\nparentFileNameHint=x\n'), "closing quote"),
    ],
)
def test_bad_descriptors_are_refused_like_qemu(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "x-flat.vmdk").write_bytes(bytes(1 << 20))
    path = tmp_path / "bad.vmdk"
    path.write_text(text)
    with pytest.raises(ParseError, match=message):
        parse_file(path)
    # A descriptor without extents makes qemu-img 7.2 abort (assertion) rather than refuse.
    assert qemu_fails(path)


def test_probe_follows_qemu_text_rule(tmp_path: Path) -> None:
    good = descriptor('RW 8 FLAT "f" 0\n').encode()
    assert vmdk.probe(good)
    assert vmdk.probe(b"  \r\n#c\nversion=2\r\n")
    assert vmdk.probe(b"COWD") and vmdk.probe(b"KDMV\0\0")
    assert not vmdk.probe(b"KDM")
    assert not vmdk.probe(b"version=1")  # no newline in the probe buffer
    assert not vmdk.probe(b"version=4\n")
    # An empty line (no spaces) stops qemu's prober: qemu calls such a file raw.
    blank_first = b"\n" + good
    assert not vmdk.probe(blank_first)
    path = tmp_path / "blank.vmdk"
    path.write_bytes(blank_first)
    assert qemu_info(path)["format"] == "raw"
    # qemu probes only the first 512 bytes.
    long_comment = b"#" + b"x" * 600 + b"\n" + good
    assert not vmdk.probe(long_comment)
    path.write_bytes(long_comment)
    assert qemu_info(path)["format"] == "raw"


def test_zero_length_and_tiny_files() -> None:
    from imagegui.core.read.formats.base import BytesReader

    for data in (b"", b"KD", b"KDMV"):
        with pytest.raises(ParseError):
            vmdk.parse(BytesReader(data))


def test_truncated_sparse_is_refused_like_qemu(make) -> None:
    path = make.create("t.vmdk", "vmdk", "64M")
    os.truncate(path, 5000)
    assert qemu_fails(path)
    with pytest.raises(ParseError, match="truncated"):
        parse_file(path)


def test_huge_descriptor_is_capped(tmp_path: Path) -> None:
    path = tmp_path / "huge.vmdk"
    path.write_text(descriptor('RW 8 FLAT "f" 0\n') + "#" * (200 * 1024) + "\n")
    with pytest.raises(ParseError, match="64 KiB"):
        parse_file(path)


def test_stream_optimized_footer_is_used(make) -> None:
    """gd_offset == GD_AT_END: the real header is in the footer 1536 bytes before the end."""
    path = make.create("s.vmdk", "vmdk", "64M", "subformat=streamOptimized")
    data = bytearray(path.read_bytes())
    real_header = bytes(data[:512])
    struct.pack_into("<Q", data, 56, 0xFFFFFFFFFFFFFFFF)  # gd_offset -> at end
    struct.pack_into("<Q", data, 12, 1)  # the head's capacity is not the one qemu uses
    footer = bytearray(1536)
    struct.pack_into("<QII", footer, 0, 0, 0, 3)  # footer marker
    footer[512:1024] = real_header
    struct.pack_into("<QII", footer, 1024, 0, 0, 0)  # end-of-stream marker
    path.write_bytes(bytes(data) + bytes(footer))
    h, _ = parse_file(path)
    assert h.flags["grain_directory_at_end"] is True
    assert_same_as_qemu(h, path)

    # A broken footer is refused by both.
    path.write_bytes(bytes(data) + bytes(1536))
    assert qemu_fails(path)
    with pytest.raises(ParseError, match="footer"):
        parse_file(path)


def test_bad_sparse_header_values(make) -> None:
    base = bytearray(make.create("b.vmdk", "vmdk", "64M").read_bytes())
    cases = {
        "version": (4, "<I", 99),  # version
        "L2 table": (44, "<I", 4096),  # num_gtes_per_gt
        "L1 entry": (20, "<Q", 0),  # granularity
    }
    for message, (off, fmt, value) in cases.items():
        data = bytearray(base)
        struct.pack_into(fmt, data, off, value)
        path = make.root / "bad.vmdk"
        path.write_bytes(bytes(data))
        assert qemu_fails(path), message
        with pytest.raises(ParseError, match=message):
            parse_file(path)


def test_many_blank_lines_stay_linear() -> None:
    """Each blank line before an extent repeats it (as in qemu) without a quadratic rescan."""
    import time

    from imagegui.core.read.formats.base import BytesReader

    text = descriptor("\n" * 60000 + 'RW 8 FLAT "f" 0\n').encode()
    start = time.perf_counter()
    h = vmdk.parse(BytesReader(text))
    assert time.perf_counter() - start < 5
    assert h.virtual_size == 60001 * 8 * 512
    assert h.extents == ("f",)
