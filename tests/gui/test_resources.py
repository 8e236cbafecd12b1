"""The window's resources are package data, found through importlib.resources (a wheel's
``imagegui/resources``, or in the repository the symlink to the top-level ``resources/``)."""

from __future__ import annotations

from importlib import resources as importlib_resources
from pathlib import Path

from imagegui.gui import resources


def test_resources_dir_is_the_packages_data():
    found = resources.resources_dir()
    assert found == Path(str(importlib_resources.files("imagegui") / "resources"))
    assert (found / "style.qss").is_file() and (found / "imagegui.svg").is_file()
    assert resources.icon_path("commit").is_file()
    assert not resources.app_icon().isNull()
    assert resources.stylesheet().strip()
