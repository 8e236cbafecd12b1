"""core.ops.trash: the freedesktop Trash through send2trash, renamed never copied, and back."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest

from imagegui.core.ops import trash as trashmod
from imagegui.core.ops.trash import (
    RestoreRefused,
    TrashUnavailable,
    locate,
    restore,
    trash,
    trash_spot,
)


def trashinfo(path: str) -> dict[str, str]:
    lines = Path(path).read_text().splitlines()
    assert lines[0] == "[Trash Info]"
    return dict(line.split("=", 1) for line in lines[1:])


def test_a_file_goes_to_the_home_trash_of_xdg_data_home_as_set_now(tmp_path: Path, trash_home):
    """send2trash reads XDG_DATA_HOME once, at import; the Trash used is the one set now."""
    f = tmp_path / "orphan.qcow2"
    f.write_bytes(os.urandom(4096))
    st = f.stat()
    spot = trash_spot(str(f))
    assert (spot.kind, spot.directory) == ("home", str(trash_home / "Trash"))
    moved = trash(str(f))
    assert not f.exists()
    assert moved.trashed == str(trash_home / "Trash" / "files" / "orphan.qcow2")
    assert moved.trashinfo == str(trash_home / "Trash" / "info" / "orphan.qcow2.trashinfo")
    assert (moved.dev, moved.ino) == (st.st_dev, st.st_ino)
    info = trashinfo(moved.trashinfo)
    assert unquote(info["Path"]) == str(f)
    assert info["DeletionDate"][:4].isdigit() and "T" in info["DeletionDate"]


def test_restore_puts_it_back_byte_identical_and_removes_the_trashinfo(tmp_path, trash_home):
    f = tmp_path / "disk.raw"
    f.write_bytes(os.urandom(1 << 20))
    copy = tmp_path / "copy"
    copy.write_bytes(f.read_bytes())
    ino = f.stat().st_ino
    moved = trash(str(f))
    assert restore(moved) == str(f)
    assert subprocess.run(["cmp", str(f), str(copy)]).returncode == 0
    assert f.stat().st_ino == ino  # renamed back, not copied
    assert not os.path.lexists(moved.trashed) and not os.path.lexists(moved.trashinfo)


def test_same_name_twice_gets_the_counter_and_is_found_by_inode(tmp_path, trash_home):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = tmp_path / "a" / "x.qcow2"
    second = tmp_path / "b" / "x.qcow2"
    first.write_bytes(b"first")
    second.write_bytes(b"second")
    one, two = trash(str(first)), trash(str(second))
    assert os.path.basename(two.trashed) == "x 1.qcow2"
    assert Path(two.trashed).read_bytes() == b"second"
    assert unquote(trashinfo(two.trashinfo)["Path"]) == str(second)
    # Renamed inside the Trash (by a file manager): found again by inode.
    os.rename(one.trashed, one.trashed + ".moved")
    found = locate(one)
    assert found is not None and found.trashed == one.trashed + ".moved"


def test_restore_refuses_when_the_name_is_taken_again(tmp_path, trash_home):
    f = tmp_path / "img.qcow2"
    f.write_bytes(b"old")
    moved = trash(str(f))
    f.write_bytes(b"new file, same name")
    with pytest.raises(RestoreRefused, match="exists again"):
        restore(moved)
    assert f.read_bytes() == b"new file, same name"
    assert Path(moved.trashed).read_bytes() == b"old"


def test_restore_refuses_a_file_changed_in_the_trash(tmp_path, trash_home):
    f = tmp_path / "img.qcow2"
    f.write_bytes(b"old")
    moved = trash(str(f))
    with open(moved.trashed, "ab") as out:
        out.write(b"more")
    with pytest.raises(RestoreRefused, match="changed in the Trash"):
        restore(moved)
    assert not f.exists()


def test_restore_refuses_when_the_trash_was_emptied(tmp_path, trash_home):
    f = tmp_path / "img.qcow2"
    f.write_bytes(b"old")
    moved = trash(str(f))
    os.unlink(moved.trashed)
    with pytest.raises(RestoreRefused, match="no longer in the Trash"):
        restore(moved)


def test_rename_noreplace_never_replaces(tmp_path: Path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("a")
    b.write_text("b")
    with pytest.raises(FileExistsError):
        trashmod.rename_noreplace(str(a), str(b))
    assert b.read_text() == "b"
    trashmod.rename_noreplace(str(a), str(tmp_path / "c"))
    assert (tmp_path / "c").read_text() == "a"


# --------------------------------------------------------------------------- another volume


def _mount_tmpfs(where: Path, *options: str) -> None:
    opts = ",".join(("size=16m", *options))
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", opts, "imagegui-test", str(where)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")


@pytest.fixture
def volume(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs mounted under tmp_path: another file system than the home Trash's."""
    if os.geteuid() != 0:
        pytest.skip("mounting a volume for the per-volume Trash needs root")
    where = tmp_path / "vol"
    where.mkdir()
    _mount_tmpfs(where)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_file_on_another_volume_goes_to_its_trash_uid_folder(volume: Path, trash_home):
    (volume / "vms").mkdir()
    f = volume / "vms" / "orphan.qcow2"
    f.write_bytes(os.urandom(8192))
    data = f.read_bytes()
    spot = trash_spot(str(f))
    own = volume / f".Trash-{os.getuid()}"
    assert (spot.kind, spot.directory, spot.topdir) == ("volume", str(own), str(volume))
    assert not own.exists()  # planning makes nothing
    moved = trash(str(f))
    assert moved.trashed == str(own / "files" / "orphan.qcow2")
    assert trashinfo(moved.trashinfo)["Path"] == "vms/orphan.qcow2"  # relative to the volume
    assert not (trash_home / "Trash").exists()  # nothing copied home
    restore(moved)
    assert f.read_bytes() == data


def test_an_administrators_sticky_trash_is_used(volume: Path, trash_home):
    shared = volume / ".Trash"
    shared.mkdir()
    shared.chmod(0o1777)
    f = volume / "img.qcow2"
    f.write_bytes(b"x")
    spot = trash_spot(str(f))
    assert spot.directory == str(shared / str(os.getuid()))
    moved = trash(str(f))
    assert moved.trashed == str(shared / str(os.getuid()) / "files" / "img.qcow2")


def test_a_read_only_volume_is_refused_saying_what_a_copy_would_cost(volume: Path, trash_home):
    f = volume / "big.raw"
    f.write_bytes(b"\1" * (1 << 20))
    subprocess.run(["mount", "-o", "remount,ro", str(volume)], check=True)
    with pytest.raises(TrashUnavailable, match=r"without copying it \(1 MiB\)"):
        trash_spot(str(f))
    assert f.exists() and not (trash_home / "Trash").exists()


def test_a_volume_trash_that_cannot_be_made_when_moving_refuses_without_copying(
    volume: Path, trash_home
):
    """The plan saw a writable volume; by the move it is read-only: refused, nothing copied."""
    f = volume / "img.raw"
    f.write_bytes(b"\1" * 8192)
    spot = trash_spot(str(f))
    subprocess.run(["mount", "-o", "remount,ro", str(volume)], check=True)
    with pytest.raises(TrashUnavailable, match="no Trash folder can be made on its volume"):
        trash(str(f), spot)
    assert f.exists() and not (trash_home / "Trash").exists()


def test_a_bind_mount_of_the_same_file_system_has_a_trash_of_its_own(tmp_path: Path, trash_home):
    """Same device as the home Trash, but another mount: the kernel refuses a rename across it
    (EXDEV), where send2trash falls back to copying. The mount's own Trash is chosen; handed
    the home Trash anyway, the move is refused and leaves no ``.trashinfo`` behind."""
    if os.geteuid() != 0:
        pytest.skip("a bind mount needs root")
    real, bound = tmp_path / "real", tmp_path / "bound"
    real.mkdir()
    bound.mkdir()
    proc = subprocess.run(["mount", "--bind", str(real), str(bound)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {proc.stderr.decode().strip()}")
    try:
        f = bound / "img.qcow2"
        f.write_bytes(b"\1" * 4096)
        assert trashmod.mount_point(str(bound)) == str(bound)
        home = trashmod.TrashSpot(str(trash_home / "Trash"), str(trash_home), "home")
        with pytest.raises(TrashUnavailable, match="different mounts"):
            trash(str(f), home)
        assert f.read_bytes() == b"\1" * 4096
        assert os.listdir(trash_home / "Trash" / "info") == []
        spot = trash_spot(str(f))
        assert (spot.kind, spot.topdir) == ("volume", str(bound))
        moved = trash(str(f))
        assert moved.trashed == str(bound / f".Trash-{os.getuid()}" / "files" / "img.qcow2")
        restore(moved)
        assert f.read_bytes() == b"\1" * 4096
    finally:
        subprocess.run(["umount", "-l", str(bound)], check=False)


def test_mount_point_reads_escaped_names(tmp_path: Path):
    info = tmp_path / "mountinfo"
    info.write_text(
        "1 0 8:1 / / rw - ext4 /dev/vda rw\n2 1 0:5 / /mnt/my\\040disk rw - tmpfs none rw\n"
    )
    assert trashmod.mount_point("/mnt/my disk/vm/x.qcow2", str(info)) == "/mnt/my disk"
    assert trashmod.mount_point("/mnt/other/x", str(info)) == "/"


def test_a_file_on_a_read_only_volume_is_refused_saying_so(volume: Path, trash_home):
    from imagegui.core.ops.delete import plan_delete

    f = volume / "img.raw"
    f.write_bytes(b"x")
    subprocess.run(["mount", "-o", "remount,ro", str(volume)], check=True)
    (refusal,) = plan_delete([f]).blocking()
    assert refusal.code == "not-writable" and "mounted read-only" in refusal.message
