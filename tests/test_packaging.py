"""What a packager relies on: the licence text, one version, the resources inside the package,
everything in the sdist. (The wheel itself is built, installed in a fresh venv and started by
scripts/check_wheel.sh, which ``bootstrap.sh test`` runs after the suite.)"""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

import pytest

import imagegui

ROOT = Path(imagegui.__file__).resolve().parents[1]

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_license_is_the_full_gpl2_text(pyproject):
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.lstrip().startswith("GNU GENERAL PUBLIC LICENSE\n                       Version 2")
    assert "TERMS AND CONDITIONS FOR COPYING, DISTRIBUTION AND MODIFICATION" in text
    assert "END OF TERMS AND CONDITIONS" in text and "How to Apply These Terms" in text
    assert len(text) > 17000
    assert pyproject["project"]["license"] == "GPL-2.0-or-later"
    assert pyproject["project"]["license-files"] == ["LICENSE"]


def test_version_is_written_once(pyproject):
    assert "version" not in pyproject["project"]
    assert "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "imagegui.__version__"}
    assert importlib.metadata.version("imagegui") == imagegui.__version__


def test_python_310_is_allowed(pyproject):
    assert pyproject["project"]["requires-python"] == ">=3.10"
    assert pyproject["tool"]["ruff"]["target-version"] == "py310"


def test_resources_are_package_data(pyproject):
    link = ROOT / "imagegui" / "resources"
    assert link.is_symlink() and os.readlink(link) == "../resources"
    assert link.resolve() == (ROOT / "resources").resolve()
    data = pyproject["tool"]["setuptools"]["package-data"]["imagegui"]
    assert "resources/**/*" in data


def test_sdist_carries_the_whole_project():
    manifest = (ROOT / "MANIFEST.in").read_text(encoding="utf-8").split("\n")
    for line in ("graft resources", "graft tests", "graft scripts"):
        assert line in manifest
    assert any(line.startswith("include ") and "LICENSE" in line.split() for line in manifest)


def test_only_the_aborting_pyside6_is_excluded(pyproject):
    from packaging.requirements import Requirement

    (pin,) = [
        Requirement(d) for d in pyproject["project"]["dependencies"] if d.startswith("PySide6")
    ]
    # 6.12.0 aborts Python 3.11 (gui/qtfix.py); a fixed 6.12.x must stay installable.
    assert "6.12.0" not in pin.specifier
    assert all(v in pin.specifier for v in ("6.5.0", "6.11.3", "6.12.1", "6.13.0"))


def test_libvirt_is_an_optional_extra(pyproject):
    """``pip install imagegui[libvirt]``; the plain install stays free of it (a source package
    that needs a compiler and libvirt-dev)."""
    assert pyproject["project"]["optional-dependencies"]["libvirt"] == ["libvirt-python>=9.0"]
    assert not any("libvirt" in d for d in pyproject["project"]["dependencies"])
