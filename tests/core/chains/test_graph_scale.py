"""Chains and loops thousands of images long: no recursion on depth, loop messages stay small."""

from __future__ import annotations

import io
import json
import os

from imagebytes import qcow2_chain

from imagegui.cli import run_cli
from imagegui.cli.scan_cmds import print_tree
from imagegui.core.chains.graph import ChainGraph
from imagegui.core.read.scan import scan_directory


def test_a_3000_deep_chain_is_walked_without_recursion(tmp_path):
    paths = qcow2_chain(tmp_path, 3000)
    g = ChainGraph(scan_directory(str(tmp_path)))
    assert g.problems == []
    assert g.depth(str(paths[-1])) == 2999
    out = io.StringIO()
    print_tree(g, out)  # used to die with RecursionError past ~1,000
    lines = out.getvalue().splitlines()
    assert lines[2].startswith("i00000.qcow2")
    assert "└─ i02999.qcow2" in lines[-1] and "[depth 2999]" in lines[-1]
    assert len(lines) == 3002
    assert max(map(len, lines)) < 250  # indentation stops growing: output stays linear


def test_a_3000_long_loop_is_named_once(tmp_path, capsys):
    paths = qcow2_chain(tmp_path, 3000, loop=True)
    g = ChainGraph(scan_directory(str(tmp_path)))
    assert len(g.loops) == 1 and len(g.loops[0]) == 3000
    members = [p for p in g.problems if p.kind == "backing-loop"]
    assert len(members) == 3000
    for p in members:  # each message references the loop; none lists its 3,000 members
        assert "loop #1 (3,000 images" in p.message and len(p.message) < 300
    assert all(g.in_loop(str(p)) for p in paths)
    assert run_cli(["check", str(tmp_path), "--json"]) == 1
    out = capsys.readouterr().out
    doc = json.loads(out)
    assert [len(loop) for loop in doc["loops"]] == [3000]
    assert len(out) < 3000 * 1000  # linear: was every member naming every member
    assert run_cli(["scan", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert text.count(os.path.basename(paths[1])) <= 3


def test_a_small_loop_still_names_its_members(make, tmp_path):
    make.overlay("a.qcow2", "b.qcow2")
    make.overlay("b.qcow2", "a.qcow2")
    g = ChainGraph(scan_directory(str(tmp_path)))
    [p, _] = g.problems
    assert "loop #1" in p.message and "a.qcow2 -> b.qcow2 -> a.qcow2" in p.message


def test_a_hole_under_a_10000_deep_chain_marks_every_image_above_it(tmp_path):
    paths = qcow2_chain(tmp_path, 10_000)
    paths[0].unlink()
    g = ChainGraph(scan_directory(str(tmp_path)))
    hole = str(paths[0])
    assert g.kind(hole) == "missing" and len(g.unusable()) == 9_999
    for p in (paths[1], paths[5_000], paths[-1]):  # its own problem, or one 9,998 files below
        broken = g.chain_break(str(p))
        assert broken is not None and (broken.at, broken.kind) == (hole, "missing-backing")
    assert [p.path for p in g.problems] == [str(paths[1])]
    assert len(g.descendants(hole)) == 9_999 and g.depth(str(paths[-1])) == 9_999
