"""The layout holds: core's layers import downward only, without cycles, and nobody reaches into
another module's private names.

Read from the source with ``ast`` (nothing is imported), so a lazy import inside a function counts
as much as one at the top: a function-level import is how a cycle hides, not how it is excused.
The layers (README ▸ Layout), lowest first: the shared modules directly in ``core/``, then
``read`` (what is on disk), ``qemu`` (running qemu), ``virt`` (what libvirt knows), ``chains``
(the graph and what it says), ``ops`` (plans), and ``demo``, which builds a directory with all
of them.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import networkx as nx
import pytest

import imagegui

PACKAGE = Path(imagegui.__file__).parent
CORE_LAYERS = ("read", "qemu", "virt", "chains", "ops")


@dataclass(frozen=True)
class Import:
    importer: str
    module: str  # the imported module, dotted
    name: str | None  # the name taken from it (``from m import name``), if any
    line: int


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, known: dict[str, Path]) -> list[Import]:
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [Import(name, a.name, None, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for a in node.names:
                sub = f"{base}.{a.name}"
                if sub in known:  # ``from pkg import module``
                    found.append(Import(name, sub, None, node.lineno))
                else:
                    found.append(Import(name, base, a.name, node.lineno))
    return [i for i in found if i.module.startswith("imagegui")]


@cache
def all_imports() -> tuple[Import, ...]:
    known = modules()
    return tuple(i for name, path in known.items() for i in imports_of(name, path, known))


def layer(module: str) -> int:
    """0 for core's shared modules, 1.. for read/qemu/virt/chains/ops, 6 for the rest of core."""
    parts = module.split(".")
    assert parts[:2] == ["imagegui", "core"], module
    if len(parts) == 2:
        return len(CORE_LAYERS) + 1  # the package itself
    if parts[2] in CORE_LAYERS:
        return 1 + CORE_LAYERS.index(parts[2])
    return len(CORE_LAYERS) + 1 if parts[2] == "demo" else 0


def test_core_imports_only_downward() -> None:
    upward = [
        f"{i.importer}:{i.line} imports {i.module}"
        for i in all_imports()
        if i.importer.startswith("imagegui.core")
        and (not i.module.startswith("imagegui.core") or layer(i.module) > layer(i.importer))
    ]
    assert upward == []


def test_core_has_no_import_cycles() -> None:
    g = nx.DiGraph()
    for i in all_imports():
        inside = i.importer.startswith("imagegui.core.") and i.module.startswith("imagegui.core.")
        if inside and i.module != i.importer:
            g.add_edge(i.importer, i.module)
    tangles = [sorted(c) for c in nx.strongly_connected_components(g) if len(c) > 1]
    assert tangles == []


def test_no_private_names_cross_modules() -> None:
    """``from imagegui.core.x import _helper`` in another module is a helper that should be
    public (or a test reaching in, which belongs in x's own tests)."""
    private = [
        f"{i.importer}:{i.line} takes {i.name} from {i.module}"
        for i in all_imports()
        if i.name is not None
        and i.name.startswith("_")
        and not i.name.startswith("__")
        and i.module != i.importer
    ]
    assert private == []


@pytest.mark.parametrize("front", ["imagegui.gui", "imagegui.cli"])
def test_front_ends_use_only_public_core_attributes(front: str) -> None:
    """``module._name`` on an imported core module is the same reach-in as importing it."""
    known = modules()
    reached = []
    for name, path in known.items():
        if not name.startswith(front):
            continue
        bound = {}
        tree = ast.parse(path.read_text())
        for i in imports_of(name, path, known):
            if i.name is None and i.module.startswith("imagegui.core"):
                bound[i.module.rpartition(".")[2]] = i.module
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in bound
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                reached.append(f"{name}:{node.lineno} uses {node.value.id}.{node.attr}")
    assert reached == []


def test_the_rules_see_the_layout() -> None:
    """The checks above are not vacuous: every layer exists and imports were found in each."""
    found = {layer(i.importer) for i in all_imports() if i.importer.startswith("imagegui.core.")}
    assert set(range(1, len(CORE_LAYERS) + 1)) <= found
    assert any(i.importer.startswith("imagegui.gui") for i in all_imports())
