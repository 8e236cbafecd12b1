"""The Folders panel's tree: image counts per folder, empty folders from a directories-only walk."""

from __future__ import annotations

import os

from imagegui.core.folders import folder_tree
from imagegui.core.read.scan import scan_directory


def test_counts_each_folder_and_everything_below_it(make, tmp_path):
    make.create("base.qcow2")
    make.overlay("vms/web.qcow2", "../base.qcow2")
    make.overlay("vms/old/db.qcow2", "../../base.qcow2")
    make.create("vms/old/db2.qcow2")
    (tmp_path / "empty" / "deeper").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "vms")  # not followed: no second "vms"
    scan = scan_directory(str(tmp_path))
    tree = folder_tree(str(tmp_path), scan.images)
    root = tree.folders[str(tmp_path)]
    assert (root.images, root.total) == (1, 4)
    vms = tree.folders[str(tmp_path / "vms")]
    assert (vms.images, vms.total) == (1, 3)
    assert (tree.folders[str(tmp_path / "vms" / "old")].images, vms.children) == (
        2,
        [str(tmp_path / "vms" / "old")],
    )
    assert [os.path.basename(f.path) for f in tree.children(str(tmp_path))] == ["empty", "vms"]
    assert tree.folders[str(tmp_path / "empty" / "deeper")].total == 0
    assert str(tmp_path / "link") not in tree.folders
    assert not tree.truncated and tree.errors == []


def test_without_the_walk_only_the_images_folders_and_a_limit_is_said(make, tmp_path):
    make.create("a/b/c.qcow2")
    for n in range(5):
        (tmp_path / f"e{n}").mkdir()
    images = [str(tmp_path / "a" / "b" / "c.qcow2"), "/elsewhere/x.qcow2"]
    tree = folder_tree(str(tmp_path), images, walk=False)
    assert sorted(tree.folders) == [str(tmp_path), str(tmp_path / "a"), str(tmp_path / "a" / "b")]
    assert tree.folders[str(tmp_path)].total == 1  # the image outside the root is not counted
    limited = folder_tree(str(tmp_path), images, limit=3)
    assert limited.truncated
    assert str(tmp_path / "a" / "b") in limited.folders  # the images' folders are always there
