"""networkx imported beside the walk, and only while the walk waits (a fresh process each, so
networkx is not imported yet; the clock the walk reads is the one faked thing)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCAN = """
import sys, threading, time
import imagegui.core.read.scan as scan
assert "networkx" not in sys.modules
if {waiting}:
    time.thread_time = lambda: 0.0  # the walk's thread never gets the CPU: it is waiting
else:
    time.thread_time = time.perf_counter  # all CPU: nothing to wait for
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
