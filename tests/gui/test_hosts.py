"""gui/hosts.py: the local read a scan job takes, and one section per connection.

``test:///default`` is libvirt's in-process test driver (a host "test" with one running domain on
/guest/diskimg1): real libvirt, no daemon. The window's tests against the real libvirtd are in
test_libvirt_window.py.
"""

from __future__ import annotations

import threading

import pytest

from imagegui.core.jobs import CancelToken
from imagegui.core.virt.inventory import HostInventory, Hosts
from imagegui.gui.hosts import HostsReader, LocalFeed, hosts_key, split_uris

pytest.importorskip("libvirt", reason="libvirt-python not installed: pip install imagegui[libvirt]")

TEST_URI = "test:///default"


def test_remote_connections_are_read_apart_and_the_defaults_stay_without_a_local_one():
    assert split_uris([]) == (None, [])
    assert split_uris(["qemu+ssh://u@h/system"]) == (None, ["qemu+ssh://u@h/system"])
    assert split_uris(["qemu:///system", "qemu+ssh://u@h/system"]) == (
        ["qemu:///system"],
        ["qemu+ssh://u@h/system"],
    )


def test_a_scan_waits_for_a_running_local_read_and_not_for_a_queued_one():
    feed = LocalFeed()
    feed.begin()  # asked for, not started (queued behind other work): no wait at all
    assert feed.latest(wait=30.0) is None
    feed.running()
    hosts = Hosts(inventories=[HostInventory("qemu:///system")])
    got: list[Hosts | None] = []
    waiter = threading.Thread(target=lambda: got.append(feed.latest(wait=30.0)))
    waiter.start()
    feed.put(hosts)
    waiter.join(30)
    assert got == [hosts]


def test_a_cancelled_scan_stops_waiting():
    feed = LocalFeed()
    feed.begin()
    feed.running()
    token = CancelToken()
    token.cancel()
    assert feed.latest(token, wait=30.0) is None


def test_the_key_only_changes_with_the_local_domains_and_volumes():
    a = Hosts(inventories=[HostInventory("qemu:///system", hostname="a")])
    b = Hosts(inventories=[HostInventory("qemu:///system", hostname="b")])
    remote = Hosts(inventories=[*a.inventories, HostInventory("qemu+ssh://h/system", remote=True)])
    assert hosts_key(None) == hosts_key(Hosts()) == ()
    assert hosts_key(a) == hosts_key(b) == hosts_key(remote)


def test_each_connection_is_a_section_and_a_failure_a_note_said_once(qtbot, settings):
    settings.set_libvirt_uris([TEST_URI, "nosuchdriver:///x"])
    reader = HostsReader(settings)
    notes: list[str] = []
    reader.note.connect(notes.append)
    for _ in range(2):
        with qtbot.waitSignal(reader.localRead, timeout=10_000):
            reader.refresh()
        qtbot.waitUntil(lambda: not reader.reading, timeout=10_000)
    ok, failed = reader.sections()
    assert ok.uri == TEST_URI and ok.inventory is not None
    assert ok.title == f"{ok.inventory.hostname} — {TEST_URI}"
    assert [d.name for d in ok.inventory.domains] == ["test"]
    assert failed.inventory is None and failed.reason.startswith("no connection driver")
    assert notes == [failed.note]
    settings.set_libvirt_uris([TEST_URI])  # removed: its section goes
    with qtbot.waitSignal(reader.localRead, timeout=10_000):
        reader.refresh()
    assert [s.uri for s in reader.sections()] == [TEST_URI]
