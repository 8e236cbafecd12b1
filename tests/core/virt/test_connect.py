"""Connections fail with one sentence a user can act on, and the defaults fail quietly."""

from __future__ import annotations

import sys

import pytest

from imagegui.core.virt import connect, inventory
from imagegui.core.virt.connect import LibvirtUnreachable, is_remote, open_connection


def test_remote_uris_are_told_apart() -> None:
    assert not is_remote("qemu:///system")
    assert not is_remote("qemu:///session")
    assert is_remote("qemu+ssh://root@127.0.0.1:2222/system?keyfile=/k")
    assert is_remote("qemu://host.example/system")
    # The transport says where the daemon is: a unix socket is this machine's (its own socket
    # path or not), ssh and tls reach another one even without a host name (ssh's localhost).
    assert not is_remote("qemu+unix:///system?socket=/run/other/libvirt-sock")
    assert not is_remote("test:///default")
    assert is_remote("qemu+ssh:///system")
    assert is_remote("qemu+tls://h/system")


def test_without_the_binding_the_note_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "libvirt", None)  # import libvirt now raises ImportError
    with pytest.raises(LibvirtUnreachable) as err:
        open_connection("qemu:///system")
    assert str(err.value).startswith("libvirt not reachable at qemu:///system: ")
    assert connect.INSTALL_HINT in str(err.value)
    hosts = inventory.read_hosts(["qemu:///system"])
    assert hosts.inventories == []
    assert hosts.notes == [str(err.value)]
    quiet = inventory.read_hosts()
    assert (quiet.inventories, quiet.notes) == ([], [])


def test_without_a_daemon_the_binding_is_not_even_imported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A default scan on a machine where no libvirt daemon runs costs a few stat calls, not the
    binding's import (~45 ms)."""
    pytest.importorskip(
        "libvirt", reason="libvirt-python not installed: pip install imagegui[libvirt]"
    )
    monkeypatch.setattr(connect, "SYSTEM_SOCKETS", ("/nonexistent/libvirt-sock",))
    monkeypatch.delitem(sys.modules, "libvirt", raising=False)
    with pytest.raises(LibvirtUnreachable, match="no libvirt daemon is running"):
        open_connection("qemu:///system")
    assert "libvirt" not in sys.modules


def test_an_unknown_uri_is_a_note_in_libvirts_words() -> None:
    pytest.importorskip(
        "libvirt", reason="libvirt-python not installed: pip install imagegui[libvirt]"
    )
    hosts = inventory.read_hosts(["qemu:///nonsense"])
    assert hosts.inventories == []
    (note,) = hosts.notes
    assert note.startswith("libvirt not reachable at qemu:///nonsense: ")
    assert "qemu:///system" in note  # libvirt suggests the right one


def test_the_test_driver_inventory_lists_domains_and_their_disks() -> None:
    """libvirt's in-process test driver (no daemon): its built-in domain and disk."""
    pytest.importorskip(
        "libvirt", reason="libvirt-python not installed: pip install imagegui[libvirt]"
    )
    (inv,) = inventory.read_hosts(["test:///default"]).inventories
    (dom,) = inv.domains
    assert (dom.name, dom.state) == ("test", "running")
    assert [d.path for d in dom.disks] == ["/guest/diskimage1"]
