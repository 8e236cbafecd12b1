"""core.ops.check: qemu-img check surfaced as problems with a next step each."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from opshelpers import (
    create,
)

from imagegui.core.ops.check import CheckKind, check_problems, plan_check


@pytest.fixture(autouse=True)
def _journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "state" / "journal.jsonl"
    monkeypatch.setenv("IMAGEGUI_JOURNAL", str(path))
    return path


def test_check_clean_and_unsupported(tmp_path: Path):
    img = create(tmp_path / "a.qcow2")
    result = plan_check(str(img)).run()
    assert result.problems == [] and result.returncode == 0
    assert result.report["check-errors"] == 0
    raw = create(tmp_path / "a.img", fmt="raw")
    (p,) = plan_check(str(raw)).run().problems
    assert p.kind == "unsupported"


def test_check_problems_from_report():
    report = json.dumps({"corruptions": 2, "leaks": 5, "check-errors": 0})
    problems = check_problems("/x.qcow2", 2, report)
    assert [(p.kind, p.level) for p in problems] == [("corrupt", "error"), ("leaks", "warning")]
    assert "--repair leaks" in problems[1].cli_text and "--" not in problems[1].message


def test_check_kinds_are_an_enum_written_as_their_words():
    """check-image's ``kind`` is a :class:`CheckKind`, and its JSON and text are the same words
    as before it was one."""
    report = json.dumps({"corruptions": 1, "leaks": 2, "check-errors": 3})
    problems = check_problems("/x.qcow2", 1, report) + check_problems("/y.img", 63, "")
    assert all(isinstance(p.kind, CheckKind) for p in problems)
    written = json.loads(json.dumps([p.to_json() for p in problems]))
    assert [d["kind"] for d in written] == ["corrupt", "leaks", "check-error", "unsupported"]
    assert all(type(p.to_json()["kind"]) is str for p in problems)
    assert f"{problems[0].kind}" == "corrupt" and str(problems[2].kind) == "check-error"
