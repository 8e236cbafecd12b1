"""``--connect qemu+ssh://...`` on the command line, against a real libvirtd through a real sshd
on a loopback port: scan and check show that host's volumes as the graph."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "imagegui", *args], capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def pool_dir(make, define_pool):
    """A started dir pool with a base, an overlay of it and one whose backing file is gone."""
    make.create("base.qcow2", "qcow2", "16M")
    make.overlay("ov1.qcow2", "base.qcow2")
    make.overlay("ov2.qcow2", "gone.qcow2")
    define_pool(make.root)
    return make.root


def test_scan_json_of_a_remote_dir_lists_the_same_images_and_problems_as_a_local_scan(
    pool_dir, ssh_libvirt_uri
):
    local = run("scan", str(pool_dir), "--json")
    remote = run("scan", str(pool_dir), "--json", "--connect", ssh_libvirt_uri)
    assert local.returncode == 0, local.stderr
    assert remote.returncode == 0, remote.stderr
    mine, theirs = json.loads(local.stdout), json.loads(remote.stdout)
    assert theirs["root"] == str(pool_dir)
    assert [i["path"] for i in theirs["images"]] == [i["path"] for i in mine["images"]]
    assert [(p["path"], p["kind"]) for p in theirs["problems"]] == [
        (p["path"], p["kind"]) for p in mine["problems"]
    ]
    assert "missing-backing" in {p["kind"] for p in theirs["problems"]}


def test_check_over_ssh_without_dir_reads_every_pool_and_exits_1_on_errors(
    pool_dir, ssh_libvirt_uri
):
    proc = run("check", "--connect", ssh_libvirt_uri)
    assert proc.returncode == 1, proc.stderr
    assert f"missing-backing          {pool_dir}/ov2.qcow2" in proc.stdout
    assert "not found on qemu+ssh://" in proc.stdout
    tree = run("scan", "--connect", ssh_libvirt_uri)
    assert tree.returncode == 0, tree.stderr
    assert f"{pool_dir}/ov1.qcow2" in tree.stdout


def test_dir_is_required_without_a_remote_host_and_absolute_with_one(ssh_libvirt_uri):
    proc = run("scan")
    assert proc.returncode == 2 and "DIR is needed" in proc.stderr
    proc = run("check", "images", "--connect", ssh_libvirt_uri)
    assert proc.returncode == 2 and "absolute path" in proc.stderr
    proc = run("check", "/", "--deep", "--connect", ssh_libvirt_uri)  # qemu-img runs here
    assert proc.returncode == 2 and "--deep" in proc.stderr


def test_scan_over_ssh_names_the_domains_of_that_host_that_use_each_volume(
    pool_dir, ssh_libvirt_uri, define_domain
):
    dom = define_domain([str(pool_dir / "ov1.qcow2")])
    proc = run("scan", str(pool_dir), "--json", "--connect", ssh_libvirt_uri)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    images = {i["path"]: i for i in doc["images"]}
    uses = {
        name: [(d["name"], d["role"], d["state"]) for d in images[str(pool_dir / name)]["domains"]]
        for name in ("ov1.qcow2", "base.qcow2", "ov2.qcow2")
    }
    assert uses == {
        "ov1.qcow2": [(dom.name(), "top", "shut off")],
        "base.qcow2": [(dom.name(), "backing", "shut off")],
        "ov2.qcow2": [],
    }
    assert [h["uri"] for h in doc["libvirt"]] == [ssh_libvirt_uri]
    assert doc["libvirt"][0]["reachable"] is True and doc["libvirt"][0]["hostname"]


def test_check_portable_over_ssh_warns_about_absolute_backing_names(
    make, define_pool, ssh_libvirt_uri
):
    """--portable is honoured on another host's volumes as on local files (it was dropped when
    --connect named another host: the remote graph was built without it)."""
    make.create("base.qcow2", "qcow2", "16M")
    make.overlay("rel.qcow2", "base.qcow2")
    make.overlay("abs.qcow2", str(make.root / "base.qcow2"))
    define_pool(make.root)
    local = run("check", str(make.root), "--portable")
    remote = run("check", str(make.root), "--portable", "--connect", ssh_libvirt_uri)
    plain = run("check", str(make.root), "--connect", ssh_libvirt_uri)
    assert "absolute-backing         abs.qcow2" in local.stdout, local.stderr
    assert "absolute-backing         abs.qcow2" in remote.stdout, remote.stderr
    assert "rel.qcow2" not in remote.stdout
    assert "absolute-backing" not in plain.stdout, plain.stderr
