"""Finding a base's other overlays is a search over roots the plan states, never a guess that
reaches a directory every user shares (/tmp) or the home directory and above."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imagegui.core.ops import guards
from imagegui.core.ops.commit import plan_commit
from imagegui.core.ops.flatten import plan_flatten
from imagegui.core.ops.launch import LaunchOptions, plan_launch
from imagegui.core.ops.leftovers import plan_clean_leftovers

TCG = LaunchOptions(memory=64, accel="tcg")


@pytest.fixture
def shared(tmp_path: Path) -> Path:
    """A directory like /tmp: sticky and writable by every user."""
    d = tmp_path / "shared"
    d.mkdir()
    d.chmod(0o1777)
    return d


def test_too_wide_directories():
    home = os.path.expanduser("~")
    assert guards.too_wide("/") and guards.too_wide(home)
    assert guards.too_wide(os.path.dirname(home))  # /home: every user's home
    assert guards.too_wide("/tmp")  # sticky, world-writable


def test_a_writable_launch_searches_only_the_stated_roots(make, tmp_path: Path, shared: Path):
    """A base directly in shared/x: the search covers shared/x, not all of shared (a file in
    /tmp/x used to make the search, and the trust, cover the whole of /tmp)."""
    base = make.create("shared/x/base.qcow2")
    make.overlay("shared/y/clone.qcow2", "../x/base.qcow2")
    plan = plan_launch(str(base), TCG)
    assert plan.searched == (str(shared / "x"),)
    note = next(f for f in plan.findings if f.code == "searched")
    assert note.message.endswith(f"under {shared / 'x'}")
    assert plan.to_json()["searched"] == [str(shared / "x")]
    assert not plan.refused  # the clone in shared/y was not looked for, as the note says
    # Named as a root, it is searched (and found).
    plan = plan_launch(str(base), TCG, roots=(str(shared),))
    assert plan.searched == (str(shared),)
    assert {f.code for f in plan.blocking()} == {"base-has-overlays"}


def test_a_chain_may_not_read_a_sibling_in_a_shared_directory(make, shared: Path, tmp_path):
    """Trust follows the same rule: an image in shared/x reading shared/y/base is refused unless
    that file (or the folder, as a root) is allowed, as any file outside its folders is."""
    make.create("shared/y/base.qcow2")
    top = make.overlay("shared/x/top.qcow2", "../y/base.qcow2")
    plan = plan_flatten(str(top), str(tmp_path / "out.qcow2"))
    assert [f.code for f in plan.blocking()] == ["outside-roots"]
    assert not plan_flatten(str(top), str(tmp_path / "out.qcow2"), roots=(str(shared),)).refused


def test_commit_states_where_it_searched(make, tmp_path: Path):
    make.create("templates/base.qcow2")
    mine = make.overlay("clones/mine.qcow2", "../templates/base.qcow2")
    plan = plan_commit(str(mine))
    assert plan.searched == (str(tmp_path),)  # the common parent of templates/ and clones/
    assert plan.to_json()["searched"] == [str(tmp_path)]
    note = next(f for f in plan.findings if f.code == "searched")
    assert str(tmp_path) in note.message


def test_find_overlays_scans_only_its_roots(make, tmp_path: Path):
    base = make.create("a/base.qcow2")
    near = make.overlay("a/near.qcow2", "base.qcow2")
    make.overlay("b/far.qcow2", "../a/base.qcow2")
    assert guards.find_overlays(str(base), [str(tmp_path / "a")]) == [str(near)]
    assert len(guards.find_overlays(str(base), [str(tmp_path)])) == 2


def test_clean_leftovers_states_the_folders_it_searched(make, tmp_path: Path):
    leftover = tmp_path / "d" / ".out.qcow2.0123abcd.partial"
    leftover.parent.mkdir()
    leftover.write_bytes(b"x")
    plan = plan_clean_leftovers([str(leftover)])
    assert plan.searched == (str(tmp_path / "d"),)


def test_the_search_is_stated_once(make, tmp_path: Path):
    """A commit's ``searched`` note already names the folders: neither the dry run's text nor the
    window's preview (tests/gui/test_plan_dialog.py) repeats them on a line of their own; a plan
    without the note keeps the line."""
    make.create("templates/base.qcow2")
    mine = make.overlay("clones/mine.qcow2", "../templates/base.qcow2")
    plan = plan_commit(str(mine))
    text = plan.describe()
    assert f"under {tmp_path};" in text and "searched for other overlays in:" not in text
    leftover = tmp_path / "d" / ".out.qcow2.0123abcd.partial"
    leftover.parent.mkdir()
    leftover.write_bytes(b"x")
    plan = plan_clean_leftovers([str(leftover)])
    assert f"in: {tmp_path / 'd'}" in plan.describe()
