"""What a command-line start loads: ``scan --json`` and ``check`` never Qt, libvirt's binding
(no daemon asked), jsonschema, the window's or the operations engine's modules; help never
networkx.

Why: a cold start is mostly imports (README ▸ Speed: ~500 modules, each read from disk only
once the one before is done), so a module loaded for nothing costs every scan its reads: Qt's
~60 MB of libraries and libvirt's C binding most of all. Lazy imports erode silently as the
code grows; this keeps them honest. Each case runs in a fresh process and looks at
``sys.modules`` as the command leaves it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

RUNNER = """
import contextlib, io, json, sys
from imagegui.__main__ import main
out = sys.argv.pop(1)
try:
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
with open(out, "w") as f:
    json.dump({"code": code, "modules": sorted(sys.modules)}, f)
"""

#: Never loaded by a scan or check that asks no libvirt daemon.
NEVER = (
    "PySide6",
    "libvirt",
    "libvirtmod",
    "jsonschema",
    "imagegui.gui",
    "imagegui.core.ops",
    "imagegui.core.virt.domxml",  # libvirt's XML, read only from a host that answered
    "logging.handlers",  # socket and pickle, for handlers imagegui does not use
)


def loaded(tmp_path, *args: str) -> set[str]:
    report = tmp_path / "modules.json"
    env = dict(os.environ, IMAGEGUI_LIBVIRT_URIS="")
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, str(report), *args],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(report.read_text())
    assert result["code"] in (0, None), proc.stderr
    return set(result["modules"])


def under(modules: set[str], package: str) -> list[str]:
    return sorted(m for m in modules if m == package or m.startswith(package + "."))


@pytest.mark.parametrize("command", [["scan", "--json"], ["scan"], ["check"], ["check", "--json"]])
def test_scan_and_check_load_nothing_they_do_not_use(tmp_path, make, command):
    make.create("images/base.qcow2", "qcow2", "1M")
    make.overlay("images/top.qcow2", "base.qcow2")
    modules = loaded(tmp_path, *command, str(tmp_path / "images"))
    assert "imagegui.core.read.scan" in modules and "networkx" in modules  # it did scan
    assert [m for p in NEVER for m in under(modules, p)] == []


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["scan", "--help"]])
def test_help_loads_no_graph_library(tmp_path, args):
    modules = loaded(tmp_path, *args)
    assert under(modules, "networkx") == [] and under(modules, "PySide6") == []
