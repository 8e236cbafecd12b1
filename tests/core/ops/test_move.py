"""core.ops.move: moving and renaming images and folders with real qemu-img and qemu-io data;
every chain reads the same bytes afterwards and the scan finds no new problem."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import qemu_info
from opshelpers import codes, create, fake_qemu_img, qemu_io, same_content, sha256

from imagegui.core.chains.graph import ChainGraph
from imagegui.core.jobs import CancelledError, CancelToken
from imagegui.core.ops import journal
from imagegui.core.ops.move import MoveError, plan_move
from imagegui.core.ops.plan import GuardRefused
from imagegui.core.read.scan import scan_directory


@pytest.fixture(autouse=True)
def _journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "state" / "journal.jsonl"
    monkeypatch.setenv("IMAGEGUI_JOURNAL", str(path))
    return path


def img(path: Path, backing: str | None = None, fmt: str | None = "qcow2") -> Path:
    """A qcow2 image; with ``backing`` an overlay storing that name exactly (``-u``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    argv = ["qemu-img", "create", "-q", "-f", "qcow2"]
    if backing is not None:
        argv += ["-b", backing, "-u"] + (["-F", fmt] if fmt else [])
    subprocess.run([*argv, str(path), "64M"], check=True)
    return path


def stored(path: Path) -> str:
    return qemu_info(path)["backing-filename"]


def problems(root: Path) -> list[str]:
    return [f"{p.kind} {p.path}" for p in ChainGraph(scan_directory(str(root))).problems]


def files(root: Path) -> dict[str, str]:
    """Every file under ``root`` with its sha256: the oracle for "nothing changed"."""
    return {
        str(p.relative_to(root)): sha256(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and "state" not in p.parts
    }


@pytest.fixture
def three(tmp_path: Path) -> dict[str, Path]:
    """vms/base.qcow2 (0x11) with three overlays, each with data of its own: rel.qcow2 beside it
    (relative name), abs.qcow2 beside it (absolute name), clones/far.qcow2 in another folder
    (``../vms/base.qcow2``)."""
    vms = tmp_path / "vms"
    base = create(vms / "base.qcow2")
    qemu_io(base, "write -P 0x11 0 4M")
    rel = img(vms / "rel.qcow2", "base.qcow2")
    qemu_io(rel, "write -P 0x22 1M 1M")
    ab = img(vms / "abs.qcow2", str(base))
    qemu_io(ab, "write -P 0x33 2M 1M")
    far = img(tmp_path / "clones" / "far.qcow2", "../vms/base.qcow2")
    qemu_io(far, "write -P 0x44 3M 1M")
    return {"base": base, "rel": rel, "abs": ab, "far": far}


def references(tmp_path: Path, images: dict[str, Path]) -> dict[str, Path]:
    """A flat copy of what each guest sees now (``qemu-img convert``), outside ``tmp_path``'s
    scanned folders' way: the oracle for "every chain reads the same bytes"."""
    refs = tmp_path / "refs"
    refs.mkdir()
    out = {}
    for k, p in images.items():
        out[k] = refs / f"{k}.qcow2"
        subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(p), str(out[k])], check=True)
    return out


def test_moving_a_base_with_three_overlays_keeps_every_chain(tmp_path: Path, three, _journal):
    refs = references(tmp_path, three)
    dest = tmp_path / "store" / "golden"
    dest.mkdir(parents=True)
    plan = plan_move([str(three["base"])], str(dest))
    assert not plan.refused, plan.describe()
    assert not plan.cross_fs
    assert len(plan.rewrites) == 3
    result = plan.run()
    moved = dest / "base.qcow2"
    assert moved.exists() and not three["base"].exists()
    assert result.moved == [(str(three["base"]), str(moved))]
    # Each pointer kept its form and its format, recomputed from the overlay's own folder.
    assert stored(three["rel"]) == "../store/golden/base.qcow2"
    assert stored(three["abs"]) == str(moved)
    assert stored(three["far"]) == "../store/golden/base.qcow2"
    for k in ("rel", "abs", "far"):
        assert qemu_info(three[k])["backing-filename-format"] == "qcow2"
    assert problems(tmp_path) == []
    for k, p in {**three, "base": moved}.items():
        assert same_content(p, refs[k]), k
    # Journalled like rebases: each can be undone by hand.
    entries = journal.entries()
    assert {e.image for e in entries} == {str(three[k]) for k in ("rel", "abs", "far")}
    assert {e.old_backing for e in entries} == {
        "base.qcow2",
        str(three["base"]),
        "../vms/base.qcow2",
    }
    assert all(e.mode == "unsafe" for e in entries)


def test_renaming_in_place(tmp_path: Path, three):
    refs = references(tmp_path, three)
    new = tmp_path / "vms" / "golden-2024.qcow2"
    plan_move([str(three["base"])], str(new)).run()
    assert stored(three["rel"]) == "golden-2024.qcow2"
    assert stored(three["abs"]) == str(new)
    assert stored(three["far"]) == "../vms/golden-2024.qcow2"
    assert problems(tmp_path) == []
    for k in ("rel", "abs", "far"):
        assert same_content(three[k], refs[k]), k


def test_a_moved_overlay_keeps_its_own_relative_pointer_leading_home(tmp_path: Path, three):
    refs = references(tmp_path, three)
    elsewhere = tmp_path / "elsewhere" / "deeper"
    elsewhere.mkdir(parents=True)
    plan = plan_move([str(three["rel"]), str(three["abs"])], str(elsewhere))
    rewrites = {os.path.basename(w.image): (w.old_name, w.new_name) for w in plan.rewrites}
    # The absolute name still leads to the base from anywhere: not touched.
    assert rewrites == {"rel.qcow2": ("base.qcow2", "../../vms/base.qcow2")}
    plan.run()
    assert stored(elsewhere / "rel.qcow2") == "../../vms/base.qcow2"
    assert stored(elsewhere / "abs.qcow2") == str(three["base"])
    assert problems(tmp_path) == []
    assert same_content(elsewhere / "rel.qcow2", refs["rel"])
    assert same_content(elsewhere / "abs.qcow2", refs["abs"])


def test_moving_a_whole_folder_keeps_the_links_inside_and_fixes_those_across(tmp_path: Path, three):
    # vms/ also holds an overlay of a base outside it (relative, ../shared/os.qcow2).
    os_base = create(tmp_path / "shared" / "os.qcow2")
    qemu_io(os_base, "write -P 0x55 0 1M")
    outward = img(tmp_path / "vms" / "sub" / "app.qcow2", "../../shared/os.qcow2")
    qemu_io(outward, "write -P 0x66 1M 1M")
    images = {**three, "outward": outward}
    refs = references(tmp_path, images)
    before_rel = (tmp_path / "vms" / "rel.qcow2").read_bytes()
    dest = tmp_path / "archive" / "2024"
    dest.mkdir(parents=True)
    plan = plan_move([str(tmp_path / "vms")], str(dest))
    assert not plan.refused, plan.describe()
    touched = {os.path.relpath(w.image, tmp_path) for w in plan.rewrites}
    # rel.qcow2's name works from the new place as it is; the absolute one, the one from
    # outside and the one pointing out are rewritten.
    assert touched == {"vms/abs.qcow2", "clones/far.qcow2", "vms/sub/app.qcow2"}
    assert any("keep working as stored" in c for c in plan.changes)
    plan.run()
    new = dest / "vms"
    assert (new / "rel.qcow2").read_bytes() == before_rel  # not even rewritten
    assert stored(new / "abs.qcow2") == str(new / "base.qcow2")
    assert stored(three["far"]) == "../archive/2024/vms/base.qcow2"
    assert stored(new / "sub" / "app.qcow2") == "../../../../shared/os.qcow2"
    assert problems(tmp_path) == []
    moved = {
        "base": new / "base.qcow2",
        "rel": new / "rel.qcow2",
        "abs": new / "abs.qcow2",
        "far": three["far"],
        "outward": new / "sub" / "app.qcow2",
    }
    for k, p in moved.items():
        assert same_content(p, refs[k]), k


def test_refusals_change_nothing(tmp_path: Path, three):
    before = files(tmp_path)
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "base.qcow2").write_bytes(b"someone else's")
    plan = plan_move([str(three["base"])], str(dest))
    assert codes(plan) == {"target-exists"}
    assert "already exists" in plan.describe()
    with pytest.raises(GuardRefused):
        plan.run()
    # A rename onto an existing file likewise.
    assert codes(plan_move([str(three["base"])], str(three["rel"]))) == {"target-exists"}
    # Several sources need an existing folder.
    assert "not-a-folder" in codes(plan_move([str(three["rel"]), str(three["abs"])], "/nope/x"))
    # A dependent that cannot be rewritten refuses the whole plan up front.
    os.chmod(three["far"], 0o444)
    try:
        plan = plan_move([str(three["base"])], str(tmp_path / "renamed.qcow2"))
        assert "read-only" in codes(plan)
        assert str(three["far"]) in plan.describe()
        with pytest.raises(GuardRefused):
            plan.run()
    finally:
        os.chmod(three["far"], 0o644)
    assert files(tmp_path) == {**before, "dest/base.qcow2": sha256(dest / "base.qcow2")}


def test_a_dependent_that_is_not_qcow2_refuses_the_move(tmp_path: Path):
    base = create(tmp_path / "base.vmdk", fmt="vmdk")
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "vmdk", "-b", "base.vmdk", "-F", "vmdk",
         str(tmp_path / "child.vmdk")],
        check=True,
    )  # fmt: skip
    plan = plan_move([str(base)], str(tmp_path / "moved.vmdk"))
    assert "format-cannot-rebase" in codes(plan)
    assert base.exists()


def test_a_failure_half_way_undoes_what_was_done(tmp_path: Path, three, _journal):
    """The second pointer rewrite fails: the first is put back, nothing is renamed."""
    before = {k: stored(p) for k, p in three.items() if k != "base"}
    real = shutil.which("qemu-img")
    fake = fake_qemu_img(
        tmp_path,
        f'case "$*" in *"-u -b ../store"*"rel.qcow2") echo "qemu-img: boom" >&2; exit 1;; esac\n'
        f'exec {real} "$@"',
    )
    dest = tmp_path / "store"
    dest.mkdir()
    plan = plan_move([str(three["base"])], str(dest), qemu_img=str(fake))
    # Rewritten in path order: clones/far.qcow2, vms/abs.qcow2, then vms/rel.qcow2 fails.
    assert [os.path.basename(w.image) for w in plan.rewrites] == [
        "far.qcow2", "abs.qcow2", "rel.qcow2",
    ]  # fmt: skip
    with pytest.raises(MoveError) as exc:
        plan.run()
    assert "boom" in str(exc.value) and "every backing pointer as it was" in str(exc.value)
    assert three["base"].exists() and not (dest / "base.qcow2").exists()
    assert {k: stored(p) for k, p in three.items() if k != "base"} == before
    assert problems(tmp_path) == []
    # The journal says what was done and undone.
    done = [e for e in journal.entries() if not e.undo_of]
    undone = [e for e in journal.entries() if e.undo_of]
    assert len(undone) == len(done) == 2


def test_cancel_before_the_renames_leaves_everything_as_it_was(tmp_path: Path, three):
    before = files(tmp_path)
    token = CancelToken()

    def cancel_at_first_step(fraction: float) -> None:
        token.cancel()

    dest = tmp_path / "store"
    dest.mkdir()
    with pytest.raises(CancelledError) as exc:
        plan_move([str(three["base"])], str(dest)).run(cancel_at_first_step, token)
    assert "nothing was moved" in str(exc.value)
    after = files(tmp_path)
    # Headers rewritten and rewritten back: the same names, the same bytes the guest sees.
    assert set(after) == set(before)
    assert problems(tmp_path) == []
    assert stored(three["rel"]) == "base.qcow2" and stored(three["abs"]) == str(three["base"])


def test_dry_run_plan_lists_commands_in_order(tmp_path: Path, three):
    before = files(tmp_path)
    plan = plan_move([str(three["base"])], str(tmp_path / "vms" / "b2.qcow2"))
    lines = plan.command_lines()
    assert lines[-1].startswith("mv -n -T -- ")
    assert all(line.startswith("qemu-img rebase -f qcow2 -u -b ") for line in lines[:-1])
    assert files(tmp_path) == before


# --------------------------------------------------------------------------- across file systems


def test_across_file_systems_copies_verifies_then_removes_the_source(
    tmp_path: Path, three, other_fs: Path
):
    qemu_io(three["base"], "write -P 0x77 8M 8M")  # several chunks of data, and a hole
    refs = references(tmp_path, three)
    mode = 0o640
    os.chmod(three["base"], mode)
    mtime = os.stat(three["base"]).st_mtime_ns
    plan = plan_move([str(three["base"])], str(other_fs))
    assert plan.cross_fs and not plan.refused, plan.describe()
    assert [c[0] for c in plan.commands][:2] == ["cp", "cmp"]
    assert plan.commands[-1] == ["rm", "--", str(three["base"])]
    assert any(f.code == "space" for f in plan.findings)
    seen: list[float] = []
    plan.run(seen.append)
    moved = other_fs / "base.qcow2"
    assert moved.exists() and not three["base"].exists()
    assert os.listdir(other_fs) == ["base.qcow2"]  # no temporary file left
    st = os.stat(moved)
    assert (st.st_mode & 0o777, st.st_mtime_ns) == (mode, mtime)
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) > 3
    assert stored(three["rel"]) == os.path.relpath(moved, three["rel"].parent)
    assert stored(three["abs"]) == str(moved)
    assert problems(tmp_path / "vms") == [
        f"backing-outside-root {three['abs']}",
        f"backing-outside-root {three['rel']}",
    ]  # the base now lies outside vms/ (a warning of where it is, not a broken chain)
    for k, p in {**three, "base": moved}.items():
        assert same_content(p, refs[k]), k


def test_a_cancelled_copy_leaves_the_source_and_no_partial_copy(
    tmp_path: Path, three, other_fs: Path
):
    qemu_io(three["base"], "write -P 0x77 8M 8M")
    before = files(tmp_path)
    token = CancelToken()
    calls: list[float] = []

    def cancel_mid_copy(fraction: float) -> None:
        calls.append(fraction)
        token.cancel()

    plan = plan_move([str(three["base"])], str(other_fs))
    partial = plan.relocations[0].partial
    with pytest.raises(CancelledError) as exc:
        plan.run(cancel_mid_copy, token)
    assert calls and calls[0] < 0.5  # it was copying when cancelled
    assert "untouched, no copy left" in str(exc.value)
    assert os.listdir(other_fs) == [] and not os.path.exists(partial)
    assert files(tmp_path) == before
    assert problems(tmp_path) == []


def test_a_cancel_after_the_copy_took_its_name_removes_the_copy_and_restores_pointers(
    tmp_path: Path, three, other_fs: Path
):
    before = files(tmp_path)
    token = CancelToken()

    def cancel_when_named(fraction: float) -> None:
        if (other_fs / "base.qcow2").exists():  # the dependents' rewrites come next
            token.cancel()

    with pytest.raises(CancelledError) as exc:
        plan_move([str(three["base"])], str(other_fs)).run(cancel_when_named, token)
    assert token.cancelled
    assert "untouched, no copy left" in str(exc.value)
    assert os.listdir(other_fs) == []
    after = files(tmp_path)
    assert set(after) == set(before) and after["vms/base.qcow2"] == before["vms/base.qcow2"]
    assert stored(three["rel"]) == "base.qcow2" and stored(three["abs"]) == str(three["base"])
    assert problems(tmp_path) == []


def test_a_whole_folder_across_file_systems_keeps_every_chain(
    tmp_path: Path, three, other_fs: Path
):
    qemu_io(three["base"], "write -P 0x77 8M 4M")
    os_base = create(tmp_path / "shared" / "os.qcow2")
    outward = img(tmp_path / "vms" / "sub" / "app.qcow2", "../../shared/os.qcow2")
    qemu_io(outward, "write -P 0x66 1M 1M")
    os.symlink("base.qcow2", tmp_path / "vms" / "current")  # a link travels as a link
    os.chmod(tmp_path / "vms" / "sub", 0o750)
    images = {**three, "outward": outward, "os": os_base}
    refs = references(tmp_path, images)
    plan = plan_move([str(tmp_path / "vms")], str(other_fs))
    assert plan.cross_fs and not plan.refused, plan.describe()
    assert plan.commands[0][:2] == ["cp", "-a"] and plan.commands[-1][:2] == ["rm", "-r"]
    touched = {os.path.relpath(w.image, tmp_path) for w in plan.rewrites}
    assert touched == {"vms/abs.qcow2", "clones/far.qcow2", "vms/sub/app.qcow2"}
    plan.run()
    new = other_fs / "vms"
    assert not (tmp_path / "vms").exists() and os.listdir(other_fs) == ["vms"]
    assert os.readlink(new / "current") == "base.qcow2"
    assert os.stat(new / "sub").st_mode & 0o777 == 0o750
    assert stored(new / "rel.qcow2") == "base.qcow2"  # untouched: the link inside still works
    assert stored(new / "abs.qcow2") == str(new / "base.qcow2")
    assert stored(new / "sub" / "app.qcow2") == os.path.relpath(os_base, new / "sub")
    assert stored(three["far"]) == os.path.relpath(new / "base.qcow2", three["far"].parent)
    assert problems(new) == [f"backing-outside-root {new / 'sub' / 'app.qcow2'}"]
    # (Only where the second file system lies outside tmp_path is far.qcow2's base outside.)
    assert all(p.startswith("backing-outside-root ") for p in problems(tmp_path))
    moved = {
        "base": new / "base.qcow2",
        "rel": new / "rel.qcow2",
        "abs": new / "abs.qcow2",
        "far": three["far"],
        "outward": new / "sub" / "app.qcow2",
        "os": os_base,
    }
    for k, p in moved.items():
        assert same_content(p, refs[k]), k


def test_a_cancelled_folder_copy_leaves_the_folder_and_no_partial_copy(
    tmp_path: Path, three, other_fs: Path
):
    qemu_io(three["base"], "write -P 0x77 8M 8M")
    before = files(tmp_path)
    token = CancelToken()

    def cancel_mid_copy(fraction: float) -> None:
        if fraction > 0.1:
            token.cancel()

    with pytest.raises(CancelledError) as exc:
        plan_move([str(tmp_path / "vms")], str(other_fs)).run(cancel_mid_copy, token)
    assert "untouched, no copy left" in str(exc.value)
    assert os.listdir(other_fs) == []
    assert files(tmp_path) == before
    assert problems(tmp_path) == []


# --------------------------------------------------------------------------- in use


@pytest.mark.slow
def test_images_a_running_vm_uses_are_not_moved(tmp_path: Path, three):
    """A real TCG qemu-system-x86_64 runs rel.qcow2: neither it nor its base moves, and the
    refusal names the VM."""
    from imagegui.core.ops.launch import LaunchOptions, plan_launch

    before = files(tmp_path)
    vm = plan_launch(str(three["rel"]), LaunchOptions(memory=64, accel="tcg")).run().vm
    try:
        dest = tmp_path / "store"
        dest.mkdir()
        for src, what in ((three["base"], "a backing file of a running VM"), (three["rel"], "")):
            plan = plan_move([str(src)], str(dest))
            refusals = [f for f in plan.blocking() if f.code == "in-use"]
            assert refusals, plan.describe()
            assert f"(PID {vm.pid}, qemu-system-x86_64)" in refusals[0].message
            assert what in refusals[0].message
            with pytest.raises(GuardRefused):
                plan.run()
        assert src.exists() and os.listdir(dest) == []
        # relink keeps the image the VM runs as it is and rewrites the others.
        from imagegui.core.ops.relink import plan_relink

        plan = plan_relink([str(tmp_path / "vms"), str(tmp_path / "clones")], absolute=True)
        assert [f.code for f in plan.kept] == ["in-use"] and str(three["rel"]) in plan.describe()
        assert [r.image for r in plan.relinks] == [str(three["far"])]
    finally:
        vm.stop(timeout=1)
    after = files(tmp_path)
    assert {k: v for k, v in after.items() if k != "vms/rel.qcow2"} == {
        k: v for k, v in before.items() if k != "vms/rel.qcow2"
    }  # the VM itself may have written its own disk
    with contextlib.suppress(FileNotFoundError):
        os.rmdir(tmp_path / "store")


def test_an_unrecorded_backing_format_is_recorded_by_the_rewrite(tmp_path: Path, three):
    from imagegui.core.demo import drop_backing_format

    drop_backing_format(str(three["rel"]))  # as an image made before -F existed
    assert "backing-filename-format" not in qemu_info(three["rel"])
    plan = plan_move([str(three["base"])], str(tmp_path / "vms" / "b2.qcow2"))
    assert any(f.code == "format-recorded" for f in plan.findings)
    plan.run()
    info = qemu_info(three["rel"])
    assert (info["backing-filename"], info["backing-filename-format"]) == ("b2.qcow2", "qcow2")
    assert problems(tmp_path) == []  # its no-backing-format warning is gone, none is new
