"""The chain graph and its problems on real directories: every hazard found, no false alarms."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

import networkx as nx
import pytest
from conftest import qemu_img
from imagebytes import qcow2_drop_backing_format, qcow2_set_incompatible

from imagegui.cli import run_cli
from imagegui.core.chains.diagnose import Level
from imagegui.core.chains.graph import ChainGraph
from imagegui.core.chains.schema import FORMAT, IMAGE, INFO, KIND, MISSING, PROTOCOL
from imagegui.core.read.scan import scan_directory


def graph_of(path) -> ChainGraph:
    return ChainGraph(scan_directory(str(path)))


def kinds(graph: ChainGraph, path) -> list[str]:
    return [str(p.kind) for p in graph.problems_for(str(path))]


@pytest.fixture
def tree(make, tmp_path):
    """base <- mid <- top, base <- sibling, plus a standalone raw image."""
    make.create("base.qcow2", "qcow2", "1G")
    make.overlay("mid.qcow2", "base.qcow2")
    make.overlay("clones/top.qcow2", "../mid.qcow2")
    make.overlay("sibling.qcow2", "base.qcow2")
    make.create("alone.raw", "raw", "1M")
    return tmp_path


def test_well_formed_chains_report_nothing(tree):
    graph = graph_of(tree)
    assert graph.problems == []
    assert graph.loops == []


def test_chain_queries(tree):
    g = graph_of(tree)
    p = lambda name: str(tree / name)  # noqa: E731
    assert g.chain(p("clones/top.qcow2")) == [
        p("clones/top.qcow2"),
        p("mid.qcow2"),
        p("base.qcow2"),
    ]
    assert g.children(p("base.qcow2")) == [p("mid.qcow2"), p("sibling.qcow2")]
    assert g.descendants(p("base.qcow2")) == {
        p("mid.qcow2"),
        p("sibling.qcow2"),
        p("clones/top.qcow2"),
    }
    assert g.roots() == [p("alone.raw"), p("base.qcow2")]
    assert g.depth(p("clones/top.qcow2")) == 2
    assert g.depth(p("alone.raw")) == 0
    assert g.resolve(str(tree / "clones" / ".." / "mid.qcow2")) == p("mid.qcow2")


def test_the_graph_is_a_networkx_digraph_with_records_on_its_nodes(tree, make):
    make.overlay("lost.qcow2", "gone.qcow2")
    qcow2_drop_backing_format(make.overlay("unrecorded.qcow2", "base.qcow2"))
    g = graph_of(tree)
    p = lambda name: str(tree / name)  # noqa: E731
    assert isinstance(g.g, nx.DiGraph)
    assert list(g.g.nodes) == list(g.nodes)  # one graph: ``nodes`` is a view of it
    assert g.g.nodes[p("mid.qcow2")][INFO] is g.image(p("mid.qcow2"))
    assert g.g.nodes[p("mid.qcow2")][KIND] == IMAGE
    assert g.nodes[p("gone.qcow2")] == (MISSING, None)
    assert g.g.nodes[p("gone.qcow2")] == {KIND: MISSING, INFO: None}
    # Edges go from an overlay to its backing file, with the format the overlay records.
    assert g.g.edges[p("mid.qcow2"), p("base.qcow2")] == {FORMAT: "qcow2"}
    assert FORMAT not in g.g.edges[p("unrecorded.qcow2"), p("base.qcow2")]
    assert g.g.number_of_edges() == 5 and not g.g.has_edge(p("base.qcow2"), p("mid.qcow2"))
    # Edges of one recorded format share one attribute dict (100,000 equal dicts were ~18 MB).
    assert (
        g.g.edges[p("mid.qcow2"), p("base.qcow2")] is g.g.edges[p("sibling.qcow2"), p("base.qcow2")]
    )


def test_dependents_of_a_base_are_its_ancestors_in_the_graph(tree):
    g = graph_of(tree)
    base, mid = str(tree / "base.qcow2"), str(tree / "mid.qcow2")
    assert (
        g.descendants(base)
        == nx.ancestors(g.g, base)
        == {
            mid,
            str(tree / "sibling.qcow2"),
            str(tree / "clones/top.qcow2"),
        }
    )
    assert g.descendants(mid) == {str(tree / "clones/top.qcow2")}
    assert g.descendants(str(tree / "alone.raw")) == set()
    assert g.descendants(str(tree / "not-scanned.qcow2")) == set()
    # and the chain below an image is what it reaches
    top = str(tree / "clones/top.qcow2")
    assert set(g.chain(top)) == {top, *nx.descendants(g.g, top)}


def test_a_loop_is_a_strongly_connected_component_named_once(make, tmp_path):
    make.overlay("a.qcow2", "b.qcow2")
    make.overlay("b.qcow2", "a.qcow2")
    make.overlay("c.qcow2", "d.qcow2")
    make.overlay("d.qcow2", "e.qcow2")
    make.overlay("e.qcow2", "c.qcow2")
    make.overlay("tail.qcow2", "c.qcow2")  # depends on a loop, is not part of it
    make.create("base.qcow2")
    make.overlay("fine.qcow2", "base.qcow2")
    g = graph_of(tmp_path)
    p = lambda name: str(tmp_path / name)  # noqa: E731
    components = [c for c in nx.strongly_connected_components(g.g) if len(c) > 1]
    assert sorted(map(sorted, components)) == sorted(map(sorted, g.loops))
    assert g.loops == [[p("a.qcow2"), p("b.qcow2")], [p("c.qcow2"), p("d.qcow2"), p("e.qcow2")]]
    assert [g.loop_number(p(n)) for n in ("a.qcow2", "d.qcow2", "tail.qcow2")] == [1, 2, None]
    for number, loop in enumerate(g.loops, 1):
        [message] = {q.message for n in loop for q in g.problems_for(n)}  # one per loop
        assert f"loop #{number} " in message
    assert g.problems_for(p("tail.qcow2")) == []
    broken = g.chain_break(p("tail.qcow2"))
    assert broken is not None and (broken.at, broken.kind) == (p("c.qcow2"), "backing-loop")
    assert g.chain_break(p("fine.qcow2")) is None


def test_independent_chains_are_the_weakly_connected_components(tree):
    g = graph_of(tree)
    chains = sorted(sorted(c) for c in nx.weakly_connected_components(g.g))
    assert chains == [
        [str(tree / "alone.raw")],
        sorted(
            str(tree / n) for n in ("base.qcow2", "mid.qcow2", "sibling.qcow2", "clones/top.qcow2")
        ),
    ]
    assert g.roots() == [str(tree / "alone.raw"), str(tree / "base.qcow2")]


def test_backing_reached_through_a_symlinked_directory_is_the_same_node(make, tmp_path):
    make.create("real/base.qcow2")
    os.symlink("real", tmp_path / "alias")
    make.overlay("top.qcow2", "alias/base.qcow2")
    g = graph_of(tmp_path)
    assert g.backing_of(str(tmp_path / "top.qcow2")) == str(tmp_path / "real" / "base.qcow2")
    assert g.problems == []


def test_missing_backing(make, tmp_path):
    top = make.overlay("top.qcow2", "moved-away.qcow2")
    g = graph_of(tmp_path)
    [problem] = g.problems
    assert (problem.kind, problem.level, problem.path) == (
        "missing-backing",
        Level.ERROR,
        str(top),
    )
    assert "moved-away.qcow2" in problem.message and "rebase --unsafe" in problem.cli_text
    assert "--" not in problem.message  # the window shows it: window terms only
    placeholder = g.backing_of(str(top))
    assert placeholder == str(tmp_path / "moved-away.qcow2") and g.kind(placeholder) == MISSING


def test_backing_loop_is_found_without_looping(make, tmp_path):
    make.overlay("a.qcow2", "b.qcow2")
    make.overlay("b.qcow2", "c.qcow2")
    make.overlay("c.qcow2", "a.qcow2")
    make.overlay("d.qcow2", "a.qcow2")  # hangs off the loop
    g = graph_of(tmp_path)
    assert len(g.loops) == 1 and sorted(map(os.path.basename, g.loops[0])) == [
        "a.qcow2",
        "b.qcow2",
        "c.qcow2",
    ]
    for name in "abc":
        assert kinds(g, tmp_path / f"{name}.qcow2") == ["backing-loop"]
    assert kinds(g, tmp_path / "d.qcow2") == []
    assert g.chain(str(tmp_path / "d.qcow2"))[0] == str(tmp_path / "d.qcow2")
    assert len(g.chain(str(tmp_path / "d.qcow2"))) == 4
    # qemu agrees
    out = qemu_img("info", "--backing-chain", tmp_path / "d.qcow2", check=False)
    assert out.returncode != 0 and "infinite loop" in out.stderr


def test_no_backing_format(make, tmp_path):
    make.create("base.qcow2")
    top = make.overlay("top.qcow2", "base.qcow2")
    qcow2_drop_backing_format(top)
    g = graph_of(tmp_path)
    assert kinds(g, top) == ["no-backing-format"]
    assert "(the base is qcow2)" in g.problems[0].message and "-F" not in g.problems[0].message
    fix = g.problems[0].fix_cli
    assert fix == f"imagegui rebase --unsafe {top} {tmp_path / 'base.qcow2'}"
    assert run_cli(shlex.split(fix)[1:]) == 0  # our own command line does what it advises
    assert kinds(graph_of(tmp_path), top) == []


def test_backing_format_mismatch(make, tmp_path):
    make.create("base.qcow2")
    top = make.overlay("top.qcow2", "base.qcow2", backing_fmt="raw")
    make.create("really-raw.img", "raw", "1M")
    ok = make.overlay("ok.qcow2", "really-raw.img", backing_fmt="raw")
    g = graph_of(tmp_path)
    assert kinds(g, top) == ["backing-format-mismatch"]
    assert g.problems_for(str(top))[0].level == Level.ERROR
    assert kinds(g, ok) == []


def test_protocol_backing(make, tmp_path):
    top = make.overlay("top.qcow2", "nbd://localhost:10809/export", backing_fmt="raw")
    g = graph_of(tmp_path)
    assert kinds(g, top) == ["protocol-backing"]
    assert g.kind(g.backing_of(str(top))) == PROTOCOL


def test_backing_outside_root_is_probed_and_flagged(make, tmp_path):
    base = make.create("elsewhere/base.qcow2")
    top = make.overlay("vms/top.qcow2", str(base))
    bad = make.overlay("vms/bad.qcow2", str(base), backing_fmt="raw")
    g = graph_of(tmp_path / "vms")
    assert kinds(g, top) == ["backing-outside-root"]
    assert g.image(str(base)).format == "qcow2"  # read natively, though outside the root
    assert sorted(kinds(g, bad)) == ["backing-format-mismatch", "backing-outside-root"]


def test_unreadable_backing_outside_root_is_explained(make, tmp_path):
    bad = tmp_path / "elsewhere" / "base.qcow2"
    bad.parent.mkdir()
    bad.write_bytes(b"QFI\xfb" + b"\xff" * 60)  # qcow2 magic, nonsense header
    top = make.overlay("vms/top.qcow2", str(bad))
    g = graph_of(tmp_path / "vms")
    assert sorted(kinds(g, top)) == ["backing-outside-root", "missing-backing"]
    missing = next(p for p in g.problems_for(str(top)) if p.kind == "missing-backing")
    assert "exists but is not a readable image: qcow2 header" in missing.message
    assert kinds(g, bad) == ["unreadable"]


def test_dirty_corrupt_and_external_data_file(make, tmp_path):
    dirty = make.create("dirty.qcow2")
    qcow2_set_incompatible(dirty, 1)
    corrupt = make.create("corrupt.qcow2")
    qcow2_set_incompatible(corrupt, 2)
    ext = make.create("ext.qcow2", "qcow2", "16M", f"data_file={tmp_path / 'ext.data'}")
    g = graph_of(tmp_path)
    assert kinds(g, dirty) == ["dirty"]
    assert kinds(g, corrupt) == ["corrupt"]
    assert kinds(g, ext) == ["external-data-file"]
    assert g.problems_for(str(corrupt))[0].level == Level.ERROR


def test_unreadable_becomes_a_problem(make, tmp_path):
    (tmp_path / "fake.qcow2").write_text("hello")
    g = graph_of(tmp_path)
    [p] = g.problems
    assert (p.kind, p.level) == ("unreadable", Level.ERROR)


def test_an_image_backing_onto_itself_is_a_loop_of_one(make, tmp_path):
    me = make.overlay("me.qcow2", "me.qcow2")
    make.overlay("above.qcow2", "me.qcow2")
    g = graph_of(tmp_path)
    assert g.g.has_edge(str(me), str(me))
    assert g.loops == [[str(me)]]
    assert kinds(g, me) == ["backing-loop"]
    broken = g.chain_break(str(tmp_path / "above.qcow2"))
    assert broken is not None and broken.at == str(me)
    assert g.chain(str(me)) == [str(me)] and g.descendants(str(me)) == {
        str(tmp_path / "above.qcow2")
    }
    out = qemu_img("info", "--backing-chain", me, check=False)
    assert out.returncode != 0


def test_importing_the_chain_modules_does_not_import_networkx():
    """networkx (0.1-0.15 s) is imported where a graph is built, so that the scan can import it
    beside its walk and ``imagegui --help`` never pays for it."""
    code = (
        "import sys\n"
        "import imagegui.core.chains.graph, imagegui.core.chains.layout\n"
        "import imagegui.core.chains.nova, imagegui.core.chains.nodestate\n"
        "import imagegui.cli.scan_cmds\n"
        "print('networkx' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
