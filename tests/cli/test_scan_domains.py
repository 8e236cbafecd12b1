"""``scan`` and ``check`` name the libvirt domains that use each image: against a real libvirtd
(tests/libvirt_fixtures.py starts it when none answers), through a real ``imagegui`` process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jsonschema


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "imagegui", *args], capture_output=True, text=True, timeout=120
    )


def uses(doc: dict, path: os.PathLike, name: str) -> list[dict]:
    [image] = [i for i in doc["images"] + doc["external_images"] if i["path"] == str(path)]
    return [d for d in image["domains"] if d["name"] == name]


def test_a_shut_off_domain_on_an_overlay_is_listed_on_it_and_its_base(
    make, tmp_path, libvirt_uri, define_domain
):
    base = make.create("base.qcow2")
    top = make.overlay("top.qcow2", "base.qcow2")
    free = make.create("free.qcow2")
    name = define_domain(disks=[top]).name()
    proc = run("scan", "--json", "--connect", libvirt_uri, str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    on_top = {"uri": libvirt_uri, "name": name, "state": "shut off", "disk": "vda"}
    assert uses(doc, top, name) == [{**on_top, "role": "top"}]
    assert uses(doc, base, name) == [{**on_top, "role": "backing"}]
    assert uses(doc, free, name) == []
    [conn] = doc["libvirt"]
    assert conn["uri"] == libvirt_uri and conn["reachable"] is True and conn["reason"] is None
    assert conn["hostname"]
    assert doc["problems"] == []
    text = run("scan", "--connect", libvirt_uri, str(tmp_path))
    assert text.returncode == 0, text.stderr
    [line] = [line for line in text.stdout.splitlines() if "top.qcow2" in line]
    assert line.endswith(f"[used by {name} (shut off)]")


def test_the_output_with_domains_matches_the_schema(make, tmp_path, libvirt_uri, define_domain):
    """The fields only a reachable libvirt makes (tests/cli/test_scan_schema.py leaves them to
    this test): each domain use and each connection, reachable or not."""
    from importlib import resources

    base = make.create("base.qcow2")
    define_domain(disks=[base])
    nonsense = "qemu:///nonsense"
    proc = run("scan", "--json", "--connect", libvirt_uri, "--connect", nonsense, str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    text = resources.files("imagegui.schemas").joinpath("scan.schema.json").read_text("utf-8")
    schema = json.loads(text)
    jsonschema.Draft202012Validator(schema).validate(doc)
    assert [c["reachable"] for c in doc["libvirt"]] == [True, False]
    produced = set(doc["libvirt"][0]) | set(doc["images"][0]["domains"][0])
    defs = schema["$defs"]
    assert produced == set(defs["connection"]["properties"]) | set(defs["domain_use"]["properties"])


def test_a_domain_on_a_deleted_file_fails_check(make, tmp_path, libvirt_uri, define_domain):
    make.create("base.qcow2")
    disk = make.create("web.qcow2")
    name = define_domain(disks=[disk]).name()
    disk.unlink()
    proc = run("check", "--json", "--connect", libvirt_uri, str(tmp_path))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    [p] = [p for p in doc["problems"] if p["kind"] == "domain-disk-missing"]
    assert p["severity"] == "error" and p["path"] == str(disk)
    assert p["message"] == (
        f"{name} (shut off) uses it as vda, but the file does not exist: the VM will not start"
    )
    assert doc["libvirt"][0]["reachable"] is True
    text = run("check", "--connect", libvirt_uri, str(tmp_path))
    assert text.returncode == 1
    assert f"error   domain-disk-missing      web.qcow2: {name} (shut off) uses it" in text.stdout


def test_a_domain_on_a_broken_chain_fails_check_naming_the_break(
    make, tmp_path, libvirt_uri, define_domain
):
    top = make.overlay("top.qcow2", "base.qcow2")
    name = define_domain(disks=[top]).name()
    proc = run("check", "--json", "--connect", libvirt_uri, str(tmp_path))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    [p] = [p for p in json.loads(proc.stdout)["problems"] if p["kind"] == "domain-disk-missing"]
    assert p["path"] == str(top)
    assert p["message"].startswith(f"{name} (shut off) uses it as vda, but qemu cannot open")
    assert str(tmp_path / "base.qcow2") in p["message"]


def test_a_deleted_disk_outside_the_root_is_a_note(make, tmp_path, libvirt_uri, define_domain):
    make.create("root/base.qcow2")
    disk = make.create("vms/web.qcow2")
    name = define_domain(disks=[disk]).name()
    disk.unlink()
    proc = run("check", "--json", "--connect", libvirt_uri, str(tmp_path / "root"))
    assert proc.returncode == 0, proc.stdout + proc.stderr  # not ours: a note, not an error
    notes = [n for n in json.loads(proc.stdout)["notes"] if n["path"] == str(disk)]
    assert notes == [
        {
            "path": str(disk),
            "message": f"{name} (shut off) uses it as vda, but the file does not exist: "
            "the VM will not start",
        }
    ]


def test_without_libvirt_reachable_the_scan_goes_on_with_a_note(make, tmp_path):
    top = make.overlay("top.qcow2", "base.qcow2")
    make.create("base.qcow2")
    proc = run("scan", "--json", "--connect", "qemu:///nonsense", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith("imagegui: note: libvirt not reachable at qemu:///nonsense: ")
    doc = json.loads(proc.stdout)
    assert uses(doc, top, "") == [] and all(i["domains"] == [] for i in doc["images"])
    [conn] = doc["libvirt"]
    assert conn["reachable"] is False and conn["hostname"] is None and conn["reason"]
