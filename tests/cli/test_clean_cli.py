"""``imagegui clean DIR``: the space accounting's reclaimable files moved to the Trash, guarded."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from opshelpers import qemu_io

from imagegui.cli import run_cli
from imagegui.cli.delete_cmds import OLDER_THAN_DAYS
from imagegui.core.chains.space import DEFAULT_OLDER_THAN_DAYS
from imagegui.core.ops.clean import CleanRequest, clean_job

DAY = 86400


@pytest.fixture(autouse=True)
def _journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEGUI_JOURNAL", str(tmp_path / "state" / "journal.jsonl"))


def cli(capsys: pytest.CaptureFixture, *args: object) -> tuple[int, str, str]:
    status = run_cli([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


def aged(path: Path, days: float) -> Path:
    then = time.time() - days * DAY
    os.utime(path, (then, then))
    return path


@pytest.fixture
def nova(make, tmp_path: Path) -> dict[str, Path]:
    """An OpenStack compute host's instances folder: _base caches, instance disks on them."""
    root = tmp_path / "instances"
    make.root = root
    used = aged(make.create("_base/" + "a" * 40, "raw", "8M"), 40)
    qemu_io(used, "write -P 1 0 1M", fmt="raw")
    aged(used, 40)
    old = aged(make.create("_base/" + "b" * 40, "raw", "8M"), 3)
    resized = aged(make.create("_base/" + "b" * 40 + "_10", "raw", "8M"), 2 / 24)
    young = make.create("_base/" + "c" * 40, "raw", "8M")  # unused, under Nova's 24 h
    young_resized = aged(make.create("_base/" + "c" * 40 + "_20", "raw", "8M"), 0.5 / 24)
    disk = make.overlay("0f6c-inst-1/disk", str(used), backing_fmt="raw")
    qemu_io(disk, "write -P 2 0 64k")
    return {
        "root": root,
        "used": used,
        "old": old,
        "resized": resized,
        "young": young,
        "young_resized": young_resized,
        "disk": disk,
    }


def test_clean_nova_moves_exactly_the_old_unused_bases(nova, capsys, trash_home):
    status, out, err = cli(capsys, "clean", nova["root"], "--nova")
    assert status == 0, err
    gone = {k for k, p in nova.items() if not p.exists()}
    assert gone == {"old", "resized"}
    assert sorted(os.listdir(trash_home / "Trash" / "files")) == sorted(
        [nova["old"].name, nova["resized"].name]
    )
    assert "nova-unused-base: " in out and "total: 2 files" in out
    assert "other compute hosts that share this _base folder" in err  # the NFS warning


def test_without_nova_the_caches_stay(nova, capsys, trash_home):
    status, out, _ = cli(capsys, "clean", nova["root"])
    assert status == 0
    assert out.strip() == "nothing to clean up"
    assert all(p.exists() for p in nova.values())


def test_dry_run_lists_the_total_and_changes_nothing(nova, capsys, trash_home):
    status, out, _ = cli(capsys, "clean", nova["root"], "--nova", "--dry-run")
    assert status == 0
    assert f"nova-unused-base: {nova['old']} (" in out
    assert "total: 2 files" in out and "verdict: ok to run" in out
    assert all(p.exists() for p in nova.values()) and not (trash_home / "Trash").exists()


def test_orphans_and_empty_overlays_by_age_never_a_base_or_a_fresh_overlay(
    make, tmp_path, capsys, trash_home
):
    base = aged(make.create("base.qcow2", "qcow2", "8M"), 90)
    clone = make.overlay("clone.qcow2", "base.qcow2")
    qemu_io(clone, "write -P 3 0 64k")
    aged(clone, 5)
    fresh_empty = make.overlay("fresh.qcow2", "base.qcow2")  # its VM has not started yet
    old_empty = aged(make.overlay("old-empty.qcow2", "base.qcow2"), 40)
    forgotten = aged(make.create("forgotten.qcow2", "qcow2", "8M"), 31)
    recent = aged(make.create("recent.qcow2", "qcow2", "8M"), 29)
    status, out, err = cli(capsys, "clean", tmp_path)
    assert status == 0, err
    assert not old_empty.exists() and not forgotten.exists()
    assert all(p.exists() for p in (base, clone, fresh_empty, recent))
    assert "empty-overlay: " in out and "orphan: " in out
    # Everything older than a day: the clone too now, never the base under it.
    status, _, err = cli(capsys, "clean", tmp_path, "--older-than", "1")
    assert status == 0, err
    assert not clone.exists() and not recent.exists()
    assert base.exists() and fresh_empty.exists()


def test_a_file_changed_between_report_and_move_is_kept(make, tmp_path, trash_home):
    a = aged(make.create("a.qcow2", "qcow2", "8M"), 40)
    b = aged(make.create("b.qcow2", "qcow2", "8M"), 40)
    plan = clean_job(CleanRequest(str(tmp_path))).run()
    assert [Path(i.path).name for i in plan.items] == ["a.qcow2", "b.qcow2"]
    qemu_io(b, "write -P 1 0 64k")
    from imagegui.core.ops.plan import GuardRefused

    with pytest.raises(GuardRefused, match="changed since this plan"):
        plan.run()
    assert a.exists() and b.exists()


def test_the_default_age_is_the_space_accountings():
    assert OLDER_THAN_DAYS == DEFAULT_OLDER_THAN_DAYS
