"""Fuzz the qcow2, qcow and QED parsers: hostile bytes may only ever give a Header or a
ParseError, and may never make a parser read past its budget or read big at a huge offset."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import QEMU_IMG, qemu_img
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imagegui.core.read.formats import qcow, qcow2, qed
from imagegui.core.read.formats.base import BytesReader, Header, ParseError

MODULES = (qcow2, qcow, qed)
FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

INTERESTING = st.sampled_from(
    [0, 1, 2, 3, 7, 8, 9, 16, 21, 22, 104, 105, 512, 1023, 1024, 4096, 65535, 65536,
     2**31 - 1, 2**31, 2**32 - 1, 2**62, 2**63 - 1, 2**63, 2**64 - 1]
)  # fmt: skip

#: (offset, struct size, endianness) of each integer field worth mutating.
QCOW2_FIELDS = [(4, 4), (8, 8), (16, 4), (20, 4), (24, 8), (32, 4), (36, 4), (40, 8), (48, 8),
                (56, 4), (60, 4), (64, 8), (72, 8), (80, 8), (88, 8), (96, 4), (100, 4),
                (104, 1), (112, 4), (116, 4), (120, 4), (128, 4), (132, 4)]  # fmt: skip
QCOW_FIELDS = [(4, 4), (8, 8), (16, 4), (24, 8), (32, 1), (33, 1), (36, 4), (40, 8)]
QED_FIELDS = [(4, 4), (8, 4), (12, 4), (16, 8), (24, 8), (32, 8), (40, 8), (48, 8), (56, 4),
              (60, 4)]  # fmt: skip


class HugeReader(BytesReader):
    """Claims to be a 10**15-byte file; remembers every real read so a test can bound them."""

    def __init__(self, data: bytes, budget: int):
        super().__init__(data, budget)
        self.size = 10**15
        self.reads: list[tuple[int, int]] = []

    def _pread(self, offset: int, length: int) -> bytes:
        self.reads.append((offset, length))
        return self._data[offset : offset + length]


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[bytes]]:
    """Real headers made by qemu-img, several layouts per format."""
    d: Path = tmp_path_factory.mktemp("seeds")

    def make(name: str, *argv: str) -> bytes:
        qemu_img("create", "-q", *argv[:-1], d / name, argv[-1])
        return (d / name).read_bytes()

    return {
        "qcow2": [
            make("o.qcow2", "-f", "qcow2", "-u", "-b", "base.qcow2", "-F", "qcow2", "64M"),
            make("v2.qcow2", "-f", "qcow2", "-o", "compat=0.10", "-u", "-b", "b", "-F", "raw",
                 "64M"),
            make("z.qcow2", "-f", "qcow2", "-o", "compression_type=zstd,extended_l2=on", "1G"),
            make("d.qcow2", "-f", "qcow2", "-o", f"data_file={d / 'x.raw'},data_file_raw=on",
                 "64M"),
        ],
        "qcow": [make("o.qcow", "-f", "qcow", "-u", "-b", "base.img", "-F", "raw", "64M")],
        "qed": [
            make("o.qed", "-f", "qed", "-u", "-b", "base.img", "-F", "raw", "64M"),
            make("p.qed", "-f", "qed", "-o", "cluster_size=4096", "64M"),
        ],
    }  # fmt: skip


def run_parser(mod: object, reader: BytesReader) -> Header | ParseError:
    """The only outcomes allowed: a Header (JSON-serialisable) or a ParseError."""
    try:
        h = mod.parse(reader)  # type: ignore[attr-defined]
    except ParseError as exc:
        assert str(exc)
        return exc
    assert isinstance(h, Header)
    assert h.format in ("qcow2", "qcow", "qed")
    assert h.virtual_size >= 0 and h.virtual_size % 512 == 0
    json.dumps(h.flags)
    assert h.backing_format is None or h.backing_file is not None
    return h


def check_all(data: bytes, budget: int) -> None:
    for mod in MODULES:
        r = BytesReader(data, budget=budget)
        run_parser(mod, r)
        assert r.used <= budget
        mod.probe(data[:4096])


@FUZZ
@given(
    st.sampled_from([b"", b"QFI\xfb", b"QFI\xfb\0\0\0\2", b"QFI\xfb\0\0\0\3", b"QFI\xfb\0\0\0\1",
                     b"QED\0"]),
    st.binary(max_size=2048),
    st.integers(min_value=0, max_value=70_000),
)  # fmt: skip
def test_random_bytes(prefix: bytes, body: bytes, budget: int) -> None:
    check_all(prefix + body, budget)


def mutate(data: st.DataObject, seed: bytes, fields: list[tuple[int, int]], big: bool) -> bytes:
    buf = bytearray(seed)
    for _ in range(data.draw(st.integers(0, 4), label="field mutations")):
        off, width = data.draw(st.sampled_from(fields), label="field")
        value = data.draw(st.one_of(INTERESTING, st.integers(0, 2 ** (8 * width) - 1)))
        value &= (1 << (8 * width)) - 1
        buf[off : off + width] = value.to_bytes(width, "big" if big else "little")
    for _ in range(data.draw(st.integers(0, 6), label="byte mutations")):
        off = data.draw(st.integers(0, min(len(buf), 1200) - 1), label="offset")
        buf[off] = data.draw(st.integers(0, 255), label="byte")
    cut = data.draw(st.one_of(st.none(), st.integers(0, len(buf))), label="truncate at")
    return bytes(buf[:cut] if cut is not None else buf)


@FUZZ
@given(data=st.data())
def test_mutated_qcow2(seeds: dict[str, list[bytes]], data: st.DataObject) -> None:
    seed = data.draw(st.sampled_from(seeds["qcow2"]), label="seed")
    check_all(mutate(data, seed, QCOW2_FIELDS, big=True), data.draw(st.integers(0, 1 << 20)))


@FUZZ
@given(data=st.data())
def test_mutated_qcow(seeds: dict[str, list[bytes]], data: st.DataObject) -> None:
    seed = data.draw(st.sampled_from(seeds["qcow"]), label="seed")
    check_all(mutate(data, seed, QCOW_FIELDS, big=True), data.draw(st.integers(0, 1 << 20)))


@FUZZ
@given(data=st.data())
def test_mutated_qed(seeds: dict[str, list[bytes]], data: st.DataObject) -> None:
    seed = data.draw(st.sampled_from(seeds["qed"]), label="seed")
    check_all(mutate(data, seed, QED_FIELDS, big=False), data.draw(st.integers(0, 1 << 20)))


@FUZZ
@given(data=st.data())
def test_huge_file_claims_never_make_us_read_big(
    seeds: dict[str, list[bytes]], data: st.DataObject
) -> None:
    """With a file that claims 10**15 bytes, offsets anywhere are "inside" it: still every read
    stays small and the total within budget."""
    kind = data.draw(st.sampled_from(["qcow2", "qcow", "qed"]), label="kind")
    mod = {"qcow2": qcow2, "qcow": qcow, "qed": qed}[kind]
    fields = {"qcow2": QCOW2_FIELDS, "qcow": QCOW_FIELDS, "qed": QED_FIELDS}[kind]
    seed = data.draw(st.sampled_from(seeds[kind]), label="seed")
    buf = mutate(data, seed, fields, big=kind != "qed")
    budget = 256 * 1024
    r = HugeReader(buf, budget)
    run_parser(mod, r)
    assert r.used <= budget
    assert all(length <= budget for _, length in r.reads)


@pytest.mark.parametrize(
    ("kind", "offset", "fmt_value"),
    [
        ("qcow", 8, (1 << 62).to_bytes(8, "big")),  # backing name far out
        ("qcow", 40, (1 << 62).to_bytes(8, "big")),  # L1 table far out
        ("qed", 40, (1 << 50).to_bytes(8, "little")),  # L1 table far out
        ("qed", 56, (2**32 - 100).to_bytes(4, "little")),  # backing name far out
    ],
)
def test_huge_offsets_read_little(
    seeds: dict[str, list[bytes]], kind: str, offset: int, fmt_value: bytes
) -> None:
    seed = bytearray(seeds[kind][0])
    seed[offset : offset + len(fmt_value)] = fmt_value
    r = HugeReader(bytes(seed), budget=1 << 20)
    run_parser({"qcow": qcow, "qed": qed}[kind], r)
    assert sum(n for _, n in r.reads) <= 8192


def test_seeds_parse(seeds: dict[str, list[bytes]]) -> None:
    """The unmutated seeds are valid, so the mutations start from real, accepted headers."""
    for kind, datas in seeds.items():
        mod = {"qcow2": qcow2, "qcow": qcow, "qed": qed}[kind]
        for raw in datas:
            assert isinstance(run_parser(mod, BytesReader(raw)), Header)


def _shown(name: str | None) -> str | None:
    """A name as qemu-img's JSON shows it (undecodable bytes replaced)."""
    if name is None:
        return None
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_mutations_agree_with_qemu(
    seeds: dict[str, list[bytes]], tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    """Differential: on mutated real headers we open exactly what qemu-img info opens."""
    kind = data.draw(st.sampled_from(["qcow2", "qcow", "qed"]), label="kind")
    mod = {"qcow2": qcow2, "qcow": qcow, "qed": qed}[kind]
    fields = {"qcow2": QCOW2_FIELDS, "qcow": QCOW_FIELDS, "qed": QED_FIELDS}[kind]
    buf = mutate(data, data.draw(st.sampled_from(seeds[kind])), fields, big=kind != "qed")
    path = tmp_path_factory.mktemp("diff") / "x.img"
    path.write_bytes(buf)
    proc = subprocess.run(
        [str(QEMU_IMG), "info", "-U", "--output=json", str(path)], capture_output=True, text=True
    )
    info = json.loads(proc.stdout) if proc.returncode == 0 else None
    if not mod.probe(buf[:4096]):
        assert info is None or info["format"] != kind
        return
    ours = run_parser(mod, BytesReader(buf))
    if info is None:
        assert isinstance(ours, ParseError), (proc.stderr, ours)
        return
    assert info["format"] == kind
    assert isinstance(ours, Header), (ours, info)
    assert (ours.virtual_size, _shown(ours.backing_file), _shown(ours.backing_format)) == (
        info["virtual-size"],
        info.get("backing-filename"),
        info.get("backing-filename-format"),
    )
