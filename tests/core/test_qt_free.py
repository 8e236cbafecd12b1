"""The core must run where PySide6 is not installed: the CLI on a server, the tests' engine."""

import subprocess
import sys

CODE = r"""
import importlib, pkgutil, sys
sys.modules["PySide6"] = None  # any import of PySide6 now raises ImportError
sys.modules["shiboken6"] = None
import imagegui.core as core
names = [m.name for m in pkgutil.walk_packages(core.__path__, "imagegui.core.")]
for name in names:
    importlib.import_module(name)
import imagegui.cli
print(len(names))
"""


def test_core_and_cli_import_without_pyside6():
    proc = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) >= 10  # every core module was really imported
