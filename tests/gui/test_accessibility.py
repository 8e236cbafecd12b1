"""The window as a screen reader reads it: the real program on a real X server (Xvfb), with Qt's
accessibility bridge on, read over AT-SPI from another process (Debian's python3-pyatspi) the
way Orca would. Every control must be findable by role and have a name worth reading, and the
custom-painted graph must say what is selected.

The run happens in ``tests/gui/a11y/session.py`` under ``dbus-run-session`` (a private session
bus, so the test neither needs nor touches a desktop's bus); this file only judges the trees it
reports. Skipped, with the reason, only when the bus or the AT-SPI registry cannot start here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SESSION = Path(__file__).with_name("a11y") / "session.py"

#: Roles of the things a user operates: each needs a name that says what it is for.
CONTROL_ROLES = {
    "push button",
    "toggle button",
    "check box",
    "radio button",
    "text",
    "password text",
    "combo box",
    "spin button",
    "slider",
    "tree",
    "tree table",
    "table",
    "list",
    "page tab",
    "progress bar",
}


def _require(tool: str, package: str) -> None:
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} is not installed (Debian package {package}; scripts/bootstrap.sh)")


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two chains: debian.qcow2 <- web01.qcow2 is whole; base.qcow2 <- mid.qcow2 <- web06.qcow2
    lost its base, so web06.qcow2 is unusable because of something below it."""
    from tests.conftest import ImageMaker

    for tool, package in (
        ("dbus-run-session", "dbus"),
        ("dbus-send", "dbus"),
        ("Xvfb", "xvfb"),
        ("xdotool", "xdotool"),
    ):
        _require(tool, package)
    pyatspi = subprocess.run(["/usr/bin/python3", "-c", "import pyatspi"], capture_output=True)
    if pyatspi.returncode != 0:
        pytest.fail("Debian's python3-pyatspi is not installed (scripts/bootstrap.sh)")
    bus = subprocess.run(["dbus-run-session", "--", "true"], capture_output=True, text=True)
    if bus.returncode != 0:
        pytest.skip(f"no D-Bus session bus can start here: {bus.stderr.strip()}")

    root = tmp_path_factory.mktemp("a11y")
    make = ImageMaker(root)
    make.create("debian.qcow2")
    make.overlay("web01.qcow2", "debian.qcow2")
    make.create("base.qcow2")
    make.overlay("mid.qcow2", "base.qcow2")
    make.overlay("web06.qcow2", "mid.qcow2")
    (root / "base.qcow2").unlink()
    out = root / "tree.json"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[2]))
    run = subprocess.run(
        ["dbus-run-session", "--", sys.executable, str(SESSION), str(root),
         "--describe", "web06.qcow2", "--overlay-of", "web01.qcow2", "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    if run.returncode == 77:
        pytest.skip(run.stderr.strip().splitlines()[-1])
    assert run.returncode == 0, run.stderr[-20_000:]
    return json.loads(out.read_text()) | {"root": root.name}


def subtree(nodes: list[dict], role: str, name: str) -> list[dict]:
    """The accessible with ``role`` and ``name`` and everything below it."""
    for i, n in enumerate(nodes):
        if n["role"] == role and n["name"] == name:
            end = i + 1
            while end < len(nodes) and nodes[end]["depth"] > n["depth"]:
                end += 1
            return nodes[i:end]
    found = sorted({(n["role"], n["name"]) for n in nodes if n["name"]})
    raise AssertionError(f"no {role} named {name!r}; named accessibles: {found}")


def find(nodes: list[dict], role: str | set, name: str) -> dict:
    roles = {role} if isinstance(role, str) else role
    hits = [n for n in nodes if n["role"] in roles and n["name"] == name]
    assert hits, f"no {role} named {name!r}"
    return hits[0]


def unnamed_controls(nodes: list[dict]) -> list[str]:
    return [
        f"{n['role']} (description {n['description']!r}, states {n['states']})"
        for n in nodes
        if n["role"] in CONTROL_ROLES and not n["name"].strip()
    ]


def main_window(nodes: list[dict]) -> list[dict]:
    frames = [n for n in nodes if n["role"] == "frame" and n["name"].endswith("— imagegui")]
    assert frames, "no main window (a frame titled '… — imagegui')"
    return subtree(nodes, "frame", frames[0]["name"])


def test_main_window_parts_found_by_role_and_name(trees):
    win = main_window(trees["main"])
    assert win[0]["name"].startswith(f"{trees['root']} — ")
    chains = find(win, {"tree table", "tree"}, "Chains list")
    assert chains["description"], "the chains list says nothing about what it shows"
    rows = subtree(win, chains["role"], "Chains list")
    assert find(rows, "table cell", "web06.qcow2")
    assert find(rows, "table column header", "State")
    find(win, "canvas", "Chain graph")
    find(win, "canvas", "Graph overview")
    find(win, {"tree table", "tree"}, "Problems")
    toolbar = subtree(win, "tool bar", "Main toolbar")
    for name in ("Open Directory", "Rescan", "Create Overlay", "Rebase", "Commit", "Flatten"):
        find(toolbar, "push button", name)
    find(toolbar, "check box", "Problems Only")
    find(win, "text", "Filter images")


def test_every_control_of_the_main_window_has_a_name(trees):
    assert unnamed_controls(main_window(trees["main"])) == []


WEB06 = (
    "web06.qcow2, qcow2, unusable (missing backing file below): "
    "chain broken below: base.qcow2 — missing backing file"
)


def test_graph_says_what_is_selected(trees):
    graph = find(main_window(trees["selected"]), "canvas", "Chain graph")
    assert graph["description"] == WEB06


def test_screen_reader_is_told_when_the_selection_changes(trees):
    heard = trees["announced"]
    assert heard["event"] == "object:property-change:accessible-description"
    assert (heard["role"], heard["name"]) == ("canvas", "Chain graph")
    assert heard["data"] == WEB06


def test_create_overlay_dialog_found_and_every_control_named(trees):
    dialog = subtree(trees["dialog"], "dialog", "Create Overlay")
    find(dialog, "push button", "Create")
    find(dialog, "push button", "Cancel")
    find(dialog, {"text", "filler"}, "New image:")
    find(dialog, "check box", "Use this path style by default")
    assert unnamed_controls(dialog) == []
