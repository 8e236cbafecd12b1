"""core.ops.flatten: the whole chain into one new qcow2, never over an existing file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from opshelpers import (
    big_chain,
    chain,
    codes,
    same_content,
    sha256,
)

from imagegui.core.jobs import CancelledError, CancelToken
from imagegui.core.ops import guards
from imagegui.core.ops.flatten import plan_flatten
from imagegui.core.ops.newfile import link_no_replace
from imagegui.core.ops.plan import GuardRefused
from imagegui.core.read.probe import probe_image


@pytest.fixture(autouse=True)
def _journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "state" / "journal.jsonl"
    monkeypatch.setenv("IMAGEGUI_JOURNAL", str(path))
    return path


def test_flatten_output_equal_and_independent(tmp_path: Path):
    base, top = chain(tmp_path)
    out = tmp_path / "flat.qcow2"
    plan = plan_flatten(str(top), str(out))
    assert plan.commands[0][:3] == ["qemu-img", "measure", "--output=json"]
    partial = plan.commands[1][-1]
    assert os.path.dirname(partial) == str(tmp_path) and partial != str(out)
    assert plan.required > 0
    plan.run()
    assert same_content(top, out)
    info = probe_image(str(out))
    assert info.format == "qcow2" and info.backing_file is None
    assert not os.path.exists(partial)


def test_flatten_never_touches_existing_out(tmp_path: Path):
    base, top = chain(tmp_path)
    out = tmp_path / "out.qcow2"
    out.write_bytes(b"keep me")
    with pytest.raises(GuardRefused, match="already exists"):
        plan_flatten(str(top), str(out)).run()
    assert out.read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")) == []


def test_flatten_refuses_without_free_space(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    _, top = chain(tmp_path)

    class Tiny:
        f_bavail, f_frsize = 10, 4096

    monkeypatch.setattr(guards.os, "statvfs", lambda _: Tiny)
    plan = plan_flatten(str(top), str(tmp_path / "o.qcow2"))
    assert codes(plan) == {"no-space"}
    assert "only 40 KiB is free" in plan.blocking()[0].message


def test_link_no_replace_refuses_a_target_that_appeared(tmp_path: Path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.write_bytes(b"new")
    dst.write_bytes(b"old")
    with pytest.raises(GuardRefused):
        link_no_replace(str(src), str(dst))
    assert dst.read_bytes() == b"old"


@pytest.mark.slow
def test_flatten_cancelled_midway_leaves_nothing(tmp_path: Path):
    base, top = big_chain(tmp_path / "f", mib=256)
    out = tmp_path / "f" / "flat.qcow2"
    plan = plan_flatten(str(top), str(out))
    token = CancelToken()
    seen: list[float] = []

    def progress(fraction: float) -> None:
        seen.append(fraction)
        token.cancel()

    before = {p: sha256(p) for p in (base, top)}
    with pytest.raises(CancelledError, match="no file was created"):
        plan.run(progress, token)
    assert seen[0] < 1.0
    assert sorted(os.listdir(tmp_path / "f")) == ["base.qcow2", "top.qcow2"]
    assert {p: sha256(p) for p in (base, top)} == before
