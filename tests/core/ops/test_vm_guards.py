"""core.ops.guards and libvirt's VMs: which writes a VM's disk refuses, in whose words.

The guard functions are tested on hand-built ``DomainIndex`` records over real images (the
chains are read from the headers qemu-img wrote); the operations against a real libvirtd are
tested in tests/cli/test_ops_libvirt.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from opshelpers import create, overlay

from imagegui.core.chains.diagnose import Level
from imagegui.core.ops import guards
from imagegui.core.ops.flatten import plan_flatten
from imagegui.core.ops.leftovers import examine
from imagegui.core.virt.inventory import DomainIndex, DomainSource
from imagegui.core.virt.model import Domain, DomainDisk, HostInventory

URI = "qemu:///system"


def domain(name: str, state: str, *disks: tuple[str, Path]) -> Domain:
    return Domain(
        uri=URI,
        name=name,
        uuid=name,
        state=state,
        disks=tuple(
            DomainDisk(target=t, device="disk", type="file", path=str(p)) for t, p in disks
        ),
    )


def index(*domains: Domain) -> DomainIndex:
    return DomainIndex([HostInventory(uri=URI, domains=list(domains))])


@pytest.fixture
def images(tmp_path: Path) -> tuple[Path, Path]:
    base = create(tmp_path / "base.qcow2")
    return base, overlay(tmp_path / "top.qcow2", base)


def test_shut_off_vm_through_the_chain_refused_with_override(images):
    base, top = images
    idx = index(domain("web01", "shut off", ("vda", top)))
    (f,) = guards.not_used_by_domain(str(base), "base", idx, "committing into it changes {vm} disk")
    assert f.refuses and f.overridable and f.code == "used-by-vm"
    assert f.message.startswith(
        f"base {base} is used by the VM web01 (shut off) through the backing chain of its disk "
        "vda; committing into it changes that VM's disk"
    )
    assert "--force" in f.fix_cli and "--force" not in f.message  # window-neutral words


def test_vm_using_the_file_itself_is_named_as_its_disk(images):
    _, top = images
    idx = index(domain("web01", "shut off", ("vdb", top)))
    (f,) = guards.not_used_by_domain(str(top), "image", idx)
    assert f"image {top} is used by the VM web01 (shut off) as its disk vdb;" in f.message


def test_running_vm_refused_outright_naming_its_libvirt(images):
    base, top = images
    idx = index(domain("web01", "running", ("vda", top)))
    (f,) = guards.not_used_by_domain(str(base), "base", idx)
    assert f.refuses and not f.overridable
    assert "the running VM web01 (libvirt qemu:///system) through the backing chain" in f.message
    assert f.message.endswith("shut it down first")


def test_running_and_shut_off_vms_are_two_findings_only_one_overridable(images):
    base, top = images
    idx = index(
        domain("web01", "running", ("vda", top)),
        domain("db02", "shut off", ("vda", top)),
        domain("db03", "shut off", ("vdc", base)),
    )
    found = guards.not_used_by_domain(str(base), "base", idx, "committing changes {vm} disk")
    assert [f.overridable for f in found] == [False, True]
    assert "web01" in found[0].message and "db02" not in found[0].message
    assert (
        "the VMs db02 (shut off) through the backing chain of its disk vda and db03 (shut off) "
        "as its disk vdc; committing changes those VMs' disk" in found[1].message
    )
    # The lock guard already named the running one: not said twice.
    again = guards.not_used_by_domain(str(base), "base", idx, skip_running=True)
    assert [f.overridable for f in again] == [True]


def test_unrelated_file_and_no_index_find_nothing(images, tmp_path: Path):
    base, top = images
    other = create(tmp_path / "other.qcow2")
    idx = index(domain("web01", "shut off", ("vda", top)))
    assert guards.not_used_by_domain(str(other), "image", idx) == []
    assert guards.not_used_by_domain(str(base), "base", None) == []
    assert guards.domain_note(str(other), "base", idx) is None


def test_the_file_reached_under_another_name_is_the_same_file(images, tmp_path: Path):
    base, top = images
    (tmp_path / "link").symlink_to(tmp_path)
    idx = index(domain("web01", "shut off", ("vda", tmp_path / "link" / "top.qcow2")))
    assert guards.not_used_by_domain(str(base), "base", idx)


def test_stopped_refuse_and_warn_modes(images):
    base, top = images
    idx = index(domain("web01", "shut off", ("vda", top)))
    (hard,) = guards.not_used_by_domain(str(base), "image", idx, stopped="refuse", fix_cli="x")
    assert hard.refuses and not hard.overridable and hard.fix_cli == "x"
    (soft,) = guards.not_used_by_domain(str(top), "image", idx, stopped="warn")
    assert soft.level is Level.WARNING and "do not start it until this has finished" in soft.message


def test_domain_note_names_each_vm_once(images):
    base, top = images
    idx = index(domain("web01", "shut off", ("vda", top), ("vdb", base)))
    f = guards.domain_note(str(base), "base", idx)
    assert f is not None and f.level is Level.INFO
    assert f.message == f"base {base} is also used by web01 (shut off)"


def test_read_domains_not_asked_and_named_connection_unreachable():
    assert guards.read_domains(None) == (None, [])
    index_, found = guards.read_domains(DomainSource(("qemu+unix:///system?socket=/nonexistent",)))
    assert index_ is not None and index_.domains() == []
    (f,) = found
    assert f.level is Level.WARNING and f.code == "libvirt-unreachable"
    assert f.message.startswith(
        "libvirt at qemu+unix:///system?socket=/nonexistent was not reachable"
    )
    assert f.message.endswith("; VMs defined there were not checked")


def test_flatten_of_a_vm_disk_is_not_refused_it_only_reads_it(images, tmp_path: Path, monkeypatch):
    """A flatten creates a new file (never replaces one): a VM on the source is not harmed,
    so it is only named."""
    _, top = images
    idx = index(domain("web01", "shut off", ("vda", top)))
    monkeypatch.setattr(guards, "read_domains", lambda source: (idx, []))
    plan = plan_flatten(str(top), str(tmp_path / "flat.qcow2"), domains=DomainSource())
    assert not plan.refused
    (note,) = [f for f in plan.findings if f.code == "used-by-vm"]
    assert note.level is Level.INFO and "web01 (shut off)" in note.message


def test_leftover_file_a_vm_uses_is_kept(tmp_path: Path):
    leftover = create(tmp_path / ".out.qcow2.0123abcd.partial")
    idx = index(domain("web01", "shut off", ("vda", leftover)))
    got = examine(str(leftover), [str(tmp_path)], now=2e9, index=idx)
    assert isinstance(got, guards.Finding) and got.code == "used-by-vm"
    assert "web01 (shut off) as its disk vda" in got.message and got.paths == (str(leftover),)
