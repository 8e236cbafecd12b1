"""``scan --json`` against the JSON Schema the package ships (imagegui/schemas/scan.schema.json):
real output of the demo directory and of a hostile one, from a real ``imagegui`` process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
from conftest import ImageMaker


def scan_json(root: str | os.PathLike | bytes) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "imagegui", "scan", os.fsdecode(root), "--json"],
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    # Strict: a lone surrogate or invalid UTF-8 in the output fails here.
    return json.loads(proc.stdout.decode("utf-8", "strict"))


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    text = resources.files("imagegui.schemas").joinpath("scan.schema.json").read_text("utf-8")
    schema = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.fixture(scope="module")
def demo_doc(tmp_path_factory) -> dict:
    from imagegui.core.demo import build_demo

    return scan_json(build_demo(str(tmp_path_factory.mktemp("demo"))))


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("hostile") / "dir"
    root.mkdir()
    _hostile(ImageMaker(root), root)
    return root, scan_json(root)


def test_demo_directory_output_matches_the_schema(validator, demo_doc):
    doc = demo_doc
    validator.validate(doc)
    assert doc["schema"] == 1
    assert len(doc["images"]) > 10 and doc["nova_bases"] and doc["problems"]
    assert "path_bytes" not in json.dumps(doc)  # only where a name is not UTF-8


def _hostile(make, root: Path) -> None:
    bad = os.fsencode(root) + b"/bad-\xff\xfe.qcow2"
    make.create("base.qcow2", "qcow2", "1M")
    shutil.copy(root / "base.qcow2", bad)
    make.overlay("over-bad.qcow2", os.fsdecode(b"bad-\xff\xfe.qcow2"))
    make.overlay("orphan.qcow2", "gone.qcow2")
    make.overlay("orphan-bad.qcow2", os.fsdecode(b"gone-\xc3.qcow2"))
    make.overlay("loop-a.qcow2", "loop-b.qcow2")
    make.overlay("loop-b.qcow2", "loop-a.qcow2")
    make.overlay("above-hole.qcow2", "orphan.qcow2")
    make.create("trunc.qcow2", "qcow2", "1M")
    with open(root / "trunc.qcow2", "r+b") as f:
        f.truncate(40)
    os.mkfifo(root / "pipe.qcow2")
    os.symlink("nowhere.qcow2", root / "dangling.qcow2")
    (root / "sub").mkdir()
    os.symlink("..", root / "sub" / "up")
    os.link(root / "base.qcow2", root / "base-link.qcow2")
    make.overlay("outside/../../external-user.qcow2", str(root / "base.qcow2"))


def test_hostile_directory_output_matches_the_schema(validator, hostile):
    root, doc = hostile
    validator.validate(doc)
    by_name = {i["path"].rsplit("/", 1)[-1]: i for i in doc["images"]}
    bad = by_name["bad-\\xff\\xfe.qcow2"]
    assert bytes.fromhex(bad["path_bytes"]) == os.fsencode(root) + b"/bad-\xff\xfe.qcow2"
    over = by_name["over-bad.qcow2"]
    assert bytes.fromhex(over["backing_file_bytes"]) == b"bad-\xff\xfe.qcow2"
    assert over["chain"]["ok"] is True
    orphan = by_name["orphan-bad.qcow2"]
    assert bytes.fromhex(orphan["chain"]["broken_at_bytes"]).endswith(b"/gone-\xc3.qcow2")
    assert "path_bytes" not in (by_name.get("base.qcow2") or by_name["base-link.qcow2"])
    assert by_name["above-hole.qcow2"]["chain"]["kind"] == "missing-backing"
    assert doc["loops"] and doc["aliases"] and doc["notes"]
    kinds = {p["kind"] for p in doc["problems"]}
    assert {"missing-backing", "backing-loop", "unreadable"} <= kinds


def test_every_schema_field_is_produced(validator, demo_doc, hostile):
    """The schema names no field the two directories do not make the program write (a field
    the program no longer writes would be documented fiction)."""
    seen: set[str] = set()

    def walk(v: object) -> None:
        if isinstance(v, dict):
            seen.update(v)
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    for doc in (demo_doc, hostile[1]):
        seen.update(doc)
        walk({k: v for k, v in doc.items() if k != "aliases"})
    schema = validator.schema
    named = set(schema["properties"])
    # Only a reachable libvirt makes these: tests/cli/test_scan_domains.py holds them.
    libvirt_only = {"connection", "domain_use"}
    for name, d in schema["$defs"].items():
        if name not in libvirt_only:
            named |= set(d.get("properties", {}))
    missing = named - seen - {"root_bytes", "fix_cli", "backing_path_bytes"}
    assert not missing
