"""launch through libvirt, against the real libvirtd (tests/libvirt_fixtures.py): a plain image
starts a transient domain, an image a defined domain boots starts that domain, the plan (with the
domain XML) changes nothing, and the bare launch's guards hold (a second launch is refused).

The images live in a directory the daemon's VM account can reach (pytest's tmp dirs are private
to root); everything started here is destroyed in teardown."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import qemu_img

from imagegui.core.ops.launch import LaunchOptions
from imagegui.core.ops.launchvirt import (
    DEFAULT_URI,
    LibvirtLaunchResult,
    domain_xml,
    local_uri,
    plan_launch_libvirt,
    transient_name,
)
from imagegui.core.ops.plan import GuardRefused
from imagegui.core.virt.domxml import parse_domain


def codes(plan) -> set[str]:
    return {f.code for f in plan.blocking()}


def virsh(uri: str, *args: str) -> str:
    return subprocess.run(
        ["virsh", "-q", "-c", uri, *args], capture_output=True, text=True, timeout=60
    ).stdout


def running(uri: str) -> list[str]:
    return virsh(uri, "list", "--name").split()


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory libvirt's VM account can read and write images in (0755, under /var/tmp)."""
    d = Path(tempfile.mkdtemp(prefix="imagegui-test-lv-", dir="/var/tmp"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def started(libvirt_conn) -> Iterator[list[str]]:
    """Names of domains a test started: destroyed (stopped at once) after it, however it ended."""
    names: list[str] = []
    yield names
    import libvirt

    for name in names:
        with contextlib.suppress(libvirt.libvirtError):
            dom = libvirt_conn.lookupByName(name)
            if dom.isActive():
                dom.destroy()


def tiny(directory: Path, fmt: str = "qcow2") -> Path:
    path = directory / f"img-{secrets.token_hex(3)}.{fmt}"
    qemu_img("create", "-q", "-f", fmt, path, "16M")
    return path


# --------------------------------------------------------------------------- pure parts


def test_transient_names_are_the_images_stem_made_safe_and_free():
    assert transient_name("/x/web 01.qcow2", set()) == "imagegui-web-01"
    assert transient_name("/x/a.b.qcow2", {"imagegui-a"}) == "imagegui-a-2"
    assert transient_name("/x/.qcow2", set()) == "imagegui-image"


def test_domain_xml_boots_the_image_with_its_format_on_loopback_vnc():
    opts = LaunchOptions(memory=256, cpus=2, readonly=True)
    xml = domain_xml("imagegui-a", "/srv/a&b.img", "raw", opts, "qemu")
    dom = parse_domain(xml, "test:///default", "shut off")
    (disk,) = dom.disks
    assert (disk.path, disk.format, disk.target, disk.readonly) == (
        "/srv/a&b.img",
        "raw",
        "vda",
        True,
    )
    assert "<memory unit='MiB'>256</memory>" in xml and "<vcpu>2</vcpu>" in xml
    assert "<domain type='qemu'>" in xml and "host-passthrough" not in xml
    assert "address='127.0.0.1'" in xml and "<interface type='user'>" in xml


def test_the_launch_goes_to_a_local_connection():
    assert local_uri(()) == DEFAULT_URI
    assert local_uri(("qemu+ssh://root@h/system", "qemu:///session")) == "qemu:///session"


def test_a_remote_or_unreachable_connection_is_refused_in_one_sentence(tmp_path):
    image = tiny(tmp_path)
    remote = plan_launch_libvirt(str(image), uri="qemu+ssh://root@192.0.2.1/system")
    assert codes(remote) == {"remote-libvirt"}
    gone = plan_launch_libvirt(str(image), uri="bogus:///nothing")
    assert codes(gone) == {"libvirt-unreachable"}
    assert gone.blocking()[0].message.startswith("libvirt not reachable at bogus:///nothing: ")


# --------------------------------------------------------------------------- real libvirtd


def test_dry_run_of_a_plain_image_shows_a_transient_domain_and_changes_nothing(
    libvirt_uri, shared_dir
):
    image = tiny(shared_dir)
    before = running(libvirt_uri)
    plan = plan_launch_libvirt(str(image), LaunchOptions(memory=128), libvirt_uri)
    assert not plan.refused, plan.describe()
    assert plan.transient and plan.domain == transient_name(str(image), set(before))
    ((caption, xml),) = plan.documents
    assert "transient" in caption and f"<source file='{image}'/>" in xml
    assert "<driver name='qemu' type='qcow2'/>" in xml
    text = plan.describe()
    assert "disappears from libvirt when it stops" in text and "<domain type=" in text
    assert plan.to_json()["documents"][0]["text"] == xml
    assert plan.domain not in running(plan.uri)  # (other test sessions may share the daemon)
    assert virsh(libvirt_uri, "dominfo", plan.domain) == ""  # nothing defined either


def test_an_image_a_defined_domain_boots_plans_to_start_that_domain(
    libvirt_uri, define_domain, shared_dir
):
    image = tiny(shared_dir)
    dom = define_domain(disks=[image])
    plan = plan_launch_libvirt(str(image), uri=libvirt_uri)
    assert not plan.refused, plan.describe()
    assert (plan.transient, plan.domain) == (False, dom.name())
    assert plan.documents[0][1] == dom.XMLDesc(0)
    assert any("as it is defined" in c for c in plan.changes)
    # Its definition decides the disk: a snapshot or read-only boot goes without libvirt.
    ro = plan_launch_libvirt(str(image), LaunchOptions(readonly=True), libvirt_uri)
    assert codes(ro) == {"domain-as-defined"}


def test_a_base_that_a_domains_disk_reads_is_booted_only_read_only(
    libvirt_uri, define_domain, shared_dir
):
    base = tiny(shared_dir)
    top = shared_dir / "top.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", top)
    other = Path(tempfile.mkdtemp(dir=shared_dir))  # the overlay's folder is not searched
    os.rename(top, other / "top.qcow2")
    qemu_img("rebase", "-u", "-b", base, "-F", "qcow2", other / "top.qcow2")
    dom = define_domain(disks=[other / "top.qcow2"])
    plan = plan_launch_libvirt(str(base), uri=libvirt_uri)
    (finding,) = [f for f in plan.blocking() if f.code == "used-by-vm"]
    assert dom.name() in finding.message and "booting it writable" in finding.message
    assert not plan_launch_libvirt(str(base), LaunchOptions(readonly=True), libvirt_uri).refused


def test_a_snapshot_boot_is_not_offered_through_libvirt(libvirt_uri, shared_dir):
    plan = plan_launch_libvirt(str(tiny(shared_dir)), LaunchOptions(snapshot=True), libvirt_uri)
    assert codes(plan) == {"libvirt-snapshot"}


@pytest.mark.slow
def test_a_plain_image_runs_as_a_transient_domain_and_a_second_launch_is_refused(
    libvirt_uri, shared_dir, started
):
    image = tiny(shared_dir)
    plan = plan_launch_libvirt(str(image), LaunchOptions(memory=128), libvirt_uri)
    started.append(plan.domain)
    result = plan.run()
    assert isinstance(result, LibvirtLaunchResult)
    assert (result.domain, result.uri, result.transient) == (plan.domain, libvirt_uri, True)
    assert plan.domain in running(libvirt_uri)
    assert f"<source file='{image}'" in virsh(libvirt_uri, "dumpxml", plan.domain)
    assert "transient" in virsh(libvirt_uri, "dominfo", plan.domain).lower() or (
        "Persistent:     no" in virsh(libvirt_uri, "dominfo", plan.domain)
    )
    if shutil.which("virt-viewer"):
        assert result.console == ["virt-viewer", "--connect", libvirt_uri, plan.domain]
    again = plan_launch_libvirt(str(image), uri=libvirt_uri)
    assert {"in-use", "domain-running"} <= codes(again), again.describe()
    with pytest.raises(GuardRefused):
        plan.run()  # the same plan, run twice: the guards are read again
    virsh(libvirt_uri, "destroy", plan.domain)
    assert plan.domain not in virsh(libvirt_uri, "list", "--all", "--name").split()


@pytest.mark.slow
def test_an_image_a_shut_off_domain_boots_starts_that_domain(
    libvirt_uri, define_domain, shared_dir, started
):
    image = tiny(shared_dir)
    dom = define_domain(disks=[image])
    started.append(dom.name())
    result = plan_launch_libvirt(str(image), uri=libvirt_uri).run()
    assert (result.domain, result.transient) == (dom.name(), False)
    assert dom.isActive() and dom.isPersistent()
    assert dom.name() in running(libvirt_uri)


def test_a_definition_edited_after_the_preview_refuses_the_run(
    libvirt_uri, libvirt_conn, define_domain, shared_dir
):
    image = tiny(shared_dir)
    dom = define_domain(disks=[image])
    plan = plan_launch_libvirt(str(image), uri=libvirt_uri)
    assert not plan.refused
    xml = dom.XMLDesc(0).replace("<vcpu placement='static'>1</vcpu>", "<vcpu>2</vcpu>")
    libvirt_conn.defineXML(xml)  # someone changed the VM meanwhile
    with pytest.raises(GuardRefused, match="changed since this plan was made"):
        plan.run()
    assert not dom.isActive()


def test_starting_a_vm_checks_the_other_vms_that_use_its_disk(
    libvirt_uri, define_domain, shared_dir
):
    """The VM that starts may write its own disk; another VM whose disk reads it may not be
    changed under it."""
    base = tiny(shared_dir)
    top = shared_dir / "top.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", top)
    owner = define_domain(disks=[base])
    other = define_domain(disks=[top])
    plan = plan_launch_libvirt(str(base), uri=libvirt_uri)
    assert plan.domain == owner.name() and not plan.transient
    blocking = {f.code: f.message for f in plan.blocking()}
    assert other.name() in blocking["used-by-vm"] and owner.name() not in blocking["used-by-vm"]


def test_without_dev_kvm_or_asked_for_tcg_the_domain_is_plain_qemu(monkeypatch):
    """A unit test of ``_domain_kind`` alone: /dev/kvm cannot be taken away from this machine."""
    from imagegui.core.ops import launchvirt

    class Daemon:
        def getCapabilities(self) -> str:  # noqa: N802 (libvirt's name)
            return "<capabilities><guest><arch><domain type='kvm'/></arch></guest></capabilities>"

    assert launchvirt._domain_kind(Daemon(), None) == (
        "kvm" if os.path.exists("/dev/kvm") else "qemu"
    )
    assert launchvirt._domain_kind(Daemon(), "tcg") == "qemu"
    real_exists = os.path.exists
    monkeypatch.setattr(os.path, "exists", lambda p: p != "/dev/kvm" and real_exists(p))
    assert launchvirt._domain_kind(Daemon(), None) == "qemu"


def test_tcg_chosen_gives_a_qemu_domain(libvirt_uri, shared_dir):
    plan = plan_launch_libvirt(str(tiny(shared_dir)), LaunchOptions(accel="tcg"), libvirt_uri)
    assert "<domain type='qemu'>" in plan.xml and "host-passthrough" not in plan.xml
