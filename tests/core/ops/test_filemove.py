"""core.ops.filemove: a rename that never replaces (files and folders), and the verified copy
across file systems (holes kept, read back and compared)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imagegui.core.jobs import CancelledError, CancelToken
from imagegui.core.ops import filemove
from imagegui.core.ops.filemove import (
    CopyError,
    copy_tree,
    copy_verified,
    data_bytes,
    rename_no_replace,
    tree_problem,
    tree_stamps,
)
from imagegui.core.ops.plan import GuardRefused


def test_rename_never_replaces_a_file_or_an_empty_folder(tmp_path: Path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("a")
    b.write_text("b")
    with pytest.raises(GuardRefused) as exc:
        rename_no_replace(str(a), str(b))
    assert exc.value.findings[0].code == "target-exists"
    assert (a.read_text(), b.read_text()) == ("a", "b")
    # os.rename would silently replace an empty folder with another one.
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "inner").mkdir(parents=True)
    dst.mkdir()
    with pytest.raises(GuardRefused):
        rename_no_replace(str(src), str(dst))
    assert (src / "inner").is_dir() and not any(dst.iterdir())
    rename_no_replace(str(src), str(tmp_path / "moved"))
    assert (tmp_path / "moved" / "inner").is_dir() and not src.exists()


def sparse(path: Path, size: int, data: dict[int, bytes]) -> Path:
    with open(path, "wb") as f:
        f.truncate(size)
        for off, chunk in data.items():
            f.seek(off)
            f.write(chunk)
    return path


def test_copy_keeps_holes_and_every_byte(tmp_path: Path):
    src = sparse(
        tmp_path / "src.img",
        64 << 20,
        {0: b"\x11" * 4096, 10 << 20: os.urandom(3 << 20), (64 << 20) - 5: b"tail!"},
    )
    dst = tmp_path / "dst.img"
    dst.touch()
    counted: list[int] = []
    copy_verified(str(src), str(dst), counted.append)
    assert dst.read_bytes() == src.read_bytes()
    assert os.stat(dst).st_blocks * 512 < 8 << 20  # the 60 MiB of holes stayed holes
    assert sum(counted) == 2 * data_bytes(str(src))  # copied, then compared


def test_a_copy_that_does_not_read_back_the_same_is_refused(tmp_path: Path, monkeypatch):
    src = sparse(tmp_path / "src.img", 4 << 20, {0: os.urandom(2 << 20)})
    dst = tmp_path / "dst.img"
    dst.touch()
    real_pwrite = os.pwrite

    def flip_a_byte(fd: int, data: bytes, offset: int) -> int:
        return real_pwrite(fd, b"\0" + data[1:], offset)

    monkeypatch.setattr(filemove.os, "pwrite", flip_a_byte)
    with pytest.raises(CopyError, match="does not read back the same bytes"):
        copy_verified(str(src), str(dst), lambda n: None)


def test_a_cancel_stops_the_copy_between_chunks(tmp_path: Path):
    src = sparse(tmp_path / "src.img", 8 << 20, {0: os.urandom(8 << 20)})
    dst = tmp_path / "dst.img"
    dst.touch()
    token = CancelToken()
    seen: list[int] = []

    def step(n: int) -> None:
        seen.append(n)
        token.cancel()

    with pytest.raises(CancelledError):
        copy_verified(str(src), str(dst), step, token)
    assert len(seen) == 1


def test_copy_tree_keeps_links_modes_and_bytes_and_names_what_it_cannot_copy(tmp_path: Path):
    src = tmp_path / "src"
    (src / "ro").mkdir(parents=True)
    sparse(src / "ro" / "disk.img", 4 << 20, {1 << 20: os.urandom(1 << 20)})
    os.chmod(src / "ro" / "disk.img", 0o440)
    os.chmod(src / "ro", 0o550)  # a read-only folder is still filled
    os.symlink("ro/disk.img", src / "link")
    try:
        assert tree_problem(str(src)) is None
        before = tree_stamps(str(src))
        copy_tree(str(src), str(tmp_path / "dst"), lambda n: None)
        dst = tmp_path / "dst"
        assert os.readlink(dst / "link") == "ro/disk.img"
        assert (dst / "ro" / "disk.img").read_bytes() == (src / "ro" / "disk.img").read_bytes()
        assert os.stat(dst / "ro").st_mode & 0o777 == 0o550
        assert os.stat(dst / "ro" / "disk.img").st_mode & 0o777 == 0o440
        assert (
            os.stat(dst / "ro" / "disk.img").st_mtime_ns
            == os.stat(src / "ro" / "disk.img").st_mtime_ns
        )
        assert tree_stamps(str(src)) == before  # the source was only read
    finally:
        os.chmod(src / "ro", 0o750)
        if (tmp_path / "dst" / "ro").exists():
            os.chmod(tmp_path / "dst" / "ro", 0o750)
    os.mkfifo(src / "pipe")
    assert tree_problem(str(src)) == f"{src / 'pipe'} is not a file, a folder or a link"
    with pytest.raises(CopyError):
        copy_tree(str(src), str(tmp_path / "dst2"), lambda n: None)
