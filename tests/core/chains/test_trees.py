"""Tree summaries: one record per tree of the layout, what the zoomed-out overview draws."""

from __future__ import annotations

from imagegui.core.chains.diagnose import Kind
from imagegui.core.chains.graph import ChainGraph
from imagegui.core.chains.layout import compute_layout
from imagegui.core.chains.nodestate import State, all_statuses
from imagegui.core.chains.trees import summarize
from imagegui.core.read.scan import scan_directory


def test_each_tree_counts_its_images_and_shows_its_worst_state(make, tmp_path):
    make.create("base.qcow2", "qcow2", "1G")
    make.overlay("a.qcow2", "base.qcow2")
    make.overlay("b.qcow2", "base.qcow2")
    make.overlay("a1.qcow2", "a.qcow2")
    make.create("b0.qcow2", "qcow2", "1G")
    gone = make.overlay("b1.qcow2", "b0.qcow2")
    make.overlay("b2.qcow2", "b1.qcow2")
    make.overlay("b3.qcow2", "b2.qcow2")
    gone.unlink()  # a hole in the middle: b2 is broken, b3 unusable
    graph = ChainGraph(scan_directory(str(tmp_path)))
    layout = compute_layout(graph)
    trees = {t.name: t for t in summarize(layout, all_statuses(graph))}

    healthy = trees["base.qcow2"]
    assert (healthy.images, healthy.nodes, healthy.worst) == (4, 4, State.OK)
    assert not healthy.troubled and not healthy.broken and healthy.problem_lines() == []
    comp = layout.components[healthy.index]
    assert (healthy.x, healthy.y, healthy.w, healthy.h) == (comp.x, comp.y, comp.w, comp.h)

    broken = trees["b1.qcow2"]  # the missing file roots the tree above the hole
    assert (broken.images, broken.nodes) == (2, 3)  # the placeholder is not an image
    assert broken.worst is State.ERROR and broken.broken and broken.troubled  # b2's error
    assert broken.states == {State.MISSING: 1, State.ERROR: 1, State.UNUSABLE: 1}
    assert broken.unusable == 2 and broken.errors == 1
    assert broken.breaks == ((str(tmp_path / "b1.qcow2"), Kind.MISSING_BACKING),)
    lines = broken.problem_lines()
    assert lines[0] == "missing backing file: b1.qcow2"
    assert "2 images qemu cannot open" in lines
    assert broken.state_line().startswith("1 error · 1 missing · 1 unusable")

    assert trees["b0.qcow2"].worst is State.OK  # below the hole, b0 alone opens fine
