"""Nothing under the root is skipped in silence: a directory nested past PATH_MAX, one that can
be listed but not entered, one that cannot be listed - each is a note saying why."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import qemu_img
from imagebytes import qcow2_chain

from imagegui.core.chains.graph import ChainGraph
from imagegui.core.read.scan import MAX_EXTERNAL_DEPTH, scan_directory

PATH_MAX = os.pathconf("/", "PC_PATH_MAX")


def nest_past_path_max(root: Path) -> str:
    """Directories nested until the path is longer than PATH_MAX (made relative to a descriptor:
    no path that long can be passed to mkdir), with an image at the bottom; returns the
    relative path of the first directory whose full path is too long."""
    name = "d" * 200
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    first_too_long = None
    depth = 0
    try:
        while len(str(root)) + depth * (len(name) + 1) < PATH_MAX + 300:
            os.mkdir(name, dir_fd=fd)
            depth += 1
            if first_too_long is None and len(str(root)) + depth * (len(name) + 1) >= PATH_MAX:
                first_too_long = "/".join([name] * depth)
            inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
        subprocess.run(
            ["qemu-img", "create", "-q", "-f", "qcow2", "deep.qcow2", "1M"],
            cwd=f"/proc/self/fd/{fd}", check=True, pass_fds=(fd,),
        )  # fmt: skip
    finally:
        os.close(fd)
    assert first_too_long is not None
    return first_too_long


def test_directories_past_path_max_are_a_note(make, tmp_path):
    make.create("shallow.qcow2")
    too_long = nest_past_path_max(tmp_path)
    result = scan_directory(str(tmp_path))
    assert [os.path.basename(p) for p in result.images] == ["shallow.qcow2"]
    [note] = [e for e in result.errors if not e.looked_like_image]
    assert note.path == str(tmp_path / too_long)
    assert "longer than" in note.message and str(PATH_MAX) in note.message


def _python_for(uid: int) -> str | None:
    """A Python interpreter that user ``uid`` can run with this checkout and its dependencies
    importable (the 3.10 venv's interpreter lives under root's 0700 home; the system Python may
    lack networkx)."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    for python in (sys.executable, "/usr/bin/python3"):
        probe = subprocess.run(
            [setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", python, "-c",
             "import imagegui.core.read.scan, networkx"],  # what `scan` needs
            capture_output=True, env={**os.environ, "PYTHONPATH": _checkout()},
        )  # fmt: skip
        if probe.returncode == 0:
            return python
    return None


def _checkout() -> str:
    import imagegui

    return str(Path(imagegui.__file__).parent.parent)


@pytest.fixture
def world_dir():
    """A directory other users can reach (pytest's tmp_path lives under a 0700 directory)."""
    path = Path(tempfile.mkdtemp(prefix="imagegui-skips-"))
    path.chmod(0o755)
    yield path
    for sub in path.rglob("*"):
        if sub.is_dir() and not sub.is_symlink():
            sub.chmod(0o755)
    shutil.rmtree(path)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user")
def test_unreadable_directories_are_notes_for_a_non_root_user(world_dir: Path):
    """As root, permissions do not apply: the scan runs as ``nobody`` (setpriv)."""
    nobody = 65534
    python = _python_for(nobody)
    if python is None:
        pytest.skip("no Python with imagegui's dependencies that user 65534 can run")
    root = world_dir
    for image in ("listable-only/sub/a.qcow2", "closed/b.qcow2", "fine.qcow2"):
        (root / image).parent.mkdir(parents=True, exist_ok=True)
        qemu_img("create", "-q", "-f", "qcow2", root / image, "1M")
        (root / image).chmod(0o644)
    (root / "listable-only" / "sub").chmod(0o755)
    (root / "listable-only").chmod(0o644)  # names can be read, nothing inside entered
    (root / "closed").chmod(0o000)
    proc = subprocess.run(
        ["setpriv", f"--reuid={nobody}", f"--regid={nobody}", "--clear-groups", python, "-m",
         "imagegui", "scan", "--json", str(root)],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": _checkout()},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert [os.path.basename(i["path"]) for i in doc["images"]] == ["fine.qcow2"]
    notes = {os.path.relpath(n["path"], root): n["message"] for n in doc["notes"]}
    assert "permission denied" in notes["closed"].lower()
    assert "permission denied" in notes["listable-only/sub"].lower()


def test_a_chain_leaving_the_root_further_than_followed_is_a_note(make, tmp_path):
    chain = qcow2_chain(tmp_path / "outside", MAX_EXTERNAL_DEPTH + 5)
    top = make.overlay("root/top.qcow2", str(chain[-1]))
    result = scan_directory(str(tmp_path / "root"))
    assert list(result.images) == [str(top)]
    [note] = [e for e in result.errors if not e.looked_like_image]
    assert f"more than {MAX_EXTERNAL_DEPTH} backing files" in note.message
    assert note.path == str(chain[3])  # the first one not read
    graph = ChainGraph(result)
    assert graph.chain(str(top))[-1] == note.path
    assert "not read: more than" in " ".join(p.message for p in graph.problems)


def test_check_names_the_skips_too(make, tmp_path, capsys):
    from imagegui.cli import run_cli

    make.create("shallow.qcow2")
    too_long = nest_past_path_max(tmp_path)
    assert run_cli(["check", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("note ") and "longer than the system allows" in out
    assert run_cli(["check", "--json", str(tmp_path)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [n["path"] for n in doc["notes"]] == [str(tmp_path / too_long)]
