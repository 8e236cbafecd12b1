"""One identity per file, whatever its name, and one place that builds it."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import imagegui
from imagegui.core.read.fileid import file_id, stat_id


def test_every_name_of_a_file_has_its_id(tmp_path: Path):
    (tmp_path / "d").mkdir()
    img = tmp_path / "d" / "a.img"
    img.write_bytes(b"x")
    os.link(img, tmp_path / "hard.img")
    (tmp_path / "sym.img").symlink_to("d/a.img")
    ident = file_id(str(img))
    assert ident is not None
    names = [tmp_path / "hard.img", tmp_path / "sym.img", tmp_path / "d" / ".." / "d" / "a.img"]
    assert {file_id(str(p)) for p in names} == {ident}
    fd = os.open(img, os.O_RDONLY)
    try:
        assert stat_id(os.fstat(fd)) == ident  # an open file: the same id as its name's
    finally:
        os.close(fd)
    other = tmp_path / "b.img"
    other.write_bytes(b"x")
    assert file_id(str(other)) != ident


def test_a_name_that_leads_nowhere_has_no_id(tmp_path: Path):
    (tmp_path / "dangling").symlink_to("gone")
    assert file_id(str(tmp_path / "gone")) is None
    assert file_id(str(tmp_path / "dangling")) is None


def test_no_module_builds_the_id_itself():
    """``(st.st_dev, st.st_ino)`` is built by core/read/fileid only, so every caller compares
    the same thing (a stamp that also holds size and mtime is another matter)."""
    root = Path(imagegui.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        if path == root / "core" / "read" / "fileid.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Tuple)
                and len(node.elts) == 2
                and all(isinstance(e, ast.Attribute) for e in node.elts)
                and [e.attr for e in node.elts] == ["st_dev", "st_ino"]  # type: ignore[attr-defined]
            ):
                found.append(f"{path.relative_to(root)}:{node.lineno}")
    assert found == []
