"""A chain 3,000 images deep and a loop 3,000 long in the window: models, layout, graph and
details are all walked without recursion on depth."""

from __future__ import annotations

from imagebytes import qcow2_chain


def test_a_3000_deep_chain_and_loop_open_and_show_details(qtbot, window, open_dir, tmp_path):
    chain = qcow2_chain(tmp_path / "chain", 3000)
    loop = qcow2_chain(tmp_path / "loop", 3000, loop=True)
    open_dir(tmp_path, timeout=120_000)
    snap = window.session.snapshot
    assert snap.graph.depth(str(chain[-1])) == 2999
    for node in (str(chain[-1]), str(loop[1500])):
        window.selection.set(node)
        text = window.details.toPlainText()
        assert "Chain, top → base (3000 files)" in text
        assert "… 2,950 more" in text and len(text.splitlines()) < 600  # a 3,000-row table: 5 s
        index = window.chains.model.index_of(node)
        assert index.isValid()
    window.chains.tree.expandAll()
    assert "loops back" in window.details.toPlainText()
