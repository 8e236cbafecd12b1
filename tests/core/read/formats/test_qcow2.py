"""qcow2 parser against the real qemu-img: every field it reports, and every refusal.

Images are made by qemu-img; hazards qemu refuses to create are made by patching real images.
For each, either both we and ``qemu-img info`` open the file and agree on every field, or both
refuse it.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from pathlib import Path

import formatcheck
import pytest
from conftest import ImageMaker, qemu_img, qemu_info
from formatcheck import HEAD, parse_file

from imagegui.core.read.formats import qcow2
from imagegui.core.read.formats.base import BytesReader, Header, ParseError

SECRET = ["--object", "secret,id=sec0,data=x"]


def read_header(path: Path) -> tuple[Header | ParseError, int]:
    """Parse as the scanner does (one 4 KiB read, primed), returning bytes read beyond it."""
    return parse_file(qcow2, path)


def expected_fields(info: dict) -> dict[str, object]:
    """What qemu-img info says, in our vocabulary."""
    data = info.get("format-specific", {}).get("data", {})
    v3 = data.get("compat") == "1.1"
    return {
        "format": info["format"],
        "virtual_size": info["virtual-size"],
        "backing_file": info.get("backing-filename"),
        "backing_format": info.get("backing-filename-format"),
        "cluster_size": info.get("cluster-size"),
        "dirty": info.get("dirty-flag", False),
        "encrypted": info.get("encrypted", False),
        "nb_snapshots": len(info.get("snapshots", [])),
        "compat": data.get("compat"),
        "compression_type": data.get("compression-type"),
        "refcount_bits": data.get("refcount-bits"),
        "lazy_refcounts": data.get("lazy-refcounts", False),
        "corrupt": data.get("corrupt", False),
        "extended_l2": data.get("extended-l2", False),
        "data_file": data.get("data-file"),
        "external_data_file": "data-file-raw" in data if v3 else False,
        "data_file_raw": data.get("data-file-raw", False),
        "encryption": data.get("encrypt", {}).get("format"),
        "nb_bitmaps": len(data.get("bitmaps", [])),
    }


def our_fields(h: Header) -> dict[str, object]:
    f = h.flags
    return {
        "format": h.format,
        "virtual_size": h.virtual_size,
        "backing_file": h.backing_file,
        "backing_format": h.backing_format,
        **{
            k: f[k]
            for k in (
                "cluster_size",
                "dirty",
                "encrypted",
                "nb_snapshots",
                "compat",
                "compression_type",
                "refcount_bits",
                "lazy_refcounts",
                "corrupt",
                "extended_l2",
                "data_file",
                "external_data_file",
                "data_file_raw",
                "encryption",
                "nb_bitmaps",
            )
        },
    }


def _same_fields(ours: Header, info: dict) -> None:
    assert our_fields(ours) == expected_fields(info)


def assert_like_qemu(path: Path) -> Header | ParseError:
    """We open it iff qemu-img info does, and then report the same fields."""
    return formatcheck.assert_like_qemu(qcow2, path, _same_fields)


# --- images qemu-img makes -------------------------------------------------------------------

Builder = Callable[[ImageMaker], Path]

CREATED: dict[str, Builder] = {
    "plain": lambda m: m.create("a.qcow2"),
    "compat-0.10": lambda m: m.create("a.qcow2", "qcow2", "64M", "compat=0.10"),
    "cluster-512": lambda m: m.create("a.qcow2", "qcow2", "64M", "cluster_size=512"),
    "cluster-4k-v2": lambda m: m.create(
        "a.qcow2", "qcow2", "1G", "compat=0.10", "cluster_size=4096"
    ),
    "cluster-2M": lambda m: m.create("a.qcow2", "qcow2", "10G", "cluster_size=2M"),
    "odd-size": lambda m: m.create("a.qcow2", "qcow2", "1000"),
    "lazy": lambda m: m.create("a.qcow2", "qcow2", "64M", "lazy_refcounts=on"),
    "zstd": lambda m: m.create("a.qcow2", "qcow2", "64M", "compression_type=zstd"),
    "extended-l2": lambda m: m.create("a.qcow2", "qcow2", "64M", "extended_l2=on"),
    "refcount-1": lambda m: m.create("a.qcow2", "qcow2", "64M", "refcount_bits=1"),
    "refcount-64": lambda m: m.create("a.qcow2", "qcow2", "64M", "refcount_bits=64"),
    "data-file": lambda m: _data_file(m, "a.data"),
    "data-file-raw": lambda m: _data_file(m, "d ir/a data.raw", "data_file_raw=on"),
    "overlay-relative": lambda m: m.overlay("a.qcow2", "base.qcow2"),
    "overlay-absolute": lambda m: m.overlay("a.qcow2", "/srv/images/base image.qcow2"),
    "overlay-subdir": lambda m: m.overlay("sub/a.qcow2", "../bases/x/base.qcow2"),
    "overlay-unicode": lambda m: m.overlay("a.qcow2", "bäse ✓ (copy).qcow2", "raw"),
    "overlay-protocol": lambda m: m.overlay("a.qcow2", "nbd://host:10809/export", "raw"),
    "overlay-json": lambda m: m.overlay(
        "a.qcow2", 'json:{"driver":"raw","file":{"driver":"file","filename":"/x"}}', "raw"
    ),
    "overlay-v2": lambda m: _overlay_v2(m),
    "overlay-1023": lambda m: m.overlay("a.qcow2", "d/" * 510 + "abc", "qcow2"),
    "overlay-data-file": lambda m: _overlay_data_file(m),
}


def _overlay_v2(m: ImageMaker) -> Path:
    path = m.root / "a.qcow2"
    qemu_img(
        "create",
        "-q",
        "-f",
        "qcow2",
        "-o",
        "compat=0.10",
        "-u",
        "-b",
        "b.qed",
        "-F",
        "qed",
        path,
        "64M",
    )
    return path


def _data_file(m: ImageMaker, name: str, *opts: str) -> Path:
    """qemu-img create resolves a relative data file name from its working directory: give it
    an absolute one inside the test directory (that is then what the header stores)."""
    (m.root / name).parent.mkdir(parents=True, exist_ok=True)
    return m.create("a.qcow2", "qcow2", "64M", f"data_file={m.root / name}", *opts)


def _overlay_data_file(m: ImageMaker) -> Path:
    path = m.root / "a.qcow2"
    qemu_img(
        "create", "-q", "-f", "qcow2", "-u", "-b", "base.raw", "-F", "raw", "-o",
        f"data_file={m.root / 'a.data'}", path, "64M",
    )  # fmt: skip
    return path


def _luks(m: ImageMaker) -> Path:
    """(qemu's PBKDF benchmark can fail on a loaded machine; conftest.qemu_img retries it.)"""
    path = m.root / "a.qcow2"
    argv = ["create", "-q", "-f", "qcow2", *SECRET, "-o"]
    qemu_img(*argv, "encrypt.format=luks,encrypt.key-secret=sec0", path, "64M")
    return path


def _aes(m: ImageMaker) -> Path:
    path = m.root / "a.qcow2"
    qemu_img(
        "create", "-q", "-f", "qcow2", *SECRET, "-o",
        "encrypt.format=aes,encrypt.key-secret=sec0", path, "64M",
    )  # fmt: skip
    return path


def _snapshots(m: ImageMaker) -> Path:
    m.create("base.qcow2")
    path = m.overlay("a.qcow2", "base.qcow2")
    for name in ("one", "two", "three"):
        qemu_img("snapshot", "-c", name, path)
    return path


def _bitmaps(m: ImageMaker) -> Path:
    path = m.create("a.qcow2")
    qemu_img("bitmap", "--add", path, "b0")
    qemu_img("bitmap", "--add", path, "b1")
    return path


CREATED.update({"luks": _luks, "aes": _aes, "snapshots": _snapshots, "bitmaps": _bitmaps})


@pytest.mark.parametrize("case", sorted(CREATED))
def test_created_images_match_qemu(make: ImageMaker, case: str) -> None:
    path = CREATED[case](make)
    h, used = read_header(path)
    assert isinstance(h, Header), h
    assert_like_qemu(path)
    # The whole header sits in the scanner's first block: no read beyond it, except the LUKS
    # header and the snapshot table, which qemu also reads on open.
    assert used <= {"luks": 8, "snapshots": 4096}.get(case, 0)
    assert h.flags["truncated"] is False


def test_overlay_fields(make: ImageMaker) -> None:
    h = assert_like_qemu(make.overlay("sub/a.qcow2", "../bases/x/base.qcow2"))
    assert isinstance(h, Header)
    assert h.backing_file == "../bases/x/base.qcow2"
    assert h.backing_format == "qcow2"
    assert h.flags["extensions"] == ("backing_format", "feature_table")


def test_data_file_is_an_extent(make: ImageMaker) -> None:
    h = assert_like_qemu(CREATED["data-file-raw"](make))
    assert isinstance(h, Header)
    assert h.flags["external_data_file"] and h.flags["data_file_raw"]
    assert h.extents == (str(make.root / "d ir/a data.raw"),)


def test_encryption_flags(make: ImageMaker) -> None:
    luks, _ = read_header(_luks(make))
    assert isinstance(luks, Header)
    assert luks.flags["encrypted"] and luks.flags["encryption"] == "luks"
    assert "crypto" in luks.flags["extensions"]


def test_bitmaps_flag(make: ImageMaker) -> None:
    h, _ = read_header(_bitmaps(make))
    assert isinstance(h, Header)
    assert h.flags["bitmaps"] is True and h.flags["nb_bitmaps"] == 2


# --- hazards: real images with patched bytes -------------------------------------------------


def patch(path: Path, offset: int, fmt: str, *values: int) -> Path:
    data = bytearray(path.read_bytes())
    struct.pack_into(fmt, data, offset, *values)
    path.write_bytes(bytes(data))
    return path


def find_ext(path: Path, ext_type: int) -> int:
    """Offset of the first header extension of ``ext_type`` (walking as qemu does)."""
    data = path.read_bytes()
    off = struct.unpack_from(">I", data, 100)[0]
    while True:
        t, n = struct.unpack_from(">II", data, off)
        if t == ext_type:
            return off
        assert t != 0, f"no extension {ext_type:#x}"
        off += 8 + ((n + 7) & ~7)


def rewrite_extensions(path: Path, exts: list[tuple[int, bytes]], backing: bytes | None) -> Path:
    """Replace a v3 image's extension area with ``exts`` then the backing name (if any)."""
    data = bytearray(path.read_bytes())
    hl = struct.unpack_from(">I", data, 100)[0]
    area = b"".join(
        struct.pack(">II", t, len(b)) + b + bytes(-len(b) % 8) for t, b in exts
    ) + bytes(8)
    data[hl : hl + len(area)] = area
    if backing is not None:
        off = hl + len(area)
        data[off : off + len(backing)] = backing
        struct.pack_into(">QI", data, 8, off, len(backing))
    path.write_bytes(bytes(data))
    return path


HAZARDS: dict[str, Callable[[Path], object]] = {
    "no-backing-format-ext": lambda p: patch(p, find_ext(p, qcow2.EXT_BACKING_FORMAT), ">I", 0),
    "dirty": lambda p: patch(p, 72, ">Q", 1),
    "corrupt": lambda p: patch(p, 72, ">Q", 2),
    "dirty-corrupt-lazy": lambda p: (patch(p, 72, ">Q", 3), patch(p, 80, ">Q", 1)),
    "unknown-incompat-5": lambda p: patch(p, 72, ">Q", 1 << 5),
    "unknown-incompat-63": lambda p: patch(p, 72, ">Q", 1 << 63 | 1),
    "external-bit-without-name": lambda p: patch(p, 72, ">Q", 4),
    "compression-bit-zlib": lambda p: patch(p, 72, ">Q", 8),
    "compression-type-2": lambda p: patch(p, 104, ">B", 2),
    "zstd-without-bit": lambda p: patch(p, 104, ">B", 1),
    "raw-data-file-without-data-file": lambda p: patch(p, 88, ">Q", 2),
    "unknown-autoclear-compat": lambda p: (patch(p, 88, ">Q", 0xF0), patch(p, 80, ">Q", 0xF0)),
    "version-1-in-qcow2": lambda p: patch(p, 4, ">I", 4),
    "version-0": lambda p: patch(p, 4, ">I", 0),
    "cluster-bits-8": lambda p: patch(p, 20, ">I", 8),
    "cluster-bits-22": lambda p: patch(p, 20, ">I", 22),
    "cluster-bits-huge": lambda p: patch(p, 20, ">I", 0xFFFFFFFF),
    "extended-l2-small-cluster": lambda p: (patch(p, 20, ">I", 13), patch(p, 72, ">Q", 16)),
    "header-length-103": lambda p: patch(p, 100, ">I", 103),
    "header-length-105": lambda p: patch(p, 100, ">I", 105),
    "header-length-cluster": lambda p: patch(p, 100, ">I", 65536),
    "header-length-past-cluster": lambda p: patch(p, 100, ">I", 65537),
    "refcount-order-7": lambda p: patch(p, 96, ">I", 7),
    "crypt-method-3": lambda p: patch(p, 32, ">I", 3),
    "luks-without-crypto-ext": lambda p: patch(p, 32, ">I", 2),
    "aes-method": lambda p: patch(p, 32, ">I", 1),
    "no-refcount-table": lambda p: patch(p, 56, ">I", 0),
    "refcount-table-misaligned": lambda p: patch(p, 48, ">Q", 0x10001),
    "l1-too-small": lambda p: patch(p, 36, ">I", 0),
    "l1-misaligned": lambda p: patch(p, 40, ">Q", 0x30001),
    "l1-too-large": lambda p: patch(p, 36, ">I", (1 << 22) + 1),
    "snapshots-too-many": lambda p: patch(p, 60, ">I", 65537),
    "snapshot-table-misaligned": lambda p: (patch(p, 60, ">I", 1), patch(p, 64, ">Q", 0x1001)),
    "size-huge": lambda p: patch(p, 24, ">Q", 1 << 62),
    "backing-offset-past-eof": lambda p: patch(p, 8, ">Q", 60000),
    "backing-offset-past-cluster": lambda p: patch(p, 8, ">Q", 65537),
    "backing-offset-at-cluster-end": lambda p: patch(p, 8, ">Q", 65536),
    "backing-offset-in-header": lambda p: patch(p, 8, ">Q", 24),
    "backing-size-huge": lambda p: patch(p, 16, ">I", 0xFFFFFFFF),
    "backing-size-1024": lambda p: patch(p, 16, ">I", 1024),
    "backing-size-1023": lambda p: patch(p, 16, ">I", 1023),
    "backing-size-0": lambda p: patch(p, 16, ">I", 0),
    "backing-crosses-cluster": lambda p: (patch(p, 8, ">Q", 65530), patch(p, 16, ">I", 7)),
    "backing-ends-at-cluster": lambda p: (patch(p, 8, ">Q", 65530), patch(p, 16, ">I", 6)),
    "backing-name-with-nul": lambda p: patch(p, 528 + 4, ">B", 0),
    "backing-format-15": lambda p: rewrite_extensions(
        p, [(qcow2.EXT_BACKING_FORMAT, b"abcdefghijklmno")], b"base.qcow2"
    ),
    "backing-format-16": lambda p: rewrite_extensions(
        p, [(qcow2.EXT_BACKING_FORMAT, b"abcdefghijklmnop")], b"base.qcow2"
    ),
    "backing-format-empty": lambda p: rewrite_extensions(
        p, [(qcow2.EXT_BACKING_FORMAT, b"")], b"base.qcow2"
    ),
    "backing-format-nul": lambda p: rewrite_extensions(
        p, [(qcow2.EXT_BACKING_FORMAT, b"raw\0junk")], b"base.qcow2"
    ),
    "backing-format-twice": lambda p: rewrite_extensions(
        p, [(qcow2.EXT_BACKING_FORMAT, b"qcow2"), (qcow2.EXT_BACKING_FORMAT, b"raw")], b"b"
    ),
    "unknown-extensions": lambda p: rewrite_extensions(
        p, [(0x12345678, b"x" * 13), (qcow2.EXT_BACKING_FORMAT, b"raw"), (7, b"")], b"b.img"
    ),
    "extension-past-backing-name": lambda p: (
        rewrite_extensions(p, [(0x12345678, b"x" * 900)], None) and patch(p, 8, ">Q", 200)
    ),
    "extension-past-cluster": lambda p: patch(p, 112, ">II", 0x1234, 65536 - 120 + 1),
    "extension-fills-cluster": lambda p: patch(p, 112, ">II", 0x1234, 65536 - 120),
    "end-marker-without-room": lambda p: patch(p, 8, ">Q", 116),
    "crypto-ext-without-luks": lambda p: rewrite_extensions(
        p, [(qcow2.EXT_CRYPTO_HEADER, struct.pack(">QQ", 0x30000, 4096))], None
    ),
    "bitmaps-ext-bad-length": lambda p: (
        rewrite_extensions(p, [(qcow2.EXT_BITMAPS, bytes(16))], None),
        patch(p, 88, ">Q", 1),
    ),
    "bitmaps-ext-zero-bitmaps": lambda p: (
        rewrite_extensions(p, [(qcow2.EXT_BITMAPS, bytes(24))], None),
        patch(p, 88, ">Q", 1),
    ),
    "bitmaps-ext-without-autoclear": lambda p: rewrite_extensions(
        p, [(qcow2.EXT_BITMAPS, bytes(24))], None
    ),
    "data-file-ext-without-bit": lambda p: rewrite_extensions(
        p, [(qcow2.EXT_DATA_FILE, b"/dev/sda")], None
    ),
    "data-file-ext-with-bit": lambda p: (
        rewrite_extensions(p, [(qcow2.EXT_DATA_FILE, b"../../etc/x")], None),
        patch(p, 72, ">Q", 4),
    ),
}


@pytest.mark.parametrize("case", sorted(HAZARDS))
def test_hazards_agree_with_qemu(make: ImageMaker, case: str) -> None:
    path = make.overlay("a.qcow2", "base.qcow2")
    assert struct.unpack_from(">Q", path.read_bytes(), 8)[0] == 528  # layout the cases assume
    HAZARDS[case](path)
    assert_like_qemu(path)


EXPECTED_HAZARD_OUTCOME = {
    "no-backing-format-ext": ("base.qcow2", None),
    "backing-format-15": ("base.qcow2", "abcdefghijklmno"),
    "backing-format-empty": ("base.qcow2", None),
    "backing-format-nul": ("base.qcow2", "raw"),
    "backing-format-twice": ("b", "raw"),
    "backing-name-with-nul": ("base", "qcow2"),
    "backing-offset-past-eof": (None, None),
    "backing-size-0": (None, None),
}


@pytest.mark.parametrize("case", sorted(EXPECTED_HAZARD_OUTCOME))
def test_hazard_backing_values(make: ImageMaker, case: str) -> None:
    path = make.overlay("a.qcow2", "base.qcow2")
    HAZARDS[case](path)
    h, _ = read_header(path)
    assert isinstance(h, Header)
    assert (h.backing_file, h.backing_format) == EXPECTED_HAZARD_OUTCOME[case]


@pytest.mark.parametrize(
    "case",
    [
        "unknown-incompat-5",
        "version-1-in-qcow2",
        "cluster-bits-22",
        "backing-size-huge",
        "backing-format-16",
        "extension-past-cluster",
        "luks-without-crypto-ext",
    ],
)
def test_hazards_refused_with_a_message(make: ImageMaker, case: str) -> None:
    path = make.overlay("a.qcow2", "base.qcow2")
    HAZARDS[case](path)
    h, _ = read_header(path)
    assert isinstance(h, ParseError)
    assert str(h).startswith("qcow2")


@pytest.mark.parametrize(
    ("field", "value"),
    [(0, 0), (36, 1025), (36, 1024), (12, 0xFFFF), (14, 0xFFFF)],
)
def test_snapshot_table_entries_agree_with_qemu(make: ImageMaker, field: int, value: int) -> None:
    """qemu reads the snapshot table on open: a broken entry makes it refuse the image."""
    path = _snapshots(make)
    table = struct.unpack_from(">Q", path.read_bytes(), 64)[0]
    if field:
        patch(path, table + field, ">I" if field == 36 else ">H", value)
    else:
        patch(path, 64, ">Q", 0)  # the table "at" offset 0: the header read as entries
    assert_like_qemu(path)


def test_unknown_incompatible_bit_is_named(make: ImageMaker) -> None:
    path = patch(make.overlay("a.qcow2", "base.qcow2"), 72, ">Q", 1 << 40)
    h, _ = read_header(path)
    assert isinstance(h, ParseError) and "[40]" in str(h)


def test_dirty_and_corrupt_flags(make: ImageMaker) -> None:
    path = patch(make.overlay("a.qcow2", "base.qcow2"), 72, ">Q", 3)
    h = assert_like_qemu(path)
    assert isinstance(h, Header) and h.flags["dirty"] and h.flags["corrupt"]


@pytest.mark.parametrize(
    "cut", [0, 4, 7, 8, 20, 32, 72, 100, 103, 104, 105, 112, 120, 200, 527, 528, 530, 538, 4096]
)
def test_truncated_overlay_agrees_with_qemu(make: ImageMaker, cut: int) -> None:
    """qemu reads past the end of a file as zeros: a qcow2 cut after its first 104 bytes still
    opens (with the backing name cut or gone); one cut shorter does not."""
    path = make.overlay("a.qcow2", "base.qcow2")
    os.truncate(path, cut)
    h = assert_like_qemu(path)
    assert qcow2.probe(path.read_bytes()[:HEAD]) == (cut >= 8)
    if isinstance(h, Header) and cut < 538:
        assert h.flags["truncated"] is True


def test_probe() -> None:
    assert qcow2.probe(b"QFI\xfb\0\0\0\3")
    assert qcow2.probe(b"QFI\xfb\0\0\0\2" + bytes(100))
    assert qcow2.probe(b"QFI\xfb\0\0\0\4")  # qemu's probe too: it then refuses to open it
    assert not qcow2.probe(b"QFI\xfb\0\0\0\1")
    assert not qcow2.probe(b"QFI\xfb")  # qemu reads the missing version as 0: raw
    assert not qcow2.probe(b"")
    assert not qcow2.probe(b"QED\0\0\0\0\3")


def test_just_the_magic_is_raw_to_qemu(tmp_path: Path) -> None:
    path = tmp_path / "magic.qcow2"
    path.write_bytes(b"QFI\xfb")
    assert qemu_info(path)["format"] == "raw"
    assert not qcow2.probe(path.read_bytes())
    with pytest.raises(ParseError):
        qcow2.parse(BytesReader(path.read_bytes()))


def test_far_extensions_are_read_in_small_windows(make: ImageMaker) -> None:
    """An extension chain that leaves the first block costs only the headers walked."""
    path = make.create("a.qcow2")
    data = bytearray(path.read_bytes())
    # One huge unknown extension, then the backing format and the end marker far out.
    big = 40_000
    struct.pack_into(">II", data, 112, 0x1234, big)
    nxt = 120 + big
    struct.pack_into(">II5s3xQ", data, nxt, qcow2.EXT_BACKING_FORMAT, 5, b"qcow2", 0)
    data[nxt + 24 : nxt + 34] = b"base.qcow2"
    struct.pack_into(">QI", data, 8, nxt + 24, 10)
    path.write_bytes(bytes(data))
    h, used = read_header(path)
    assert_like_qemu(path)
    assert isinstance(h, Header) and h.backing_format == "qcow2"
    assert used <= 4096
