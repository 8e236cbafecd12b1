"""The chain graph for other tools: GraphML (yEd), GEXF (Gephi) and node-link JSON (networkx).

``imagegui scan DIR --graph FORMAT`` writes it with networkx's own writers. Nodes are the graph's
images and placeholders (missing, unreadable and protocol backings), keyed by path; edges go from
an overlay to its backing file and carry the backing name and format the overlay records.

Why a copy of the graph rather than the graph itself: the writers take only scalar attributes.
GraphML and GEXF have no null and no lists, and an attribute must keep one type across nodes, so a
field that is None is left out (a missing ``<data>`` element is the formats' own "no value") and
the lists and dicts of ``scan --json`` (``flags``, ``extents``, ``also_opens_as``, ``domains``) are
left out too (``problems`` is the one list kept, as a space-separated string of kinds, for
filtering in Gephi).
Every other field is named and valued as in ``scan --json``, so a script can join the two.

Names: Linux allows any bytes but ``/`` and NUL in a file name. As in ``scan --json``, a name that
is not valid UTF-8 is written in its display form (each bad byte as the four characters ``\\xNN``)
with a twin ``<field>_bytes`` (the exact name as hex); in GraphML and GEXF the same is done for the
characters XML 1.0 cannot carry (control characters but tab and line feed; carriage return, which an
XML reader turns into a line feed). A node's id is its ``path`` value, made unique if two names show
the same.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, BinaryIO

from imagegui.core.chains.graph import ChainGraph
from imagegui.core.chains.schema import FORMAT, INFO, KIND, PROTOCOL
from imagegui.core.units import display_path

if TYPE_CHECKING:
    import networkx

#: ``--graph`` formats, in the order the help lists them.
FORMATS = ("graphml", "gexf", "json")

#: Fields holding one file name: when shown other than exactly, ``<field>_bytes`` follows.
NAME_FIELDS = frozenset({"path", "backing_file", "backing_path", "chain_broken_at", "root"})

#: Image fields of ``scan --json`` that are not scalars: left out of the graph files.
_NOT_SCALAR = frozenset({"flags", "extents", "also_opens_as"})

#: What XML 1.0 cannot carry (or, for CR, does not carry back): C0 but TAB and LF, the two
#: non-characters, and lone surrogates (names decoded with ``surrogateescape``).
_NOT_XML = re.compile("[\x00-\x08\x0b-\x1f\ufffe\uffff\ud800-\udfff]")


def _xml_escape(m: re.Match[str]) -> str:
    c = m.group()
    if "\udc80" <= c <= "\udcff":  # a byte that is not UTF-8, as ``display_path`` shows it
        return f"\\x{ord(c) - 0xDC00:02x}"
    return f"\\x{ord(c):02x}" if ord(c) < 256 else f"\\u{ord(c):04x}"


def _show_json(text: str) -> str:
    return text if text.isascii() else display_path(text)


def _show_xml(text: str) -> str:
    return _NOT_XML.sub(_xml_escape, text)


class _Namer:
    """Strings as a format can carry them, and ids unique after that."""

    def __init__(self, xml: bool):
        self.show: Callable[[str], str] = _show_xml if xml else _show_json
        self.ids: dict[str, str] = {}
        self.taken: set[str] = set()

    def fields(self, values: Mapping[str, object]) -> dict[str, object]:
        """``values`` without None, every string shown safely, ``<field>_bytes`` where needed."""
        out: dict[str, object] = {}
        for key, value in values.items():
            if value is None:
                continue
            if isinstance(value, str):
                shown = self.show(value)
                out[key] = shown
                if shown != value and key in NAME_FIELDS:
                    out[f"{key}_bytes"] = _hex(value)
            else:
                out[key] = value
        return out

    def node_id(self, node: str) -> str:
        """The id of ``node``: its shown name, or with its bytes appended if that is taken."""
        found = self.ids.get(node)
        if found is None:
            found = self.show(node)
            if found in self.taken:
                found = f"{found}#{_hex(node)}"
            self.taken.add(found)
            self.ids[node] = found
        return found


def _hex(name: str) -> str:
    return name.encode("utf-8", "surrogateescape").hex()


def node_fields(graph: ChainGraph, node: str) -> dict[str, object]:
    """Everything said about ``node``, before any format's conversion (None: no value)."""
    from imagegui.core.chains.nodestate import node_status  # only --graph needs it

    attrs = graph.g.nodes[node]
    kind, info = attrs[KIND], attrs[INFO]
    fields: dict[str, object] = {
        "kind": kind,
        "label": node if kind == PROTOCOL else (os.path.basename(node) or node),
        "state": str(node_status(graph, node).state),
    }
    if info is None:
        fields["path"] = node
        return fields
    for key, value in info.to_json().items():
        if key not in _NOT_SCALAR:
            fields[key] = value
    broken = graph.chain_break(node)
    fields["chain_ok"] = broken is None
    fields["chain_broken_at"] = None if broken is None else broken.at
    fields["chain_kind"] = None if broken is None else str(broken.kind)
    fields["problems"] = " ".join(str(p.kind) for p in graph.problems_for(node))
    return fields


def export_graph(graph: ChainGraph, xml: bool = False) -> networkx.DiGraph[str]:
    """A copy of ``graph.g`` holding only what the writers take: for GraphML and GEXF (``xml``)
    with names XML can carry, for node-link JSON with names strict JSON can carry."""
    import networkx

    namer = _Namer(xml)
    out: networkx.DiGraph[str] = networkx.DiGraph()
    out.graph.update(namer.fields({"root": graph.root}))
    for node in graph.g:
        out.add_node(namer.node_id(node), **namer.fields(node_fields(graph, node)))
    for overlay, backing, attrs in graph.g.edges(data=True):
        info = graph.image(overlay)
        link = {
            "backing_file": info.backing_file if info else None,
            "backing_format": attrs.get(FORMAT),
        }
        out.add_edge(namer.node_id(overlay), namer.node_id(backing), **namer.fields(link))
    return out


def write_graph(graph: ChainGraph, fmt: str, out: BinaryIO) -> None:
    """``graph`` in ``fmt`` (one of :data:`FORMATS`) to the binary stream ``out``."""
    import networkx

    if fmt not in FORMATS:
        raise ValueError(f"unknown graph format {fmt!r}; one of {', '.join(FORMATS)}")
    g = export_graph(graph, xml=fmt != "json")
    if fmt == "graphml":
        networkx.write_graphml(g, out)
    elif fmt == "gexf":
        networkx.write_gexf(g, out)
    else:
        data = networkx.node_link_data(g, edges="edges")
        out.write(json.dumps(data, indent=1).encode("ascii") + b"\n")
