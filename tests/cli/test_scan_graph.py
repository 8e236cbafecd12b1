"""``imagegui scan DIR --graph graphml|gexf|json``: the chain graph read back by networkx itself
agrees with ``scan --json`` node for node and edge for edge, on images the real qemu-img made."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest
from imagebytes import qcow2_drop_backing_format

#: Fields of a ``scan --json`` image that are lists or dicts: not in the graph files.
NOT_SCALAR = {"flags", "extents", "also_opens_as", "chain", "domains"}


def run(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "imagegui", *args], capture_output=True, timeout=60
    )


def load(fmt: str, data: bytes) -> nx.DiGraph:
    if fmt == "graphml":
        return nx.read_graphml(io.BytesIO(data))
    if fmt == "gexf":
        g = nx.read_gexf(io.BytesIO(data))
        for *_, attrs in g.edges(data=True):
            del attrs["id"]  # GEXF numbers its edges
        return g
    # Strict UTF-8: a lone surrogate in the output fails here.
    return nx.node_link_graph(json.loads(data.decode("utf-8")), directed=True, edges="edges")


def graph_of_scan_json(doc: dict) -> tuple[set[str], set[tuple[str, str]]]:
    """Nodes and edges as ``scan --json`` describes them: every image, and every backing file
    an image names (by its resolved path, through aliases; a protocol by its stored name)."""
    records = doc["images"] + doc["external_images"]
    nodes = {r["path"] for r in records}
    edges = set()
    for r in records:
        if r["backing_file"] is None:
            continue
        if r["backing_protocol"] or r["backing_path"] is None:
            target = r["backing_file"]
        else:
            target = doc["aliases"].get(r["backing_path"], r["backing_path"])
        nodes.add(target)
        edges.add((r["path"], target))
    return nodes, edges


@pytest.fixture
def chains(make, tmp_path: Path) -> Path:
    """Every kind of node: images, an external base, missing, unreadable and protocol backings,
    a loop, a symlinked alias of a base and a chain broken further down."""
    make.create("outside/ext.qcow2", "qcow2", "1G")
    root = tmp_path / "root"
    make.create("root/base.qcow2", "qcow2", "2G")
    make.overlay("root/top.qcow2", "base.qcow2")
    make.overlay("root/top2.qcow2", "top.qcow2")
    make.overlay("root/raw-over.qcow2", "disk.raw", "raw")
    make.create("root/disk.raw", "raw", "1M")
    make.overlay("root/orphan.qcow2", "gone.qcow2")
    make.overlay("root/above-hole.qcow2", "orphan.qcow2")
    make.overlay("root/net.qcow2", "nbd://example.org:10809/disk", "raw")
    make.overlay("root/loop-a.qcow2", "loop-b.qcow2")
    make.overlay("root/loop-b.qcow2", "loop-a.qcow2")
    make.overlay("root/uses-ext.qcow2", "../outside/ext.qcow2")
    (root / "junk.qcow2").write_bytes(b"QFI\xfb" + b"\0" * 60)
    make.overlay("root/on-junk.qcow2", "junk.qcow2")
    os.symlink("base.qcow2", root / "alias.qcow2")
    qcow2_drop_backing_format(make.overlay("root/via-alias.qcow2", "alias.qcow2"))
    return root


@pytest.mark.parametrize("fmt", ["graphml", "gexf", "json"])
def test_graph_has_the_nodes_and_edges_of_scan_json(chains: Path, fmt: str):
    doc = json.loads(run("scan", str(chains), "--json").stdout)
    proc = run("scan", str(chains), "--graph", fmt)
    assert proc.returncode == 0, proc.stderr
    g = load(fmt, proc.stdout)
    assert g.is_directed()
    nodes, edges = graph_of_scan_json(doc)
    assert set(g.nodes) == nodes
    assert set(g.edges) == edges
    kinds = {n: g.nodes[n]["kind"] for n in g}
    assert kinds[str(chains / "gone.qcow2")] == "missing"
    assert kinds[str(chains / "junk.qcow2")] == "unreadable"
    assert kinds["nbd://example.org:10809/disk"] == "protocol"
    assert kinds[str(chains.parent / "outside/ext.qcow2")] == "external"
    assert kinds[str(chains / "top2.qcow2")] == "image"
    # Every scalar field of every image, valued as scan --json values it (types included).
    for record in doc["images"] + doc["external_images"]:
        node = g.nodes[record["path"]]
        want = {k: v for k, v in record.items() if k not in NOT_SCALAR and v is not None}
        chain = record["chain"]
        want["chain_ok"] = chain["ok"]
        if not chain["ok"]:
            want["chain_broken_at"], want["chain_kind"] = chain["broken_at"], chain["kind"]
        assert {k: node.get(k) for k in want} == want, record["path"]
    above = g.nodes[str(chains / "above-hole.qcow2")]
    assert above["state"] == "unusable" and above["problems"] == ""
    assert above["chain_broken_at"] == str(chains / "gone.qcow2")
    assert g.nodes[str(chains / "orphan.qcow2")]["problems"] == "missing-backing"
    assert "format" not in g.nodes[str(chains / "gone.qcow2")]  # no value: no attribute
    raw_edge = g.edges[str(chains / "raw-over.qcow2"), str(chains / "disk.raw")]
    assert raw_edge == {"backing_file": "disk.raw", "backing_format": "raw"}
    alias_edge = g.edges[str(chains / "via-alias.qcow2"), str(chains / "base.qcow2")]
    assert alias_edge == {"backing_file": "alias.qcow2"}  # no format recorded: none written
    assert g.graph.get("root", str(chains)) == str(chains)  # GEXF keeps no graph attributes


def test_odd_names_survive_every_format(make, tmp_path: Path):
    """A line feed, an escape and bytes that are not UTF-8 in names: each format loads, ids are
    unique, and every name it could not carry exactly has its bytes beside it."""
    make.create("new\nline.qcow2", "qcow2", "1M")
    make.create("esc\x1b[2J.qcow2", "qcow2", "1M")
    make.create("cr\r.qcow2", "qcow2", "1M")
    bad = os.fsdecode(b"bad-\xff\xfe.qcow2")
    shutil.copy(tmp_path / "new\nline.qcow2", os.fsencode(tmp_path) + b"/bad-\xff\xfe.qcow2")
    make.overlay("over-bad.qcow2", bad)
    make.overlay("over-nl.qcow2", "new\nline.qcow2")
    make.overlay("over-esc.qcow2", "esc\x1b[2J.qcow2")
    make.overlay("orphan-bad.qcow2", os.fsdecode(b"gone-\xc3.qcow2"))
    # A real file whose name is the display form of another's: ids must stay apart.
    shutil.copy(tmp_path / "new\nline.qcow2", tmp_path / "bad-\\xff\\xfe.qcow2")
    on_disk = {os.fsencode(tmp_path / n) for n in os.listdir(tmp_path)}
    for fmt in ("graphml", "gexf", "json"):
        proc = run("scan", str(tmp_path), "--graph", fmt)
        assert proc.returncode == 0 and b"Traceback" not in proc.stderr, proc.stderr
        g = load(fmt, proc.stdout)
        assert g.number_of_nodes() == len(on_disk) + 1, fmt  # + the missing gone-\xc3
        assert g.number_of_edges() == 4
        exact = set()
        for node, attrs in g.nodes(data=True):
            path = attrs["path"]
            if "path_bytes" in attrs:
                exact.add(bytes.fromhex(attrs["path_bytes"]))
            else:
                assert path == node or node.startswith(path + "#")
                exact.add(os.fsencode(path))
        assert on_disk <= exact, fmt
        nl = str(tmp_path / "new\nline.qcow2")
        assert g.nodes[nl]["label"] == "new\nline.qcow2"  # a line feed survives as itself
        over_bad = g.nodes[str(tmp_path / "over-bad.qcow2")]
        assert bytes.fromhex(over_bad["backing_file_bytes"]) == b"bad-\xff\xfe.qcow2"
        orphan = g.nodes[str(tmp_path / "orphan-bad.qcow2")]
        broken = bytes.fromhex(orphan["chain_broken_at_bytes"])
        assert broken == os.fsencode(tmp_path) + b"/gone-\xc3.qcow2"
        if fmt != "json":  # XML cannot carry ESC or keep CR: shown escaped, bytes beside
            esc = g.nodes[str(tmp_path / "esc\\x1b[2J.qcow2")]
            assert bytes.fromhex(esc["path_bytes"]).endswith(b"/esc\x1b[2J.qcow2")
            assert str(tmp_path / "cr\\x0d.qcow2") in g
        else:
            assert str(tmp_path / "esc\x1b[2J.qcow2") in g and str(tmp_path / "cr\r.qcow2") in g


def test_graph_and_json_are_exclusive_and_formats_are_named(tmp_path: Path):
    both = run("scan", str(tmp_path), "--json", "--graph", "json")
    assert both.returncode == 2 and b"not allowed with" in both.stderr
    wrong = run("scan", str(tmp_path), "--graph", "dot")
    assert wrong.returncode == 2 and b"graphml" in wrong.stderr
    missing = run("scan", str(tmp_path / "nope"), "--graph", "graphml")
    assert missing.returncode == 2 and missing.stdout == b""
    empty = run("scan", str(tmp_path), "--graph", "graphml")
    assert empty.returncode == 0
    assert nx.read_graphml(io.BytesIO(empty.stdout)).number_of_nodes() == 0
