"""The one-place rule: every kind of problem is said in ``core/chains/diagnose`` and only there.

The set of kinds in ``diagnose.KINDS`` is the set the command line can write (``check``/``scan``
text and JSON, whose schema names each kind), each with a title, an explanation and a fix; the
window's side (Problems' groups, Details' explanation and fix) is held to the same set in
``tests/gui/panels/test_problem_kinds.py``; and no module outside ``diagnose`` keeps words of its
own per kind.
"""

from __future__ import annotations

import ast
import json
import re
import string
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from imagegui.core.chains import diagnose
from imagegui.core.chains.checkstore import CheckRecord, Fingerprint
from imagegui.core.chains.diagnose import KINDS, FixAction, Kind, KindInfo, Level, fix_cli, problem
from imagegui.core.chains.graph import ChainGraph
from imagegui.core.demo import build_demo
from imagegui.core.read.scan import scan_directory

PACKAGE = Path(diagnose.__file__).resolve().parents[2]  # imagegui/
KIND_VALUES = {str(k) for k in Kind}
#: A flag or a command (the window speaks in its own terms: tests/gui/test_window_terms.py).
COMMAND_LINE = re.compile(r"(?<![\w/.-])--?[A-Za-z]|\b(?:imagegui|qemu-img) [a-z-]+ [-'/A-Z]|`")


def schema() -> dict:
    text = (resources.files("imagegui.schemas") / "scan.schema.json").read_text()
    return json.loads(text)


def one_of_each() -> list[diagnose.Problem]:
    path = "/srv/vms/web 1.qcow2"
    return [
        problem(kind, path, f"Something about {kind}.", fix_cli(kind, path, "/srv/vms/base.qcow2"))
        for kind in Kind
    ]


# -- diagnose says everything about every kind ------------------------------------------------


def test_every_kind_has_a_title_an_explanation_and_a_fix():
    assert set(KINDS) == set(Kind), "a kind without its KindInfo in diagnose.KINDS"
    for kind, info in KINDS.items():
        assert isinstance(info, KindInfo) and info.kind is kind
        assert info.title.strip() and info.explanation.strip() and info.fix.strip(), kind
        assert info.level in (Level.ERROR, Level.WARNING), kind
    titles = [info.title for info in KINDS.values()]
    assert len(set(titles)) == len(titles), "two kinds share a title"


def test_every_error_kind_has_its_own_break_rank():
    """Which of an image's errors names its chain break is said per kind, here; a warning never
    breaks a chain, so it needs no rank."""
    ranks = [info.break_rank for info in KINDS.values() if info.break_rank is not None]
    assert len(set(ranks)) == len(ranks), "two kinds share a break rank"
    for kind, info in KINDS.items():
        if info.level == Level.ERROR:
            assert info.break_rank is not None, kind
    assert diagnose.break_rank(Kind.MISSING_BACKING) < diagnose.break_rank(Kind.CORRUPT)
    assert diagnose.break_rank(Kind.DIRTY) > max(ranks)


def test_every_fix_in_window_terms_and_on_our_own_command_line():
    for kind, info in KINDS.items():
        for words in (info.title, info.explanation, info.fix):
            assert not COMMAND_LINE.search(words), (kind, words)
        if info.action is not None:
            assert info.action in FixAction and info.fix.endswith(("…", "image")), kind
        if info.cli:
            fields = {name for _, name, _, _ in string.Formatter().parse(info.cli) if name}
            assert fields <= {"path", "base"}, kind
            assert "imagegui " in info.cli and "qemu-img" not in info.cli, kind
    made = fix_cli(Kind.MISSING_BACKING, "/a b/c.qcow2")
    assert made == "imagegui rebase --unsafe '/a b/c.qcow2' NEW_BASE"
    assert fix_cli(Kind.UNREADABLE, "/x") == ""


# -- the command line shows exactly these kinds -------------------------------------------------


def test_the_schema_names_every_kind_the_command_line_writes():
    defs = schema()["$defs"]
    assert set(defs["problem"]["properties"]["kind"]["enum"]) == KIND_VALUES
    chain_kinds = set(defs["chain"]["properties"]["kind"]["enum"]) - {None}
    assert chain_kinds == KIND_VALUES
    levels = {str(info.level) for info in KINDS.values()} | {str(Level.ERROR)}
    assert set(defs["problem"]["properties"]["severity"]["enum"]) == levels


def test_every_kind_reads_on_the_command_line_with_its_fix():
    doc = schema()
    check = jsonschema.Draft202012Validator({**doc["$defs"]["problem"], "$defs": doc["$defs"]})
    for p in one_of_each():
        check.validate(p.to_json())
        assert p.to_json()["kind"] == str(p.kind)
        if KINDS[p.kind].cli:
            assert p.cli_text.endswith(f"Fix: {p.fix_cli}") and p.fix_cli.count("imagegui") >= 1
        else:
            assert p.cli_text == p.message


def test_the_rules_report_each_kind_at_its_level(tmp_path):
    """A kind's level is said once: what the scan and the kept checks report agrees with it."""
    graph = ChainGraph(scan_directory(build_demo(str(tmp_path / "demo"))))
    record = CheckRecord("/x.qcow2", Fingerprint(1, 2, 3, 4), 0.0, corruptions=2, leaks=3)
    found = [*graph.problems, *record.problems()]
    assert {p.kind for p in found} >= {
        Kind.MISSING_BACKING,
        Kind.CHECK_ERRORS,
        Kind.LEAKED_CLUSTERS,
    }
    for p in found:
        assert p.level == KINDS[p.kind].level, p


# -- nobody else keeps words per kind ----------------------------------------------------------


def _is_kind(key: ast.expr | None) -> bool:
    if isinstance(key, ast.Attribute) and isinstance(key.value, ast.Name):
        return key.value.id == "Kind"
    return isinstance(key, ast.Constant) and key.value in KIND_VALUES


def _is_words(value: ast.expr) -> bool:
    """Text: a string, an f-string, strings joined, or a tuple holding one (action, label)."""
    if isinstance(value, ast.Constant):
        return isinstance(value.value, str)
    if isinstance(value, ast.JoinedStr):
        return True
    if isinstance(value, ast.BinOp):
        return _is_words(value.left) or _is_words(value.right)
    if isinstance(value, ast.Tuple):
        return any(_is_words(v) for v in value.elts)
    return False


def _kind_keys(node: ast.Dict) -> int:
    """How many of a dict literal's entries give a problem kind (``Kind.X`` or its value) words."""
    return sum(_is_kind(k) and _is_words(v) for k, v in zip(node.keys, node.values, strict=True))


def per_kind_tables(source: str) -> list[int]:
    """Lines of dict literals that give two or more problem kinds words of their own."""
    tree = ast.parse(source)
    return [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Dict) and _kind_keys(n) >= 2]


def test_the_detector_finds_a_table_of_words_per_kind():
    assert per_kind_tables('T = {Kind.DIRTY: "Dirty", Kind.CORRUPT: "Corrupt"}') == [1]
    assert per_kind_tables('\nF = {"dirty": ("check", "Check"), "corrupt": ("x", "y")}') == [2]
    assert per_kind_tables('D = {"path": 1, "kind": "dirty"}') == []
    assert per_kind_tables('flags = {"dirty": bool(x), "corrupt": bool(y)}') == []
    assert per_kind_tables("RANK = {Kind.DIRTY: 0, Kind.CORRUPT: 1}") == []


@pytest.mark.parametrize(
    "module",
    sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if p.name != "diagnose.py"),
)
def test_no_module_outside_diagnose_keeps_words_per_kind(module: str):
    found = per_kind_tables((PACKAGE / module).read_text())
    assert not found, f"{module}:{found}: words per problem kind belong in core/chains/diagnose"
