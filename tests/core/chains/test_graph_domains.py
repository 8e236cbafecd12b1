"""Which libvirt domain uses each node of the chain graph, and the disks qemu could not open.

Domains here are hand-built records (``core.virt.model``) over real images made by qemu-img, so
the graph's side is tested without a daemon; tests/cli/test_scan_domains.py does the same
through a real libvirtd.
"""

from __future__ import annotations

import io
import json
import os

from imagegui.cli.scan_cmds import print_tree, scan_json, write_scan_json
from imagegui.core.chains.diagnose import KINDS, Kind, Level
from imagegui.core.chains.graph import ChainGraph
from imagegui.core.chains.schema import MISSING
from imagegui.core.read.scan import scan_directory
from imagegui.core.virt.inventory import DomainIndex
from imagegui.core.virt.model import Domain, DomainDisk, DomainUse, HostInventory, Role

URI = "qemu:///system"


def index(*domains: tuple[str, str, list[str]]) -> DomainIndex:
    """A DomainIndex of ``(name, state, [disk paths as vda, vdb, ...])``."""
    inv = HostInventory(uri=URI, hostname="h")
    for name, state, paths in domains:
        disks = tuple(
            DomainDisk(f"vd{chr(ord('a') + i)}", "disk", "file", str(p), "qcow2")
            for i, p in enumerate(paths)
        )
        inv.domains.append(Domain(URI, name, f"uuid-{name}", state, disks))
    return DomainIndex([inv])


def use(name: str, disk: str, role: Role, state: str = "shut off") -> DomainUse:
    return DomainUse(URI, name, state, disk, role)


def graph_of(root, domains: DomainIndex | None = None) -> ChainGraph:
    return ChainGraph(scan_directory(str(root)), domains=domains)


def test_the_disk_is_top_and_everything_below_it_backing(make, tmp_path):
    base = make.create("base.qcow2")
    mid = make.overlay("mid.qcow2", "base.qcow2")
    top = make.overlay("top.qcow2", "mid.qcow2")
    other = make.overlay("other.qcow2", "base.qcow2")
    graph = graph_of(tmp_path, index(("web01", "shut off", [top]), ("web02", "running", [mid])))
    assert graph.domains_of(str(top)) == [use("web01", "vda", Role.TOP)]
    assert graph.domains_of(str(mid)) == [
        use("web01", "vda", Role.BACKING),
        use("web02", "vda", Role.TOP, "running"),
    ]
    assert graph.domains_of(str(base)) == [
        use("web01", "vda", Role.BACKING),
        use("web02", "vda", Role.BACKING, "running"),
    ]
    assert graph.domains_of(str(other)) == []
    assert graph.problems == []


def test_without_domains_nothing_is_used(make, tmp_path):
    top = make.overlay("top.qcow2", "base.qcow2")
    make.create("base.qcow2")
    for graph in (graph_of(tmp_path), graph_of(tmp_path, index())):
        assert graph.domains_of(str(top)) == [] and graph.domain_notes == []
        assert graph.problems == []


def test_the_same_disk_twice_is_one_use_and_two_disks_are_two(make, tmp_path):
    base = make.create("base.qcow2")
    top = make.overlay("top.qcow2", "base.qcow2")
    twice = index(("web01", "shut off", [top])), index(("web01", "shut off", [top]))
    inventories = [i for ix in twice for i in ix.inventories]
    graph = graph_of(tmp_path, DomainIndex(inventories))
    assert graph.domains_of(str(top)) == [use("web01", "vda", Role.TOP)]
    graph = graph_of(tmp_path, index(("web01", "shut off", [top, base])))
    assert graph.domains_of(str(base)) == [
        use("web01", "vda", Role.BACKING),
        use("web01", "vdb", Role.TOP),
    ]


def test_a_disk_named_through_a_symlink_or_hard_link_finds_the_image(make, tmp_path):
    base = make.create("base.qcow2")
    top = make.overlay("top.qcow2", "base.qcow2")
    elsewhere = tmp_path.parent / f"{tmp_path.name}-links"
    elsewhere.mkdir()
    os.symlink(top, elsewhere / "top-link.qcow2")
    os.link(base, elsewhere / "base-hard.qcow2")
    graph = graph_of(
        tmp_path,
        index(
            ("web01", "shut off", [elsewhere / "top-link.qcow2"]),
            ("web02", "shut off", [elsewhere / "base-hard.qcow2"]),
        ),
    )
    assert graph.domains_of(str(top)) == [use("web01", "vda", Role.TOP)]
    assert set(graph.domains_of(str(base))) == {
        use("web01", "vda", Role.BACKING),
        use("web02", "vda", Role.TOP),
    }


def test_a_disk_outside_the_root_marks_what_its_chain_reaches_inside(make, tmp_path):
    root = tmp_path / "root"
    base = make.create("root/base.qcow2")
    outside = make.overlay("vms/web01.qcow2", str(base))
    graph = graph_of(root, index(("web01", "shut off", [outside])))
    assert graph.domains_of(str(base)) == [use("web01", "vda", Role.BACKING)]
    assert graph.problems == [] and graph.domain_notes == []


def test_a_missing_disk_inside_the_root_is_a_placeholder_with_the_problem(make, tmp_path):
    make.create("base.qcow2")
    gone = tmp_path / "web01.qcow2"
    graph = graph_of(tmp_path, index(("web01", "shut off", [gone])))
    assert graph.kind(str(gone)) == MISSING
    assert graph.domains_of(str(gone)) == [use("web01", "vda", Role.TOP)]
    [p] = graph.problems
    assert (p.kind, p.level, p.path) == (Kind.DOMAIN_DISK_MISSING, Level.ERROR, str(gone))
    assert p.message == (
        "web01 (shut off) uses it as vda, but the file does not exist: the VM will not start"
    )
    assert graph.problems_for(str(gone)) == [p]
    out = io.StringIO()
    print_tree(graph, out)
    assert (
        "web01.qcow2  (missing)  [used by web01 (shut off)]  ✗ domain-disk-missing"
        in out.getvalue()
    )


def test_a_missing_disk_that_is_an_images_backing_file_gets_the_problem_there(make, tmp_path):
    root = tmp_path / "root"
    gone = tmp_path / "elsewhere" / "base.qcow2"
    top = make.overlay("root/top.qcow2", str(gone))
    graph = graph_of(root, index(("web02", "running", [gone])))
    assert graph.kind(str(gone)) == MISSING
    kinds = {p.kind for p in graph.problems_for(str(gone))}
    assert kinds == {Kind.DOMAIN_DISK_MISSING}
    [p] = graph.problems_for(str(gone))
    assert p.message.startswith("web02 (running) uses it as vda, but the file does not exist")
    assert p.message.endswith("the VM will not start again")
    assert graph.domains_of(str(top)) == []  # the domain uses the base, not the overlay


def test_a_missing_disk_outside_the_root_is_a_note_once(make, tmp_path):
    root = tmp_path / "root"
    make.create("root/base.qcow2")
    gone = tmp_path / "vms" / "gone.qcow2"
    graph = graph_of(root, index(("web01", "shut off", [gone, gone])))
    assert str(gone) not in graph.g
    assert graph.problems == []
    said = "web01 (shut off) uses it as {}, but the file does not exist: the VM will not start"
    assert graph.domain_notes == [(str(gone), said.format("vda")), (str(gone), said.format("vdb"))]
    doc = scan_json(graph)
    assert {"path": str(gone), "message": graph.domain_notes[0][1]} in doc["notes"]


def test_a_disk_whose_chain_is_broken_has_the_problem_naming_where(make, tmp_path):
    top = make.overlay("top.qcow2", "mid.qcow2")
    make.overlay("mid.qcow2", "gone.qcow2")
    graph = graph_of(tmp_path, index(("web01", "shut off", [top])))
    [p] = [p for p in graph.problems_for(str(top)) if p.kind == Kind.DOMAIN_DISK_MISSING]
    title = KINDS[Kind.MISSING_BACKING].title.lower()
    assert p.message == (
        f"web01 (shut off) uses it as vda, but qemu cannot open its chain at "
        f"{tmp_path / 'gone.qcow2'} ({title}): the VM will not start"
    )
    # It says which VM the break stops; it does not move the break.
    assert graph.chain_break(str(top)).kind == Kind.MISSING_BACKING
    assert graph.chain_break(str(top)).at == str(tmp_path / "gone.qcow2")


def test_streamed_json_with_domains_equals_the_document(make, tmp_path):
    base = make.create("base.qcow2")
    top = make.overlay("top.qcow2", "base.qcow2")
    make.overlay("broken.qcow2", "gone.qcow2")
    graph = graph_of(tmp_path, index(("web01", "shut off", [top])))
    for batch in (1, 1024):
        out = io.StringIO()
        write_scan_json(graph, out, batch=batch)
        doc = json.loads(out.getvalue())
        assert doc == json.loads(json.dumps(scan_json(graph)))
    images = {i["path"]: i for i in doc["images"]}
    assert images[str(top)]["domains"] == [use("web01", "vda", Role.TOP).to_json()]
    assert images[str(base)]["domains"][0]["role"] == "backing"
    assert images[str(tmp_path / "broken.qcow2")]["domains"] == []
    assert doc["libvirt"] == []
