"""The GC pause: collection off while bulk work runs, back as it was after, and nothing pinned
(``gc.freeze()`` kept cycles alive for the life of the window)."""

from __future__ import annotations

import gc
import threading
import weakref

import pytest

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
