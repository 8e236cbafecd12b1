"""OpenStack Nova's ``_base`` cache: which bases instances still use, and which Nova removes."""

from __future__ import annotations

import os
import time

from imagegui.core.chains.graph import ChainGraph
from imagegui.core.chains.nova import is_cached_base
from imagegui.core.read.scan import scan_directory


def test_nova_layout_marks_unused_bases_with_their_age(make, tmp_path):
    now = time.time()
    used = make.create("_base/" + "a" * 40, "raw", "8M")
    unused = make.create("_base/" + "b" * 40, "raw", "8M")
    resized = make.create("_base/" + "c" * 40 + "_10", "raw", "8M")
    os.utime(unused, (now - 3 * 86400, now - 3 * 86400))
    os.utime(resized, (now - 7200, now - 7200))
    for uuid in ("inst-1", "inst-2"):
        make.overlay(f"{uuid}/disk", str(used), backing_fmt="raw")
    g = ChainGraph(scan_directory(str(tmp_path)), now=now)
    assert g.problems == []
    bases = {os.path.basename(b.path): b for b in g.nova_bases}
    assert bases["a" * 40].used_by == 2 and not bases["a" * 40].unused
    assert bases["b" * 40].unused and bases["b" * 40].nova_would_remove
    assert 3 * 86400 - 5 < bases["b" * 40].age_seconds < 3 * 86400 + 5
    assert bases["c" * 40 + "_10"].resized and bases["c" * 40 + "_10"].nova_would_remove


def test_a_base_counts_the_instance_disks_on_it_not_their_snapshots(make, tmp_path):
    base = make.create("_base/" + "d" * 40, "raw", "8M")
    disk = make.overlay("inst-1/disk", str(base), backing_fmt="raw")
    make.overlay("inst-1/disk.snap", str(disk))
    make.create("_base/nested/" + "e" * 40, "raw", "8M")  # not directly in _base
    g = ChainGraph(scan_directory(str(tmp_path)))
    [nova] = g.nova_bases
    assert nova.path == str(base) and nova.used_by == g.g.in_degree(str(base)) == 1
    assert len(g.descendants(str(base))) == 2
    assert nova.to_json()["unused"] is False
    assert g.nova_base(str(disk)) is None


def test_cached_bases_are_files_directly_in_a_base_directory():
    assert is_cached_base("/var/lib/nova/instances/_base/" + "a" * 40)
    assert not is_cached_base("/var/lib/nova/instances/_base/x/" + "a" * 40)
    assert not is_cached_base("/var/lib/nova/instances/my_base/" + "a" * 40)
