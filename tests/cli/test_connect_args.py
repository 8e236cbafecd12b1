"""``--connect URI`` on ``scan`` and ``check``: parsed the same everywhere, and a connection that
cannot be reached is one note while the scan goes on."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from imagegui.cli import build_parser
from imagegui.cli.connect_args import (
    add_connect_argument,
    domain_source,
    libvirt_json,
    read_domains,
)
from imagegui.core.virt.inventory import DomainSource, HostInventory, Hosts


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "imagegui", *args], capture_output=True, text=True, timeout=60
    )


def test_connect_is_repeatable_and_becomes_a_domain_source() -> None:
    p = argparse.ArgumentParser()
    add_connect_argument(p)
    assert domain_source(p.parse_args([])) == DomainSource(None)
    args = p.parse_args(["--connect", "qemu:///system", "--connect", "test:///default"])
    assert domain_source(args) == DomainSource(("qemu:///system", "test:///default"))
    for command in ("scan", "check"):
        parsed = build_parser(command).parse_args([command, "/d", "--connect", "test:///default"])
        assert parsed.connect == ["test:///default"]


def test_unreachable_connections_are_notes_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    args = argparse.Namespace(connect=["qemu:///nonsense"])
    index, hosts = read_domains(args)
    assert index.top_uses() == [] and hosts.inventories == []
    err = capsys.readouterr().err
    assert err.startswith("imagegui: note: libvirt not reachable at qemu:///nonsense: ")
    assert err.count("\n") == 1


def test_libvirt_json_lists_each_connection_tried() -> None:
    hosts = Hosts(
        inventories=[HostInventory(uri="test:///default", hostname="h1")],
        notes=["libvirt not reachable at qemu:///x: no"],
        asked=["qemu:///x", "test:///default", "qemu:///never-tried"],
        unreachable={"qemu:///x": "no"},
    )
    assert libvirt_json(hosts) == [
        {"uri": "qemu:///x", "reachable": False, "hostname": None, "reason": "no"},
        {"uri": "test:///default", "reachable": True, "hostname": "h1", "reason": None},
    ]


def test_scan_and_check_go_on_without_libvirt(make, tmp_path) -> None:
    make.create("base.qcow2")
    for command in ("scan", "check"):
        proc = run(command, str(tmp_path), "--json", "--connect", "qemu:///nonsense")
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["root"] == str(tmp_path)
        assert "imagegui: note: libvirt not reachable at qemu:///nonsense: " in proc.stderr


def test_without_the_binding_scan_says_what_to_install_and_goes_on(
    make, tmp_path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from imagegui.cli import run_cli
    from imagegui.core.virt.connect import INSTALL_HINT

    monkeypatch.setitem(sys.modules, "libvirt", None)  # import libvirt now raises ImportError
    make.create("base.qcow2")
    assert run_cli(["scan", "--json", "--connect", "qemu:///system", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    reason = f"the libvirt Python binding is not installed ({INSTALL_HINT})"
    assert err == f"imagegui: note: libvirt not reachable at qemu:///system: {reason}\n"
    doc = json.loads(out)
    assert [i["domains"] for i in doc["images"]] == [[]]
    assert doc["libvirt"] == [
        {"uri": "qemu:///system", "reachable": False, "hostname": None, "reason": reason}
    ]
