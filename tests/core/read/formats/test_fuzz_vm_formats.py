"""Fuzz the vmdk, vpc and vhdx parsers: the only outcomes are a Header or a ParseError.

Inputs are random bytes and mutations of real headers made by qemu-img (and of descriptor texts).
Whatever the bytes claim, a parse must stay inside its read budget, must not read much even when
offsets are huge, and must finish quickly.
"""

from __future__ import annotations

import functools
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imagegui.core.read.formats import vhdx, vmdk, vpc
from imagegui.core.read.formats.base import BytesReader, Header, ParseError

PARSERS = {"vmdk": vmdk.parse, "vpc": vpc.parse, "vhdx": vhdx.parse}
FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
#: What a single parse may read even when every offset in the file is hostile.
READ_CEILING = 256 * 1024


@functools.cache
def samples() -> dict[str, bytes]:
    """Real images (only their interesting prefix for the big ones), made once per session."""
    out: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)

        def make(name: str, fmt: str, *opts: str) -> Path:
            argv = ["qemu-img", "create", "-q", "-f", fmt]
            for o in opts:
                argv += ["-o", o]
            subprocess.run([*argv, str(root / name), "64M"], check=True)
            return root / name

        out["vmdk-sparse"] = make("s.vmdk", "vmdk").read_bytes()
        out["vmdk-stream"] = make("o.vmdk", "vmdk", "subformat=streamOptimized").read_bytes()
        out["vmdk-desc"] = make("f.vmdk", "vmdk", "subformat=monolithicFlat").read_bytes()
        subprocess.run(
            ["qemu-img", "create", "-q", "-f", "vmdk", "-b", "s.vmdk", "-F", "vmdk"]
            + [str(root / "c.vmdk")],
            check=True,
            cwd=root,
        )
        out["vmdk-child"] = (root / "c.vmdk").read_bytes()
        out["vpc-dynamic"] = make("d.vhd", "vpc").read_bytes()
        out["vpc-force"] = make("e.vhd", "vpc", "force_size=on").read_bytes()
        data = make("x.vhdx", "vhdx").read_bytes()
        out["vhdx"] = data[: 4 * 1024 * 1024]  # metadata sits below 4 MiB
    return out


def run(parser_name: str, data: bytes, budget: int = 1024 * 1024) -> Header | None:
    """Parse; a ParseError is fine, anything else fails the test. Checks the reads made."""
    r = BytesReader(data, budget=budget)
    r.prime(0, data[:4096])
    try:
        h = PARSERS[parser_name](r)
    except ParseError:
        h = None
    assert r.used <= budget
    assert r.used <= READ_CEILING
    if h is not None:
        assert isinstance(h, Header)
        assert h.virtual_size >= 0
        assert isinstance(h.flags, dict)
    return h


#: (sample, parser, ranges worth mutating: the header bytes the parser looks at)
TARGETS = [
    ("vmdk-sparse", "vmdk", [(0, 96), (512, 1200)]),
    ("vmdk-stream", "vmdk", [(0, 96), (512, 1200)]),
    ("vmdk-child", "vmdk", [(0, 96), (512, 1200)]),
    ("vmdk-desc", "vmdk", [(0, 400)]),
    ("vpc-dynamic", "vpc", [(0, 96), (512, 1600), (2048, 2560)]),
    ("vpc-force", "vpc", [(0, 96), (512, 1600)]),
    ("vhdx", "vhdx", [(0, 16), (65536, 65616), (131072, 131152), (196608, 196720)]),
]


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes]:
    sample, parser, ranges = draw(st.sampled_from(TARGETS))
    data = bytearray(samples()[sample])
    if sample == "vhdx":
        md = 3 * 1024 * 1024  # qemu's metadata region: table, then items at +64 KiB
        ranges = [*ranges, (md, md + 200), (md + 65536, md + 65536 + 64)]
    for _ in range(draw(st.integers(1, 8))):
        lo, hi = draw(st.sampled_from(ranges))
        hi = min(hi, len(data))
        if lo >= hi:
            continue
        off = draw(st.integers(lo, hi - 1))
        kind = draw(st.sampled_from(["byte", "u32", "u64", "huge"]))
        if kind == "byte":
            data[off] = draw(st.integers(0, 255))
        else:
            width = 4 if kind == "u32" else 8
            value = (1 << (8 * width)) - 1 if kind == "huge" else draw(st.integers(0, 1 << 32))
            data[off : off + width] = (value % (1 << (8 * width))).to_bytes(width, "little")
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return parser, bytes(data)


@FUZZ
@given(mutated())
def test_mutated_real_headers(case: tuple[str, bytes]) -> None:
    run(*case)


@FUZZ
@given(st.sampled_from(sorted(PARSERS)), st.binary(max_size=8192))
def test_random_bytes(parser_name: str, data: bytes) -> None:
    run(parser_name, data)


@FUZZ
@given(st.sampled_from(sorted(PARSERS)), st.binary(max_size=2048))
def test_random_bytes_after_magic(parser_name: str, tail: bytes) -> None:
    magic = {"vmdk": vmdk.MAGIC, "vpc": vpc.MAGIC, "vhdx": vhdx.MAGIC}[parser_name]
    run(parser_name, magic + tail)


LINE = st.one_of(
    st.sampled_from(
        [
            "version=1",
            "CID=fffffffe",
            "parentCID=ffffffff",
            'createType="monolithicFlat"',
            'createType="twoGbMaxExtentSparse"',
            'parentFileNameHint="base.vmdk"',
            'RW 2048 FLAT "a-flat.vmdk" 0',
            'RW 2048 SPARSE "a-s001.vmdk"',
            'RW 9 VMFS "x"',
            "",
            "   ",
            "# comment",
        ]
    ),
    st.text(alphabet=' "=RWFLATSPARE0123456789-\r\tabc/.#', max_size=60),
)


@FUZZ
@given(st.lists(LINE, max_size=20), st.sampled_from(["\n", "\r\n"]))
def test_descriptor_texts(lines: list[str], newline: str) -> None:
    text = ("# Disk DescriptorFile" + newline + newline.join(lines) + newline).encode()
    vmdk.probe(text)
    h = run("vmdk", text)
    if h is not None:
        assert h.format == "vmdk"
        assert h.virtual_size == sum(e["sectors"] for e in h.flags["extents"]) * 512
        assert len(h.extents) >= 1


@FUZZ
@given(st.binary(max_size=600))
def test_probes_never_raise(head: bytes) -> None:
    for mod in (vmdk, vpc, vhdx):
        assert mod.probe(head) in (True, False)


@pytest.mark.parametrize("name", ["vmdk-sparse", "vmdk-desc", "vpc-dynamic", "vhdx"])
def test_real_samples_parse_within_tiny_budget(name: str) -> None:
    parser = name.split("-")[0]
    h = run(parser, samples()[name], budget=8192)
    assert h is not None


def test_huge_offsets_do_not_cause_big_reads() -> None:
    """Offsets pointing far away or lengths claiming megabytes cost at most a bounded read."""
    data = bytearray(samples()["vpc-dynamic"])
    data[16:24] = (1 << 62).to_bytes(8, "big")  # data_offset
    run("vpc", bytes(data))
    data = bytearray(samples()["vmdk-sparse"])
    data[28:36] = (1 << 50).to_bytes(8, "little")  # desc_offset
    data[12:20] = bytes(8)  # capacity 0: qemu then opens the descriptor at desc_offset
    run("vmdk", bytes(data))
    data = bytearray(samples()["vhdx"])
    rt = 196608
    data[rt + 8 : rt + 12] = (2047).to_bytes(4, "little")
    run("vhdx", bytes(data))
