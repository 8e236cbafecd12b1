"""``plan_options``: the shared options of the writing commands become the same plan keywords
for every command, and only those the command defines."""

from __future__ import annotations

import inspect

import pytest

from imagegui.cli import build_parser
from imagegui.cli.ops_cmds import plan_options
from imagegui.core.ops.commit import plan_commit
from imagegui.core.ops.convert import plan_convert
from imagegui.core.ops.move import plan_move
from imagegui.core.ops.newimage import plan_new
from imagegui.core.ops.relink import plan_relink
from imagegui.core.ops.resize import plan_resize
from imagegui.core.ops.snapshot import plan_snapshot


def parse(*argv: str):
    return build_parser().parse_args(list(argv))


def test_every_shared_option_becomes_its_plan_keyword(monkeypatch):
    monkeypatch.setenv("IMAGEGUI_QEMU_IMG", "/opt/qemu/bin/qemu-img")
    args = parse(
        "resize", "a.qcow2", "+1G", "--root", "/r1", "--root", "/r2", "--allow-file", "/f",
        "--force", "--connect", "test:///default", "--connect", "test:///default",
    )  # fmt: skip
    got = plan_options(args)
    assert got["roots"] == ("/r1", "/r2")
    assert got["allow"] == ("/f",)
    assert got["force"] is True
    assert got["qemu_img"] == "/opt/qemu/bin/qemu-img"
    assert got["domains"].uris == ("test:///default",)  # repeated once


def test_only_the_options_a_command_defines_and_skip_drops_keywords(monkeypatch):
    monkeypatch.delenv("IMAGEGUI_QEMU_IMG", raising=False)
    new = parse("new", "a.qcow2", "1G")
    assert plan_options(new) == {"qemu_img": "", "allow": ()}
    assert plan_options(new, skip=("allow",)) == {"qemu_img": ""}
    relink = parse("relink", "dir", "--relative")
    assert set(plan_options(relink)) == {"qemu_img", "force", "domains"}
    assert plan_options(relink)["domains"].uris is None  # none named: the quiet defaults


@pytest.mark.parametrize(
    ("argv", "planner", "skip"),
    [
        (("resize", "a", "1G"), plan_resize, ()),
        (("snapshot", "a", "create", "s"), plan_snapshot, ()),
        (("convert", "a", "b"), plan_convert, ()),
        (("new", "a", "1G"), plan_new, ("allow",)),
        (("commit", "a"), plan_commit, ()),
        (("move", "a", "b"), plan_move, ()),
        (("relink", "a", "--absolute"), plan_relink, ()),
    ],
)
def test_each_command_passes_only_keywords_its_planner_takes(argv, planner, skip):
    """A keyword the planner lacks would be a TypeError at run time: an option defined on the
    command line that its plan cannot take."""
    taken = set(inspect.signature(planner).parameters)
    assert set(plan_options(parse(*argv), skip=skip)) <= taken
