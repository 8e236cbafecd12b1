"""Each tree of a layout summed up in one record: what the zoomed-out graph draws as one glyph.

At 100,000 images a zoomed-out graph of one box per image is 100,000 specks: neither fast to
paint nor readable. The window draws each tree (a base and every overlay above it) as one block
instead, coloured by the worst state in it, with its image count and its base's name where there
is room. This module works out those figures from the layout and the node states, once per
snapshot and on the scan's worker (a pass over every node), so painting only reads them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from imagegui.core.chains.diagnose import KINDS, Kind
from imagegui.core.chains.layout import Layout
from imagegui.core.chains.nodestate import NodeStatus, State, short_name

#: States from the least to the most serious: a tree shows its worst. A chain qemu cannot open
#: (error, missing or unreadable file, unusable above a break) outranks one that merely warns;
#: "in use" and "unused base" say something about a healthy chain; a network backing and an
#: image outside the directory are facts, not trouble.
SEVERITY: tuple[State, ...] = (
    State.OK,
    State.EXTERNAL,
    State.PROTOCOL,
    State.UNUSED_BASE,
    State.IN_USE,
    State.WARNING,
    State.UNUSABLE,
    State.UNREADABLE,
    State.MISSING,
    State.ERROR,
)
RANK: dict[State, int] = {state: i for i, state in enumerate(SEVERITY)}
#: States that mean some chain of the tree cannot be opened.
BROKEN_STATES = frozenset({State.ERROR, State.MISSING, State.UNREADABLE, State.UNUSABLE})
#: Breaks a tooltip names before it says "and N more".
MAX_BREAKS = 3


@dataclass(frozen=True)
class TreeSummary:
    """One tree of the layout: where it is drawn and what is in it."""

    #: Its index in ``Layout.components``.
    index: int
    root: str
    x: float
    y: float
    w: float
    h: float
    #: Scanned images (placeholders for missing, unreadable or network backings not counted).
    images: int
    nodes: int
    worst: State
    #: How many nodes are in each state.
    states: dict[State, int] = field(default_factory=dict)
    errors: int = 0
    warnings: int = 0
    #: Nodes whose chain qemu cannot open (their own problem or one below them).
    unusable: int = 0
    #: Where the tree's chains break, each once: (node, kind of problem there).
    breaks: tuple[tuple[str, Kind], ...] = ()

    @property
    def broken(self) -> bool:
        """Some chain of the tree cannot be opened."""
        return self.unusable > 0 or self.worst in BROKEN_STATES

    @property
    def troubled(self) -> bool:
        """The tree has something the user should look at (a warning or worse)."""
        return RANK[self.worst] >= RANK[State.WARNING] or self.errors > 0 or self.warnings > 0

    @property
    def name(self) -> str:
        """The base's name as a card shows it."""
        return short_name(self.root)

    def count_label(self) -> str:
        return f"{self.images:,} image{'s' * (self.images != 1)}"

    def problem_lines(self) -> list[str]:
        """What is wrong in the tree, one short line each (empty when nothing is)."""
        lines = [
            f"{KINDS[kind].title.lower()}: {short_name(at)}"
            for at, kind in self.breaks[:MAX_BREAKS]
        ]
        if len(self.breaks) > MAX_BREAKS:
            lines.append(f"and {len(self.breaks) - MAX_BREAKS} more breaks")
        if self.unusable:
            lines.append(f"{self.unusable:,} image{'s' * (self.unusable != 1)} qemu cannot open")
        counts = []
        if self.errors:
            counts.append(f"{self.errors:,} error{'s' * (self.errors != 1)}")
        if self.warnings:
            counts.append(f"{self.warnings:,} warning{'s' * (self.warnings != 1)}")
        if counts:
            lines.append(", ".join(counts))
        return lines

    def state_line(self) -> str:
        """How many nodes are in each state, worst first: ``1 missing · 6 unusable · 3 ok``."""
        parts = sorted(self.states.items(), key=lambda kv: -RANK[kv[0]])
        return " · ".join(f"{count:,} {state}" for state, count in parts)


def summarize(layout: Layout, status: dict[str, NodeStatus]) -> list[TreeSummary]:
    """One summary per component of ``layout``, in its order (a pass over every node)."""
    out: list[TreeSummary] = []
    rank = RANK
    for index, comp in enumerate(layout.components):
        states: Counter[State] = Counter()
        errors = warnings = unusable = placeholders = 0
        breaks: dict[str, Kind] = {}
        for node in comp.nodes:
            st = status[node]
            states[st.state] += 1
            errors += st.errors
            warnings += st.warnings
            placeholders += st.placeholder
            if st.broken_at is not None:
                unusable += 1
                if st.broken_kind is not None and st.broken_at not in breaks:
                    breaks[st.broken_at] = st.broken_kind
        worst = max(states, key=rank.__getitem__)
        out.append(
            TreeSummary(
                index,
                comp.root,
                comp.x,
                comp.y,
                comp.w,
                comp.h,
                images=len(comp.nodes) - placeholders,
                nodes=len(comp.nodes),
                worst=worst,
                states=dict(states),
                errors=errors,
                warnings=warnings,
                unusable=unusable,
                breaks=tuple(breaks.items()),
            )
        )
    return out
