"""networkx imported beside the walk, and only while the walk waits on the disk (a fresh process
each, so networkx is not imported yet; the clocks the walk reads are the one faked thing)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from imagegui.core.read.scan import _thread_clocks

SCAN = """
import sys, threading, time
import imagegui.core.read.scan as scan
assert "networkx" not in sys.modules
# A clock 100 times the real one: 300 files take long enough to be judged (MIN_SAMPLE).
if {waiting}:  # the walk's thread neither runs nor waits for a CPU: it is blocked reading
    scan._thread_clocks = lambda: (time.perf_counter() * 100, 0.0, 0.0)
else:  # half its time on a CPU, half waiting for one (a busy machine): not blocked
    scan._thread_clocks = lambda: (t := time.perf_counter() * 100, t / 2, t / 2)
result = scan.scan_directory({root!r})
assert result.files_seen == {count}, result.files_seen
threads = [t for t in threading.enumerate() if t.name == "import networkx"]
for t in threads:
    t.join(60)
print(len(threads), "networkx" in sys.modules)
"""


def run(code: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.fixture
def many_files(tmp_path: Path) -> Path:
    for i in range(300):  # the walk looks at its clock every 256 files
        (tmp_path / f"f{i:03d}.txt").write_bytes(b"not an image")
    return tmp_path


@pytest.mark.parametrize(("waiting", "started"), [(True, "1 True"), (False, "0 False")])
def test_networkx_is_imported_beside_a_walk_that_waits(many_files: Path, waiting, started):
    code = SCAN.format(waiting=waiting, root=str(many_files), count=300)
    assert run(code) == started


def test_prefetch_starts_once_and_not_when_imported():
    out = run(
        """
        import sys
        from imagegui.core.read.scan import prefetch_networkx
        first = prefetch_networkx()
        again = prefetch_networkx()
        first.join(60)
        print(first.name, again, "networkx" in sys.modules, prefetch_networkx())
        """
    )
    assert out == "import networkx None True None"


def test_thread_clocks_tell_blocked_from_running():
    """The kernel's own accounting: a sleep is neither CPU nor run-queue time, work is CPU."""
    before = _thread_clocks()
    assert before is not None, "Linux gives /proc/thread-self/schedstat"
    sum(i * i for i in range(200_000))
    time.sleep(0.05)
    after = _thread_clocks()
    assert after is not None
    wall, cpu, queued = (b - a for a, b in zip(before, after, strict=True))
    assert cpu > 0 and queued >= 0
    assert wall - cpu - queued >= 0.045
