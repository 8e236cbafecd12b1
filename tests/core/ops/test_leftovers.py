"""core.ops.leftovers: each file is checked again right before it is unlinked."""

from __future__ import annotations

import os
import time
from pathlib import Path

from imagegui.core.ops.leftovers import human_age, plan_clean_leftovers


def _old(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    then = time.time() - 600
    os.utime(path, (then, then))
    return path


def test_a_file_replaced_after_the_plan_is_kept(tmp_path: Path):
    a = _old(tmp_path / ".a.qcow2.00000000.partial", b"a" * 100)
    b = _old(tmp_path / ".b.qcow2.11111111.partial", b"b" * 100)
    plan = plan_clean_leftovers([a, b])
    assert not plan.refused and [x.path for x in plan.leftovers] == [str(a), str(b)]
    b.unlink()
    _old(b, b"other file, same name")  # another inode and size now
    result = plan.run()
    assert result.changed == [str(a)]
    assert [f.code for f in result.kept] == ["changed"]
    assert not a.exists() and b.read_bytes() == b"other file, same name"


def test_dotdot_after_a_symlinked_folder_names_the_file_the_kernel_opens(tmp_path: Path):
    """``link/../x`` is ``x`` beside the link's target, as the kernel (and qemu) walk it, not
    ``x`` beside the link: the plan must name the file that would be unlinked."""
    (tmp_path / "data" / "real").mkdir(parents=True)
    (tmp_path / "vms").mkdir()
    (tmp_path / "vms" / "link").symlink_to("../data/real")
    name = ".a.qcow2.00000000.partial"
    there = _old(tmp_path / "data" / name, b"a" * 100)
    decoy = _old(tmp_path / "vms" / name, b"b" * 100)
    plan = plan_clean_leftovers([str(tmp_path / "vms" / "link" / ".." / name)])
    assert [x.path for x in plan.leftovers] == [str(there)]
    assert decoy.exists()


def test_nothing_removable_refuses_the_plan(tmp_path: Path):
    plan = plan_clean_leftovers([tmp_path / "image.qcow2.partial"])
    assert plan.refused and "not a temporary file" in plan.describe()


def test_human_age():
    assert [human_age(s) for s in (3, 600, 7200, 5 * 86400)] == ["3 s", "10 min", "2 h", "5 days"]


def test_a_file_that_is_some_images_backing_file_is_kept(tmp_path: Path, make):
    """A real base that merely has a leftover's name (renamed by hand, or a crafted name) must
    not be deleted: another image backs onto it, and qemu opens that image through it."""
    base = make.create(".base.qcow2.1234abcd.partial", "qcow2", "64M")
    make.overlay("vm.qcow2", base.name)
    then = time.time() - 7200
    os.utime(base, (then, then))
    plan = plan_clean_leftovers([base])
    assert plan.refused and plan.leftovers == [], plan.describe()
    kept = [f for f in plan.kept if f.code == "has-overlays"]
    assert kept and str(tmp_path / "vm.qcow2") in kept[0].message, plan.describe()
    assert base.exists()


def test_a_moves_leftover_folder_copy_is_removed_whole_unless_a_file_in_it_is_open(
    tmp_path: Path,
):
    from imagegui.core.ops.leftovers import examine, search_roots

    folder = tmp_path / ".tree.0123abcd.partial"
    (folder / "sub").mkdir(parents=True)
    a = _old(folder / "a.qcow2", b"a" * 5000)
    _old(folder / "sub" / "b.qcow2", b"b" * 5000)
    then = time.time() - 600
    os.utime(folder, (then, then))
    import subprocess

    # another process with a file in it open: a move still copying into it
    holder = subprocess.Popen(["sh", "-c", 'exec 3<"$1"; echo open; read x', "sh", str(a)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout.readline() == "open\n"
        kept = examine(str(folder), search_roots(str(folder)))
        assert kept.code == "in-use" and "(sh)" in kept.message
    finally:
        holder.communicate("\n", timeout=30)
    a.write_bytes(b"just written")  # written a moment ago: a move may be copying
    assert examine(str(folder), search_roots(str(folder))).code == "too-new"
    os.utime(a, (then, then))
    plan = plan_clean_leftovers([folder])
    assert not plan.refused, plan.describe()
    assert plan.run().changed == [str(folder)]
    assert not folder.exists()
