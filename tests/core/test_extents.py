"""Images whose data lives in other files (VMDK extents, a qcow2 external data file): a missing
one is an error (qemu cannot open the image), named by path."""

from __future__ import annotations

import os

import pytest
from conftest import qemu_img

from imagegui.cli import run_cli
from imagegui.core.graph import ChainGraph
from imagegui.core.scan import scan_directory


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
