"""processes.holders_by_path: one walk of /proc answers for many files, as holders() does."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from imagegui.core.read.holders import holders, holders_by_path


def test_many_files_in_one_walk(tmp_path: Path):
    a, b, free = (tmp_path / n for n in ("a.img", "b.img", "free.img"))
    for p in (a, b, free):
        p.write_bytes(b"x")
    link = tmp_path / "link.img"
    link.symlink_to(a)
    with open(a, "rb") as fa, open(b, "rb") as fb:
        proc = subprocess.Popen(["sleep", "60"], stdin=fa, stdout=fb)
    try:
        found = holders_by_path([str(a), str(b), str(free), str(link), str(tmp_path / "gone")])
        assert set(found) == {str(a), str(b), str(link)}
        for path in (a, b):
            (h,) = found[str(path)]
            assert (h.pid, h.program) == (proc.pid, "sleep")
            assert found[str(path)] == tuple(holders(str(path)))
        assert all(h.pid != os.getpid() for hs in found.values() for h in hs)
    finally:
        proc.kill()
        proc.wait()
    assert holders_by_path([str(a)]) == {}
