"""The GC pause: collection off while bulk work runs, back as it was after, and nothing pinned
(``gc.freeze()`` kept cycles alive for the life of the window)."""

from __future__ import annotations

import gc
import threading
import weakref

import pytest

from imagegui.core import gcpause
from imagegui.core.chains.graph import ChainGraph
from imagegui.core.gcpause import paused_gc
from imagegui.core.read.scan import scan_directory


class Node:
    """A reference cycle: only the cyclic collector frees it."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture(autouse=True)
def _collector_on():
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_a_cycle_made_during_a_scan_is_collected_once_dropped(make, tmp_path):
    make.create("base.qcow2")
    make.overlay("top.qcow2", "base.qcow2")
    frozen = gc.get_freeze_count()
    with paused_gc():
        assert not gc.isenabled()
        graph = ChainGraph(scan_directory(str(tmp_path)))
        cycle = Node()
        graph.extra = cycle  # type: ignore[attr-defined]  # rides on what the window keeps
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen  # nothing pinned by the scan
    gone = weakref.ref(cycle)
    del cycle, graph
    gc.collect()
    assert gone() is None


def test_pauses_nest_across_threads_and_the_last_one_resumes():
    inner_entered, release = threading.Event(), threading.Event()
    seen: list[bool] = []

    def worker() -> None:
        with paused_gc():
            inner_entered.set()
            release.wait(10)
        seen.append(gc.isenabled())  # the main thread still pauses

    with paused_gc():
        t = threading.Thread(target=worker)
        t.start()
        assert inner_entered.wait(10)
        release.set()
        t.join(10)
        assert not gc.isenabled()
    assert seen == [False]
    assert gc.isenabled()


def test_a_collector_switched_off_before_stays_off():
    gc.disable()
    with paused_gc():
        pass
    assert not gc.isenabled()


def test_a_kept_pause_freezes_what_it_built_until_the_next_kept_pause(monkeypatch):
    monkeypatch.setattr(gcpause, "_kept_base", 0)
    gc.unfreeze()
    with paused_gc(keep=True):
        kept = [Node() for _ in range(10)]
    assert gc.get_freeze_count() > 0  # out of every collection's sight while shown
    assert len(kept) == 10
    with paused_gc(keep=True):
        assert gc.get_freeze_count() == 0  # the next scan thaws it first
    gc.unfreeze()


def test_cycles_that_died_while_frozen_are_collected_once_they_grow_by_a_quarter(monkeypatch):
    monkeypatch.setattr(gcpause, "_kept_base", 0)
    gc.unfreeze()
    gc.collect()
    with paused_gc(keep=True):
        pass  # the base: what is alive now
    base = gc.get_freeze_count()
    with paused_gc(keep=True):
        cycles = [Node() for _ in range(int(base * 0.5) + 10)]
    gone = weakref.ref(cycles[0])
    del cycles  # garbage, but frozen: no collection finds it yet
    gc.collect()
    assert gone() is not None
    with paused_gc(keep=True):  # thawed, and half as much again as the base: collected
        assert gone() is None
    gc.unfreeze()
