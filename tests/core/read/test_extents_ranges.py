"""The range arithmetic of core/read/extents.py against sets of byte offsets (hypothesis): the
space figures (core/chains/space.py) are sums of these, and union and intersect take shortcuts
for the common cases (one input, two that do not meet)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from imagegui.core.read.extents import LayerMap, intersect, normalise, subtract, total, union

pairs = st.lists(st.tuples(st.integers(0, 64), st.integers(0, 64)), max_size=8)
ranges = pairs.map(normalise)


def as_set(rs) -> set[int]:
    return {b for start, end in rs for b in range(start, end)}


def canonical(rs) -> bool:
    return all(a < b for a, b in rs) and all(rs[i][1] < rs[i + 1][0] for i in range(len(rs) - 1))


@given(pairs)
def test_normalise_is_canonical_and_keeps_every_byte(ps):
    rs = normalise(ps)
    assert canonical(rs) and as_set(rs) == as_set(ps) and total(rs) == len(as_set(ps))


@given(ranges, ranges, ranges)
def test_union_intersect_subtract_are_the_set_operations(a, b, c):
    for got, want in (
        (union(a, b), as_set(a) | as_set(b)),
        (union(a, b, c), as_set(a) | as_set(b) | as_set(c)),
        (union(a), as_set(a)),
        (intersect(a, b), as_set(a) & as_set(b)),
        (subtract(a, b), as_set(a) - as_set(b)),
    ):
        assert canonical(got) and as_set(got) == want


def test_touching_and_disjoint_ranges_join_in_canonical_form():
    assert union(((0, 4),), ((4, 8),)) == ((0, 8),)
    assert union(((4, 8),), ((0, 2),)) == ((0, 2), (4, 8))
    assert union((), ((1, 2),), ()) == ((1, 2),)
    assert union() == ()
    assert intersect(((0, 4),), ((4, 8),)) == ()


def test_covers_is_data_and_zeroes():
    assert LayerMap(16, ((0, 4),)).covers == ((0, 4),)
    assert LayerMap(16, ((0, 4),), ((4, 6), (10, 12))).covers == ((0, 6), (10, 12))
