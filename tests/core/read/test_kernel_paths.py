"""``..`` in backing names and command-line paths is resolved the kernel's way (issue 8, item 1).

The oracle is qemu itself: ``qemu-img info --backing-chain`` on real images in a tree where a
directory is a symlink (``vms/clones -> ../data/clones``), so ``vms/clones/../base.qcow2`` is
``data/base.qcow2`` to the kernel and to qemu, while text normalisation says ``vms/base.qcow2``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import qemu_img
from opshelpers import create, overlay, qemu_io, sha256

from imagegui.core.chains.graph import ChainGraph
from imagegui.core.ops.commit import plan_commit
from imagegui.core.ops.flatten import plan_flatten
from imagegui.core.ops.overlay import plan_overlay
from imagegui.core.ops.rebase import plan_rebase
from imagegui.core.read import backing
from imagegui.core.read.probe import probe_image
from imagegui.core.read.scan import scan_directory


@pytest.fixture(autouse=True)
def _journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEGUI_JOURNAL", str(tmp_path / "journal.jsonl"))


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    """vms/base.qcow2 and data/base.qcow2 (two different bases), vms/clones -> ../data/clones,
    vms/clones/ov.qcow2 storing "../base.qcow2", and data/sibling.qcow2 on data/base.qcow2."""
    (tmp_path / "vms").mkdir()
    (tmp_path / "data" / "clones").mkdir(parents=True)
    os.symlink("../data/clones", tmp_path / "vms" / "clones")
    vms_base = create(tmp_path / "vms" / "base.qcow2")
    data_base = create(tmp_path / "data" / "base.qcow2")
    qemu_io(data_base, "write -P 0x22 0 1M")
    ov = tmp_path / "vms" / "clones" / "ov.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-b", "../base.qcow2", "-F", "qcow2", ov)
    qemu_io(ov, "write -P 0x33 0 64k")
    sibling = overlay(tmp_path / "data" / "sibling.qcow2", data_base)
    return {"vms_base": vms_base, "data_base": data_base, "ov": ov, "sibling": sibling}


def qemu_chain(path: str | os.PathLike) -> list[str]:
    """The files qemu opens for ``path``, top first (``filename`` as qemu reports it)."""
    out = qemu_img("info", "-U", "--backing-chain", "--output=json", path).stdout
    return [i["filename"] for i in json.loads(out)]


def test_the_tree_really_is_what_qemu_opens(tree):
    files = qemu_chain(tree["ov"])
    assert os.path.samefile(files[1], tree["data_base"])
    assert not os.path.samefile(files[1], tree["vms_base"])


def test_probe_resolves_dotdot_through_the_symlinked_directory(tree):
    info = probe_image(str(tree["ov"]))
    assert info.backing_path is not None
    assert os.path.samefile(info.backing_path, qemu_chain(tree["ov"])[1])
    assert info.backing_path == str(tree["data_base"].resolve())


def test_scan_graph_links_the_overlay_to_the_base_qemu_opens(tree, tmp_path: Path):
    graph = ChainGraph(scan_directory(str(tmp_path / "vms")))
    top = graph.resolve(str(tree["ov"]))
    assert top is not None
    base = graph.backing_of(top)
    assert os.path.samefile(base, tree["data_base"])
    assert graph.resolve(str(tree["vms_base"])) not in graph.chain(top)
    # qemu reads a base outside vms/: said so
    assert any(p.kind == "backing-outside-root" and p.path == top for p in graph.problems)


def test_commit_through_a_symlinked_directory_sees_the_shared_base(tree):
    before = sha256(tree["data_base"])
    plan = plan_commit(str(tree["ov"]))
    assert plan.base == str(tree["data_base"].resolve())  # the file qemu writes, named
    assert "shared-base" in {f.code for f in plan.blocking()}
    assert any(str(tree["sibling"]) in f.message for f in plan.blocking())
    assert sha256(tree["data_base"]) == before


def test_command_line_dotdot_is_walked_by_the_kernel(tree, tmp_path: Path):
    """``vms/clones/../base.qcow2`` on the command line is data/base.qcow2, as for qemu-img."""
    given = str(tmp_path / "vms" / "clones" / ".." / "base.qcow2")
    plan = plan_flatten(given, str(tmp_path / "out.qcow2"))
    assert plan.image == str(tree["data_base"].resolve())
    assert os.path.samefile(plan.image, qemu_chain(given)[0])


@pytest.mark.parametrize("absolute", [False, True])
def test_overlay_in_a_symlinked_directory_stores_a_name_qemu_resolves_to_the_base(
    tree, tmp_path: Path, absolute: bool
):
    new = tmp_path / "vms" / "clones" / "new.qcow2"
    plan = plan_overlay(str(tree["vms_base"]), str(new), absolute=absolute)
    assert not plan.refused, plan.describe()
    plan.run()
    files = qemu_chain(new)
    assert os.path.samefile(files[1], tree["vms_base"]), files


def test_unsafe_rebase_in_a_symlinked_directory_points_at_the_named_file(tree):
    plan = plan_rebase(str(tree["ov"]), str(tree["vms_base"]), unsafe=True)
    assert not plan.refused, plan.describe()
    plan.run()
    assert os.path.samefile(qemu_chain(tree["ov"])[1], tree["vms_base"])


def test_canonical_keeps_what_the_kernel_cannot_walk(tmp_path: Path):
    f = tmp_path / "base.qcow2"
    f.write_bytes(b"x")
    # a trailing slash makes the kernel want a directory: kept, so opening fails like qemu's
    assert backing.canonical(f"{f}/") == f"{f}/"
    assert backing.open_error(f"{f}/").startswith("Not a directory")
    # a missing directory before "..": the kernel fails, text normalisation would not
    missing = f"{tmp_path}/gone/../base.qcow2"
    assert backing.canonical(missing) == missing
    assert not os.path.exists(backing.canonical(missing))
    # a file before "..": ENOTDIR for the kernel
    through_file = f"{f}/../base.qcow2"
    assert not os.path.exists(backing.canonical(through_file))
    assert backing.canonical(f"{tmp_path}/./sub//x") == f"{tmp_path}/sub/x"


def test_a_backing_name_ending_in_a_slash_is_missing_with_qemus_reason(tmp_path: Path):
    """qemu: "Not a directory" - the image cannot be opened, so it is not healthy."""
    create(tmp_path / "base.qcow2")
    top = tmp_path / "top.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-b", "base.qcow2/", "-F", "qcow2", "-u", top, "64M")
    oracle = qemu_img("info", "--backing-chain", top, check=False)
    assert oracle.returncode != 0 and "Not a directory" in oracle.stderr
    graph = ChainGraph(scan_directory(str(tmp_path)))
    missing = [p for p in graph.problems if p.kind == "missing-backing" and p.path == str(top)]
    assert missing and "Not a directory" in missing[0].message
    plan = plan_flatten(str(top), str(tmp_path / "out.qcow2"))
    refusal = [f for f in plan.blocking() if f.code == "missing-backing"]
    assert refusal and "Not a directory" in refusal[0].message


def test_journal_lookup_by_a_dotdot_path_finds_the_file_the_kernel_opens(tree, tmp_path: Path):
    """``rebase --undo vms/clones/../x`` is about data/x, never about a vms/x beside it."""
    from imagegui.core.ops import journal

    vms_x = overlay(tmp_path / "vms" / "x.qcow2", tree["vms_base"])
    data_x = overlay(tmp_path / "data" / "x.qcow2", tree["data_base"])
    for image, base in ((vms_x, tree["vms_base"]), (data_x, tree["data_base"])):
        plan_rebase(str(image), str(base), unsafe=True).run()
    found = journal.entries(str(tmp_path / "vms" / "clones" / ".." / "x.qcow2"))
    assert [e.image for e in found] == [str(data_x)]


def test_a_root_opened_through_a_symlink_keeps_its_dotdot_backings_inside(tmp_path: Path):
    """``..`` is resolved through the real directory; that is still inside a root reached
    through a link to it, so no false "outside the root" warning."""
    real = tmp_path / "real"
    base = create(real / "base.qcow2")
    top = real / "sub" / "top.qcow2"
    top.parent.mkdir()
    qemu_img("create", "-q", "-f", "qcow2", "-b", "../base.qcow2", "-F", "qcow2", top)
    os.symlink(real, tmp_path / "link")
    graph = ChainGraph(scan_directory(str(tmp_path / "link")))
    node = graph.resolve(str(tmp_path / "link" / "sub" / "top.qcow2"))
    assert os.path.samefile(graph.backing_of(node), base)
    assert [p.kind for p in graph.problems if p.path == node] == []
