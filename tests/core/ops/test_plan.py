"""The plan family: every operation is a Plan with keyword-only fields, the one ``run`` and a
typed result; findings carry a ``diagnose.Level`` and read as "refused", "warning", "note"."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import typing
from pathlib import Path

from opshelpers import create, overlay

import imagegui.core.ops
from imagegui.core.chains.diagnose import Level
from imagegui.core.ops.check import CheckResult, plan_check
from imagegui.core.ops.commit import plan_commit
from imagegui.core.ops.plan import OpResult, Plan, info, refuse, warn
from imagegui.core.ops.rebase import RebaseResult, plan_rebase


def _plan_classes() -> list[type[Plan]]:
    for mod in pkgutil.iter_modules(imagegui.core.ops.__path__):
        importlib.import_module(f"imagegui.core.ops.{mod.name}")
    found, todo = [], [Plan]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            found.append(sub)
            todo.append(sub)
    return found


def test_every_operation_is_a_plan_with_the_one_run_and_keyword_only_fields():
    classes = {cls.__name__: cls for cls in _plan_classes()}
    assert {
        "OverlayPlan", "RebasePlan", "CommitPlan", "FlattenPlan", "CheckPlan", "LaunchPlan",
        "CleanLeftoversPlan",
    } <= set(classes)  # fmt: skip
    for cls in classes.values():
        assert cls.run is Plan.run, f"{cls.__name__} runs differently"
        assert all(f.kw_only for f in dataclasses.fields(cls)), cls.__name__
        assert cls.__module__ != "imagegui.core.ops.plan"
        # The result type is named: Plan[SomeResult], a dataclass deriving from OpResult.
        (base,) = [b for b in cls.__orig_bases__ if typing.get_origin(b) is Plan]  # type: ignore[attr-defined]
        (result,) = typing.get_args(base)
        assert issubclass(result, OpResult) and dataclasses.is_dataclass(result)
    assert not hasattr(imagegui.core.ops, "operations")


def test_findings_are_on_level_and_read_plainly(tmp_path: Path):
    assert [f.level for f in (refuse("a", "x"), warn("b", "y"), info("c", "z"))] == [
        Level.ERROR,
        Level.WARNING,
        Level.INFO,
    ]
    base = create(tmp_path / "base.qcow2")
    top = overlay(tmp_path / "top.qcow2", base)
    overlay(tmp_path / "sibling.qcow2", base)
    plan = plan_commit(str(top))
    levels = {f["code"]: f["level"] for f in plan.to_json()["findings"]}
    assert levels["shared-base"] == "error" and levels["searched"] == "info"
    text = plan.describe()
    assert "[refused] " in text and "[note] " in text and "verdict: REFUSED" in text
    assert "[refuse]" not in text and "[info]" not in text
    forced = plan_commit(str(top), force=True)
    assert "[forced] " in forced.describe() and not forced.refused


def test_results_are_typed(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("IMAGEGUI_JOURNAL", str(tmp_path / "journal.jsonl"))
    img = create(tmp_path / "img.qcow2")
    result = plan_check(str(img)).run()
    assert isinstance(result, CheckResult) and result.problems == [] and result.returncode == 0
    assert result.to_json()["returncode"] == 0
    base = create(tmp_path / "base.qcow2")
    top = overlay(tmp_path / "top.qcow2", base)
    new = create(tmp_path / "new.qcow2")
    rebased = plan_rebase(str(top), str(new)).run()
    assert isinstance(rebased, RebaseResult) and rebased.journal_id
