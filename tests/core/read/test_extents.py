"""Images whose data lives in other files (VMDK extents, a qcow2 external data file): a missing
one is an error (qemu cannot open the image), named by path."""

from __future__ import annotations

import os

import pytest
from conftest import qemu_img

from imagegui.cli import run_cli
from imagegui.core.chains.graph import ChainGraph
from imagegui.core.read.scan import scan_directory


def missing_extents(root, image) -> list[str]:
    g = ChainGraph(scan_directory(str(root)))
    return [p.message for p in g.problems_for(str(image)) if p.kind == "missing-extent"]


@pytest.mark.parametrize(
    ("subformat", "size", "gone"),
    [
        ("monolithicFlat", "8M", "disk-flat.vmdk"),
        ("twoGbMaxExtentFlat", "5G", "disk-f002.vmdk"),
        ("twoGbMaxExtentSparse", "5G", "disk-s002.vmdk"),
    ],
)
def test_vmdk_with_a_missing_extent_is_an_error(make, tmp_path, capsys, subformat, size, gone):
    image = make.create("disk.vmdk", "vmdk", size, f"subformat={subformat}")
    assert missing_extents(tmp_path, image) == []
    os.unlink(tmp_path / gone)
    assert qemu_img("info", image, check=False).returncode != 0  # qemu cannot open it
    [message] = missing_extents(tmp_path, image)
    assert str(tmp_path / gone) in message
    assert run_cli(["check", str(tmp_path)]) == 1
    assert "missing-extent" in capsys.readouterr().out


def test_qcow2_with_its_data_file_deleted_is_an_error(make, tmp_path, capsys):
    image = make.create("q.qcow2", "qcow2", "8M", f"data_file={tmp_path / 'q.data'}")
    g = ChainGraph(scan_directory(str(tmp_path)))
    assert [p.kind for p in g.problems_for(str(image))] == ["external-data-file"]
    os.unlink(tmp_path / "q.data")
    [message] = missing_extents(tmp_path, image)
    assert str(tmp_path / "q.data") in message
    assert run_cli(["check", str(tmp_path)]) == 1


def test_plans_over_a_missing_data_file_are_refused(make, tmp_path):
    """Same class as a missing backing file: a plan that opens the chain whole (launch,
    overlay, flatten) is refused naming the data file, never 'ok to run' then a qemu error."""
    from imagegui.core.ops.flatten import plan_flatten
    from imagegui.core.ops.launch import LaunchOptions, plan_launch
    from imagegui.core.ops.overlay import plan_overlay

    make.create("d.qcow2", "qcow2", "8M", f"data_file={tmp_path / 'd.data'}")
    top = str(make.overlay("top.qcow2", "d.qcow2"))
    assert not plan_launch(top, LaunchOptions(snapshot=True, headless=True)).refused
    os.unlink(tmp_path / "d.data")
    for plan in (
        plan_launch(top, LaunchOptions(snapshot=True, headless=True)),
        plan_overlay(top, str(tmp_path / "new.qcow2")),
        plan_flatten(top, str(tmp_path / "flat.qcow2")),
    ):
        refused = [f for f in plan.blocking() if f.code == "missing-extent"]
        assert refused, plan.describe()
        assert str(tmp_path / "d.data") in refused[0].message
        assert "backing file 'd.data'" not in plan.describe()
    assert run_cli(["overlay", top, str(tmp_path / "new.qcow2")]) == 2
    assert not (tmp_path / "new.qcow2").exists()
