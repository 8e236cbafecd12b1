"""core.ops.check: qemu-img check surfaced as problems with a next step each."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from opshelpers import (
    create,
)

from imagegui.core.ops.check import check_problems, plan_check


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
