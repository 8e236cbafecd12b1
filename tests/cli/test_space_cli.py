"""``imagegui space DIR [--json]`` from a real ``imagegui`` process on real images: on-disk
figures against ``du -B1``, the JSON against imagegui/schemas/space.schema.json, the text
table, exit statuses, and what is (never) offered as reclaimable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
from opshelpers import qemu_io

M = 1 << 20


def run(*args: str | os.PathLike) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "imagegui", "space", *map(os.fsdecode, args)],
        capture_output=True,
        timeout=120,
    )


def space_json(*args: str | os.PathLike) -> dict:
    proc = run(*args, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.decode("utf-8", "strict"))


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    text = resources.files("imagegui.schemas").joinpath("space.schema.json").read_text("utf-8")
    schema = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def du(path: Path) -> int:
    out = subprocess.run(["du", "-B1", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def aged(path: Path, days: float) -> Path:
    t = time.time() - days * 86400
    os.utime(path, (t, t))
    return path


@pytest.fixture
def chains(make, tmp_path) -> Path:
    """debian-12 (10 MiB of data) under web01 (overwrote 4 MiB, wrote 2 MiB more) and an empty
    overlay; an old image nothing uses; a Nova cache with one unused old base."""
    base = make.create("debian-12.qcow2", "qcow2", "64M")
    qemu_io(base, "write -P 1 0 10M")
    web = make.overlay("web01.qcow2", "debian-12.qcow2")
    qemu_io(web, "write -P 2 0 4M", "write -P 2 20M 2M")
    make.overlay("empty.qcow2", "debian-12.qcow2")
    aged(make.create("old.qcow2", "qcow2", "8M"), 40)
    cached = make.create("_base/" + "f" * 40, "raw", "8M")
    qemu_io(cached, "write -P 3 0 1M", fmt="raw")
    aged(cached, 3)
    return tmp_path


def test_json_matches_the_schema_and_du_and_the_maps(chains, validator):
    doc = space_json(chains)
    validator.validate(doc)
    assert doc["schema"] == 1 and doc["root"] == str(chains)
    images = {os.path.relpath(i["path"], chains): i for i in doc["images"]}
    assert set(images) == {
        "debian-12.qcow2", "web01.qcow2", "empty.qcow2", "old.qcow2", f"_base/{'f' * 40}",
    }  # fmt: skip
    for rel, img in images.items():
        assert img["on_disk"] == du(chains / rel), rel
    assert doc["totals"]["on_disk"] == sum(du(chains / rel) for rel in images)
    assert images["debian-12.qcow2"]["guest_data"] == 10 * M
    assert images["web01.qcow2"]["guest_data"] == 6 * M
    assert images["debian-12.qcow2"]["shadowed"] == 0  # empty.qcow2 overwrote nothing
    assert images[f"_base/{'f' * 40}"]["guest_data"] == 1 * M
    web = next(c for c in doc["chains"] if c["top"].endswith("web01.qcow2"))
    assert [
        (os.path.basename(la["path"]), la["share"], la["fraction"]) for la in web["layers"]
    ] == [
        ("web01.qcow2", 6 * M, 0.5),
        ("debian-12.qcow2", 6 * M, 0.5),
    ]
    assert web["guest_data"] == 12 * M and web["ok"] is True
    assert web["on_disk"] == du(chains / "web01.qcow2") + du(chains / "debian-12.qcow2")
    got = [(r["category"], os.path.relpath(r["path"], chains)) for r in doc["reclaimable"]]
    assert got == [
        ("nova-unused-base", f"_base/{'f' * 40}"),
        ("empty-overlay", "empty.qcow2"),
        ("orphan", "old.qcow2"),
    ]
    for r in doc["reclaimable"]:
        assert r["bytes"] == du(Path(r["path"])) and r["action"] == "delete"
    by = doc["totals"]["reclaimable_by_category"]
    assert by["orphan"] == du(chains / "old.qcow2") and by["leftover"] == 0
    assert doc["libvirt_checked"] is False
    assert [n["message"] for n in doc["notes"] if "libvirt" in n["message"]]


def test_older_than_moves_the_orphan_limit(chains):
    doc = space_json(chains, "--older-than", "45")
    assert "orphan" not in {r["category"] for r in doc["reclaimable"]}
    assert doc["older_than_days"] == 45
    doc = space_json(chains, "--older-than", "0")
    orphans = {os.path.basename(r["path"]) for r in doc["reclaimable"] if r["category"] == "orphan"}
    assert orphans == {"old.qcow2", "web01.qcow2"}  # never debian-12.qcow2: overlays use it


def test_text_shows_totals_first_then_shares_and_reclaimable(chains):
    proc = run(chains)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.decode().splitlines()
    assert lines[0].startswith(f"{chains}: 5 images, ")
    assert "on disk" in lines[0] and "of guest data" in lines[0]
    assert lines[1].startswith("Reclaimable: ")
    assert [line.split()[0] for line in lines[2:6]] == [
        "leftover", "nova-unused-base", "empty-overlay", "orphan",
    ]  # fmt: skip
    [i] = [n for n, line in enumerate(lines) if line.startswith("  web01.qcow2  disk 64 MiB, ")]
    assert "data 12 MiB" in lines[i]
    assert lines[i + 1].split() == ["50", "%", "6", "MiB", "web01.qcow2"]
    assert lines[i + 2].split() == ["50", "%", "6", "MiB", "debian-12.qcow2"]
    old = "old.qcow2: last written 40 days ago; nothing backs"
    assert any(line.startswith("  orphan") and old in line for line in lines)


def test_unreadable_directory_and_bad_arguments_exit_2(tmp_path):
    proc = run(tmp_path / "nope")
    assert proc.returncode == 2 and b"cannot scan" in proc.stderr
    proc = run(tmp_path, "--older-than", "soon")
    assert proc.returncode == 2 and b"not a number of days" in proc.stderr
    proc = run(tmp_path, "--connect", "qemu+ssh://root@example.invalid/system")
    assert proc.returncode == 2 and b"another host" in proc.stderr
    empty = space_json(tmp_path)
    assert empty["images"] == [] and empty["totals"]["on_disk"] == 0


def test_a_name_that_is_not_utf8_has_its_bytes_twin(make, tmp_path, validator):
    name = b"top-\xff.qcow2"
    make.create("base.qcow2", "qcow2", "8M")
    path = os.fsencode(tmp_path) + b"/" + name
    subprocess.run(
        [b"qemu-img", b"create", b"-q", b"-f", b"qcow2", b"-b", b"base.qcow2", b"-F", b"qcow2",
         path],
        check=True,
    )  # fmt: skip
    doc = space_json(tmp_path)
    validator.validate(doc)
    [chain] = doc["chains"]
    assert bytes.fromhex(chain["top_bytes"]) == path
    assert chain["top"].endswith("top-\\xff.qcow2")


def test_an_image_a_libvirt_domain_uses_is_not_reclaimable(
    make, tmp_path, libvirt_uri, define_domain, validator
):
    vm_disk = aged(make.create("vm.qcow2"), 60)
    aged(make.create("alone.qcow2"), 60)
    define_domain(disks=[vm_disk])
    doc = space_json(tmp_path, "--connect", libvirt_uri)
    validator.validate(doc)
    assert [os.path.basename(r["path"]) for r in doc["reclaimable"]] == ["alone.qcow2"]
    assert doc["libvirt_checked"] is True and doc["libvirt"][0]["reachable"] is True
    assert not [n for n in doc["notes"] if "libvirt" in n["message"]]


def test_a_split_vmdk_is_on_disk_with_its_extent_files(make, tmp_path):
    vmdk = make.create("split.vmdk", "vmdk", "8M", "subformat=twoGbMaxExtentSparse")
    qemu_io(vmdk, "write -P 1 0 1M", fmt="vmdk")
    doc = space_json(tmp_path)
    [img] = doc["images"]
    assert img["on_disk"] == du(vmdk) + du(tmp_path / "split-s001.vmdk")
    assert img["guest_data"] == 1 * M and doc["totals"]["on_disk"] == img["on_disk"]
