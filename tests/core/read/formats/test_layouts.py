"""What holds the parsers together: named header layouts and qemu's limits in one place."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import NamedTuple

import pytest

from imagegui.core.read.formats import limits
from imagegui.core.read.formats.base import named_struct

FORMATS = Path(limits.__file__).parent
PREFIXES = ("QCOW2_", "QCOW_", "QED_", "VMDK_", "VHDX_", "VHD_")


class _Pair(NamedTuple):
    magic: bytes
    size: int


def test_a_layout_and_its_names_must_agree():
    layout = named_struct(">4sQ", _Pair._fields)
    assert _Pair._make(layout.unpack(b"QFI\xfb" + (5).to_bytes(8, "big"))).size == 5
    with pytest.raises(TypeError, match="3 fields, the names are 2"):
        named_struct(">4sQI", _Pair._fields)
    with pytest.raises(TypeError, match="1 fields, the names are 2"):
        named_struct(">4s", _Pair._fields)


def _unprefixed(name: str) -> str:
    for prefix in PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def test_format_modules_import_qemus_limits_instead_of_defining_them():
    """A limit from formats/limits.py defined again in a format module (as ``BDRV_MAX_LENGTH``,
    ``_INT_MAX`` or a format's ``MAX_CLUSTER_SIZE``) is a second copy that can drift."""
    known = {n for n in vars(limits) if n.isupper()}
    known |= {_unprefixed(n) for n in known}
    again = []
    for path in sorted(FORMATS.glob("*.py")):
        if path.name == "limits.py":
            continue
        for node in ast.parse(path.read_text()).body:
            targets = node.targets if isinstance(node, ast.Assign) else []
            if isinstance(node, ast.AnnAssign):
                targets = [node.target]
            for target in targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name) and name.id.lstrip("_") in known:
                        again.append(f"{path.name}:{node.lineno} {name.id}")
    assert again == []
