"""The graph handed to networkx's writers: scalars only, one type per attribute, names XML can
carry (the GraphML and GEXF writers write whatever they are given, readers then refuse it)."""

from __future__ import annotations

import io
import re

import networkx as nx
import pytest

from imagegui.core.chains.export import export_graph, write_graph
from imagegui.core.chains.graph import ChainGraph
from imagegui.core.read.scan import scan_directory

NOT_XML = re.compile("[\x00-\x08\x0b-\x1f\ufffe\uffff\ud800-\udfff]")


@pytest.fixture(scope="module")
def demo_graph(tmp_path_factory) -> ChainGraph:
    from imagegui.core.demo import build_demo

    return ChainGraph(scan_directory(build_demo(str(tmp_path_factory.mktemp("demo")))))


def test_demo_graph_exports_scalars_of_one_type_each(demo_graph: ChainGraph):
    g = export_graph(demo_graph, xml=True)
    assert set(g.nodes) == set(demo_graph.nodes)  # the demo's names are all plain
    backing = demo_graph.backing_of
    assert set(g.edges) == {(n, b) for n in demo_graph.nodes if (b := backing(n)) is not None}
    types: dict[str, type] = {}
    items = [*g.nodes(data=True), *((f"{u}->{v}", d) for u, v, d in g.edges(data=True))]
    for _, attrs in items:
        for key, value in attrs.items():
            assert type(value) in (str, int, float, bool), (key, value)
            assert types.setdefault(key, type(value)) is type(value), key
            if isinstance(value, str):
                assert not NOT_XML.search(value), (key, value)
    kinds = {attrs["kind"] for _, attrs in g.nodes(data=True)}
    assert {"image", "missing", "protocol"} <= kinds


@pytest.mark.parametrize("fmt", ["graphml", "gexf", "json"])
def test_write_graph_round_trips_the_demo(demo_graph: ChainGraph, fmt: str):
    out = io.BytesIO()
    write_graph(demo_graph, fmt, out)
    data = out.getvalue()
    if fmt == "graphml":
        back = nx.read_graphml(io.BytesIO(data))
    elif fmt == "gexf":
        back = nx.read_gexf(io.BytesIO(data))
    else:
        import json

        back = nx.node_link_graph(json.loads(data), directed=True, edges="edges")
    assert set(back.nodes) == set(demo_graph.nodes)
    assert back.number_of_edges() == export_graph(demo_graph).number_of_edges()


def test_unknown_format_is_refused(demo_graph: ChainGraph):
    with pytest.raises(ValueError, match="graphml"):
        write_graph(demo_graph, "dot", io.BytesIO())
