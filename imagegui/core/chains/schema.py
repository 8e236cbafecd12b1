"""What the chain graph's nodes and edges carry: the names shared by the graph, the problem rules
and the exporters.

The graph is a ``networkx.DiGraph``. A node is an image's absolute path (a protocol backing's
stored name), with two attributes: :data:`KIND` (one of the node kinds below) and :data:`INFO`
(the image's record, or None for a placeholder). An edge goes from an overlay to its backing file,
with the backing format the overlay records as :data:`FORMAT` (absent when none is recorded).

A module of its own because the graph (``graph``) and the rules that read it (``diagnose``) both
need these names, and ``graph`` imports ``diagnose``.
"""

from __future__ import annotations

#: A scanned image.
IMAGE = "image"
#: A readable image outside the scanned root that something inside backs onto.
EXTERNAL = "external"
#: A backing file that does not exist (or cannot be reached).
MISSING = "missing"
#: A backing file that exists but is not a readable image.
UNREADABLE = "unreadable"
#: A protocol backing (``nbd:``, ``json:``, a URL), keyed by the name the overlay stores.
PROTOCOL = "protocol"
#: Node kinds that stand for a file no scanned record describes.
PLACEHOLDERS = frozenset({MISSING, UNREADABLE, PROTOCOL})

#: Node attribute: the node kind.
KIND = "kind"
#: Node attribute: the ``ImageInfo`` record (None for a placeholder).
INFO = "info"
#: Edge attribute: the backing format the overlay records (absent when it records none).
FORMAT = "format"

_EDGE_DATA: dict[str | None, dict[str, str]] = {None: {}}


def edge_data(fmt: str | None) -> dict[str, str]:
    """The attribute dict of an edge recording backing format ``fmt`` (None: none recorded).
    One dict per format, shared by all such edges (100,000 edges held 100,000 equal dicts,
    ~18 MB): nothing may change an edge's attributes in place; an edge whose format changes
    gets the other format's dict (the graph is rebuilt or updated, never edited)."""
    data = _EDGE_DATA.get(fmt)
    if data is None:
        data = _EDGE_DATA[fmt] = {FORMAT: fmt}  # type: ignore[dict-item]
    return data
