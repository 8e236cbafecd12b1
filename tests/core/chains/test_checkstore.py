"""Check results as problems of an image: kept until the file changes or is checked again."""

from __future__ import annotations

import json
import os
from pathlib import Path

from damaged import leaky_qcow2, truncated_qcow2

from imagegui.core.chains import checkstore
from imagegui.core.chains.checkstore import CheckRecord, CheckStore, Fingerprint
from imagegui.core.chains.diagnose import KINDS, Kind
from imagegui.core.chains.graph import ChainGraph
from imagegui.core.ops.check import check_argv, check_record, plan_check
from imagegui.core.read.scan import scan_directory


def kinds(graph: ChainGraph, path: Path) -> list[tuple[str, str]]:
    return [(str(p.kind), str(p.level)) for p in graph.problems_for(str(path))]


def graph_of(root: Path, store: CheckStore | None = None) -> ChainGraph:
    return ChainGraph(scan_directory(str(root)), checks=store)


def test_check_of_a_truncated_image_becomes_its_problem(tmp_path: Path, check_store: Path):
    img = truncated_qcow2(tmp_path / "trunc.qcow2")
    assert kinds(graph_of(tmp_path), img) == []  # the header alone looks fine
    result = plan_check(str(img)).run()
    assert result.record.corruptions == 3
    assert check_store.exists()
    graph = graph_of(tmp_path)
    assert kinds(graph, img) == [("check-errors", "error")]
    (p,) = graph.problems_for(str(img))
    assert "3 corruptions" in p.message
    assert p.explanation == KINDS[Kind.CHECK_ERRORS].explanation


def test_leaks_are_a_warning_and_a_repair_clears_them(tmp_path: Path, check_store: Path):
    img = leaky_qcow2(tmp_path / "leak.qcow2")
    plan_check(str(img)).run()
    assert kinds(graph_of(tmp_path), img) == [("leaked-clusters", "warning")]
    result = plan_check(str(img), "leaks").run()
    assert result.record.leaks == 0
    assert kinds(graph_of(tmp_path), img) == []
    assert len(checkstore.load()) == 0  # a clean result removes the entry


def test_findings_stop_applying_when_the_image_changes(tmp_path: Path, check_store: Path):
    img = truncated_qcow2(tmp_path / "trunc.qcow2")
    plan_check(str(img)).run()
    assert kinds(graph_of(tmp_path), img) == [("check-errors", "error")]
    st = os.stat(img)
    os.utime(img, ns=(st.st_atime_ns, st.st_mtime_ns + 1))  # written to: mtime moves
    assert kinds(graph_of(tmp_path), img) == []
    os.utime(img, ns=(st.st_atime_ns, st.st_mtime_ns))  # same mtime back, but longer now
    with open(img, "ab") as f:
        f.write(b"\0" * 512)
    os.utime(img, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(img).st_mtime_ns == st.st_mtime_ns
    assert kinds(graph_of(tmp_path), img) == []


def test_another_file_with_the_same_name_is_not_blamed(tmp_path: Path, check_store: Path):
    img = truncated_qcow2(tmp_path / "trunc.qcow2")
    plan_check(str(img)).run()
    keep = tmp_path / "keep.qcow2"
    os.link(img, keep)  # hold the inode so the new file cannot reuse it
    os.unlink(img)
    truncated_qcow2(tmp_path / "other.qcow2").rename(img)
    graph = graph_of(tmp_path)
    assert kinds(graph, img) == []
    assert kinds(graph, keep) == [("check-errors", "error")]  # the checked file, by its new name


def test_checked_again_replaces_the_findings(tmp_path: Path, check_store: Path):
    img = leaky_qcow2(tmp_path / "leak.qcow2")
    fp = Fingerprint.of(str(img))
    old = CheckRecord(str(img), fp, 1.0, "qcow2", corruptions=7)
    checkstore.record([old])
    assert kinds(graph_of(tmp_path), img) == [("check-errors", "error")]
    plan_check(str(img)).run()
    assert kinds(graph_of(tmp_path), img) == [("leaked-clusters", "warning")]


def test_a_corrupt_store_is_a_note_not_a_crash(tmp_path: Path, check_store: Path):
    img = truncated_qcow2(tmp_path / "trunc.qcow2")
    check_store.write_bytes(b'{"version": 1, "records": [{"path": \xff')
    graph = graph_of(tmp_path)
    assert graph.checks_note and "could not be read" in graph.checks_note
    assert str(check_store) in graph.checks_note
    assert kinds(graph, img) == []
    plan_check(str(img)).run()  # the next check rewrites the store whole
    doc = json.loads(check_store.read_text())
    assert [r["corruptions"] for r in doc["records"]] == [3]
    graph = graph_of(tmp_path)
    assert graph.checks_note is None and kinds(graph, img) == [("check-errors", "error")]


def test_damaged_entries_are_skipped_and_the_rest_kept(tmp_path: Path, check_store: Path):
    img = truncated_qcow2(tmp_path / "trunc.qcow2")
    good = CheckRecord(str(img), Fingerprint.of(str(img)), 1.0, "qcow2", corruptions=3)
    doc = {
        "version": 1,
        "records": [good.to_json(), {"path": 5}, "x", {**good.to_json(), "ino": "1"}],
    }
    check_store.write_text(json.dumps(doc))
    store = checkstore.load()
    assert len(store) == 1 and "3 damaged entries ignored" in (store.note or "")
    assert kinds(graph_of(tmp_path), img) == [("check-errors", "error")]


def test_not_a_store_and_unreadable_store(tmp_path: Path, check_store: Path):
    check_store.write_text("[1, 2]")
    assert checkstore.load().note
    check_store.unlink()
    check_store.mkdir()  # reading a directory fails with an OSError
    store = checkstore.load()
    assert len(store) == 0 and "could not be read" in (store.note or "")


def test_an_unwritable_store_keeps_the_findings_in_memory(tmp_path: Path, monkeypatch):
    img = truncated_qcow2(tmp_path / "trunc.qcow2")
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("IMAGEGUI_CHECKS", str(blocker / "checks.json"))  # parent is a file
    rec = CheckRecord(str(img), Fingerprint.of(str(img)), 1.0, "qcow2", corruptions=3)
    store = checkstore.record([rec])
    assert "could not be saved" in (store.note or "")
    assert kinds(graph_of(tmp_path, store), img) == [("check-errors", "error")]


def test_writes_are_atomic_and_leave_no_temp_file(tmp_path: Path, check_store: Path):
    img = truncated_qcow2(tmp_path / "trunc.qcow2")
    rec = CheckRecord(str(img), Fingerprint.of(str(img)), 1.0, "qcow2", corruptions=3)
    checkstore.record([rec])
    inode = os.stat(check_store).st_ino
    checkstore.record([rec])
    assert os.stat(check_store).st_ino != inode  # replaced whole, never rewritten in place
    assert sorted(p.name for p in check_store.parent.iterdir()) == [
        "checks.json",
        "checks.json.lock",
    ]


def test_stale_entries_are_pruned_on_write(tmp_path: Path, check_store: Path):
    a = truncated_qcow2(tmp_path / "a.qcow2")
    b = leaky_qcow2(tmp_path / "b.qcow2")
    checkstore.record(
        [CheckRecord(str(p), Fingerprint.of(str(p)), 1.0, "qcow2", leaks=1) for p in (a, b)]
    )
    assert len(checkstore.load()) == 2
    a.unlink()
    checkstore.record([])
    assert [r.path for r in checkstore.load()] == [str(b)]


def test_the_backing_chain_is_not_opened(tmp_path: Path, check_store: Path, make):
    top = make.overlay("top.qcow2", "gone.qcow2")
    result = plan_check(str(top)).run()  # qemu-img would refuse to open the chain
    assert result.returncode == 0 and result.problems == []
    argv = check_argv(str(top), "qcow2")
    assert argv[-1].startswith("json:") and json.loads(argv[-1][5:])["backing"] is None


def test_store_path_follows_xdg_state_home(monkeypatch, tmp_path: Path):
    monkeypatch.delenv("IMAGEGUI_CHECKS")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert checkstore.store_path() == str(tmp_path / "imagegui" / "checks.json")


def test_what_a_check_run_leaves_to_remember(tmp_path: Path):
    """check_record: the report of an unchanged file is kept; one that changed during a read-only
    check is not (it mixes two states); after a repair, the repaired state is kept."""
    img = truncated_qcow2(tmp_path / "trunc.qcow2")
    fp = Fingerprint.of(str(img))
    moved = Fingerprint(fp.dev, fp.ino, fp.size, fp.mtime_ns + 1)
    report = json.dumps({"corruptions": 3, "leaks": 2, "check-errors": 1})
    rec = check_record(str(img), "qcow2", 2, report, "", fp, fp)
    assert (rec.corruptions, rec.leaks, rec.check_errors, rec.fingerprint) == (3, 2, 1, fp)
    assert [p.kind for p in rec.problems()] == [Kind.CHECK_ERRORS, Kind.LEAKED_CLUSTERS]
    assert check_record(str(img), "qcow2", 2, report, "", fp, moved) is None
    assert check_record(str(img), "qcow2", 2, report, "", fp, None) is None
    repaired = check_record(str(img), "qcow2", 0, "{}", "", fp, moved, repaired=True)
    assert repaired.fingerprint == moved and not repaired.has_findings
    unsupported = check_record(str(img), "raw", 63, "", "no checks", fp, fp)
    assert not unsupported.has_findings
    failed = check_record(
        str(img),
        "qcow2",
        1,
        "",
        "qemu-img: Could not open 'json:{\"file\":{}}': Image is not in qcow2 format\n",
        fp,
        fp,
    )
    assert failed.failure == "Image is not in qcow2 format."
    (p,) = failed.problems()
    assert p.kind == Kind.CHECK_ERRORS and "could not open it: Image is not" in p.message
