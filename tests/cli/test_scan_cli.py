"""``imagegui scan`` and ``imagegui check`` as a user runs them: a real process, real images."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import qemu_info
from hypothesis import given, settings
from hypothesis import strategies as st


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "imagegui", *args], capture_output=True, text=True, timeout=60
    )


def test_scan_json_matches_qemu(make, tmp_path):
    make.create("base.qcow2", "qcow2", "2G")
    top = make.overlay("top.qcow2", "base.qcow2")
    proc = run("scan", str(tmp_path), "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["root"] == str(tmp_path)
    assert out["problems"] == []
    images = {i["path"]: i for i in out["images"]}
    t = images[str(top)]
    q = qemu_info(top)
    assert t["format"] == "qcow2" and t["virtual_size"] == q["virtual-size"]
    assert t["backing_file"] == "base.qcow2" and t["backing_format"] == "qcow2"
    assert t["backing_path"] == str(tmp_path / "base.qcow2")
    assert t["in_use"] is False and t["actual_size"] == top.stat().st_blocks * 512
    assert images[str(tmp_path / "base.qcow2")]["backing_file"] is None


def test_scan_tree_shows_chains_indented_with_marks(make, tmp_path):
    make.create("base.qcow2", "qcow2", "1G")
    make.overlay("top.qcow2", "base.qcow2")
    make.overlay("broken.qcow2", "gone.qcow2")
    proc = run("scan", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].endswith("3 images, 1 error, 0 warnings, 1 unusable")
    base = next(i for i, line in enumerate(lines) if line.startswith("base.qcow2"))
    assert "qcow2" in lines[base] and "1 GiB" in lines[base]
    assert lines[base + 1].startswith("└─ top.qcow2")
    assert any("broken.qcow2" in line and "✗ missing-backing" in line for line in lines)


def test_check_exit_status(make, tmp_path):
    make.create("base.qcow2")
    make.overlay("top.qcow2", "base.qcow2")
    ok = run("check", str(tmp_path))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    make.overlay("broken.qcow2", "gone.qcow2")
    bad = run("check", str(tmp_path), "--json")
    assert bad.returncode == 1
    [problem] = json.loads(bad.stdout)["problems"]
    assert problem["kind"] == "missing-backing" and problem["severity"] == "error"
    assert problem["path"] == str(tmp_path / "broken.qcow2") and problem["message"]


def test_warnings_alone_do_not_fail_check(make, tmp_path):
    make.overlay("top.qcow2", "nbd://localhost/x", backing_fmt="raw")
    proc = run("check", str(tmp_path))
    assert proc.returncode == 0
    assert "protocol-backing" in proc.stdout


def test_bad_directory_is_a_usage_error(tmp_path):
    proc = run("scan", str(tmp_path / "nope"))
    assert proc.returncode == 2
    assert "no such directory" in proc.stderr and "Traceback" not in proc.stderr
    proc = run("check", os.devnull)
    assert proc.returncode == 2 and "not a directory" in proc.stderr


def test_streamed_json_equals_the_document(make, tmp_path):
    import io

    from imagegui.cli.scan_cmds import scan_json, write_scan_json
    from imagegui.core.chains.graph import ChainGraph
    from imagegui.core.read.scan import scan_directory

    for i in range(5):
        make.create(f"img{i}.qcow2", "qcow2", "1M")
    make.overlay("broken.qcow2", "gone.qcow2")
    graph = ChainGraph(scan_directory(str(tmp_path)))
    for batch in (1, 2, 1024):
        out = io.StringIO()
        write_scan_json(graph, out, batch=batch)
        assert json.loads(out.getvalue()) == json.loads(json.dumps(scan_json(graph)))
    (tmp_path / "empty").mkdir()
    out = io.StringIO()
    write_scan_json(ChainGraph(scan_directory(str(tmp_path / "empty"))), out)
    assert json.loads(out.getvalue())["images"] == []


_names = st.one_of(
    st.none(),
    st.text(max_size=20),
    st.binary(max_size=12).map(lambda b: b.decode("utf-8", "surrogateescape")),
)


@settings(max_examples=300, deadline=None)
@given(
    path=_names.filter(lambda s: s is not None),
    backing=_names,
    fmt=_names,
    flags=st.dictionaries(
        st.text(max_size=8),
        st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8)),
        max_size=4,
    ),
    extents=st.lists(st.text(max_size=8), max_size=2),
    mtime=st.floats(min_value=0, max_value=4e9),
    sizes=st.tuples(st.integers(0, 2**63), st.integers(0, 2**63)),
    bools=st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans()),
)
def test_fast_image_json_equals_json_dumps(path, backing, fmt, flags, extents, mtime, sizes, bools):
    from imagegui.cli.image_json import ImageJSON, image_record
    from imagegui.core.read.model import ImageInfo

    info = ImageInfo(
        path, "qcow2", sizes[0], sizes[1], backing, fmt, backing, bools[0], bools[1], bools[2],
        flags, extents, ["vpc"] if bools[3] else [], mtime, (1, 2), bools[3],
    )  # fmt: skip
    assert ImageJSON().encode(info) == json.dumps(image_record(info))


def test_terminal_count_shows_progress_and_clears_it():
    import io

    from imagegui.cli.scan_cmds import _TerminalCount

    out = io.StringIO()
    count = _TerminalCount(out)
    for n in range(256, 10_000, 256):
        count(n)
    count.clear()
    text = out.getvalue()
    assert "\rscanning... 4,096 files" in text and "8,192" in text
    assert text.endswith("\r\033[K")
    quiet = io.StringIO()
    _TerminalCount(quiet).clear()  # nothing shown, nothing to clear
    assert quiet.getvalue() == ""


def test_scan_json_marks_every_image_above_a_hole(make, tmp_path):
    make.create("c0.qcow2", "qcow2", "64M")
    for i in range(1, 6):
        make.overlay(f"c{i}.qcow2", f"c{i - 1}.qcow2")
    make.create("alone.qcow2", "qcow2", "64M")
    (tmp_path / "c2.qcow2").unlink()
    proc = run("scan", str(tmp_path), "--json")
    assert proc.returncode == 0, proc.stderr
    chains = {os.path.basename(i["path"]): i["chain"] for i in json.loads(proc.stdout)["images"]}
    hole = str(tmp_path / "c2.qcow2")
    for name in ("c3.qcow2", "c4.qcow2", "c5.qcow2"):
        assert chains[name] == {"ok": False, "broken_at": hole, "kind": "missing-backing"}
    for name in ("c0.qcow2", "c1.qcow2", "alone.qcow2"):
        assert chains[name] == {"ok": True, "broken_at": None, "kind": None}


def test_check_counts_unusable_images(make, tmp_path):
    make.create("c0.qcow2", "qcow2", "64M")
    for i in range(1, 4):
        make.overlay(f"c{i}.qcow2", f"c{i - 1}.qcow2")
    (tmp_path / "c0.qcow2").unlink()
    proc = run("check", str(tmp_path))
    assert proc.returncode == 1
    assert proc.stdout.rstrip().endswith("1 error, 0 warnings, 3 unusable")
    assert "c3.qcow2: qemu cannot open it: missing-backing at c0.qcow2" in proc.stdout
    doc = json.loads(run("check", str(tmp_path), "--json").stdout)
    assert [os.path.basename(u["path"]) for u in doc["unusable"]] == ["c2.qcow2", "c3.qcow2"]
    assert all(u["broken_at"] == str(tmp_path / "c0.qcow2") for u in doc["unusable"])
